"""Stage sec42_report's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import StageParams, param


@dataclass(frozen=True)
class Sec42ReportParams(StageParams):
    """Table 10 and Table 12 analogs; per policy the best RM against its runner-up; the policy x RM
    interaction test; each predictor's rank correlation with the r_G increase; the report's
    predicted ranking against the realised one."""

    STAGE = "sec42_report"
    n_bootstrap: int = param(1000, "bootstrap resamples (RMs, then seeds)", ge=10)
    seed: int = param(0, "bootstrap seed", ge=0)
