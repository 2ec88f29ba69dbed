"""Stage sec41_report's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import StageParams, param, shared
from rmteacher.lm.pg.settings import PgSettings


@dataclass(frozen=True)
class Sec41ReportParams(StageParams):
    """Table 2 over the mixes (and over mixes + the perfect RM, as the paper), paired tests of the
    claims, the controlled family's surface, increases at matched KL and every verdict."""

    STAGE = "sec41_report"
    increase_epoch: float = param(1.0, "epoch at which increases are compared (paper: 1)", gt=0)
    n_bootstrap: int = param(2000, "bootstrap resamples (RMs, then seeds)", ge=10)
    seed: int = param(0, "bootstrap seed", ge=0)
    matched_kl: float = param(
        1.0, "KL (nats) at which every run's r_G increase is also read (Figure 4)", gt=0
    )
    # the clipping of rloo's main runs (params.yaml group `pg`), to read the clipped fraction
    max_grad_norm: float = shared(PgSettings, "max_grad_norm")
