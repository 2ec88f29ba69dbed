"""Stage alt_normalization's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import StageParams, param, shared
from rmteacher.lm.pg.settings import PgSettings


@dataclass(frozen=True)
class AltNormalizationParams(StageParams):
    """Table 9 analog: the Section 4.1 RMs normalised by the square root of their mean
    per-prompt variance instead of the global std, RLOO up to the correlation epoch, and Table 2
    recomputed."""

    STAGE = "alt_normalization"
    seeds: tuple[int, ...] = param((0, 1, 2), "training seeds", ge=0)
    epochs: float = param(1.0, "trl epochs (the correlations use epoch 1)", gt=0)
    n_bootstrap: int = param(2000, "bootstrap resamples over seeds", ge=10)
    # Section 4.1's policy-gradient regime (params.yaml group `pg`)
    num_generations: int = shared(PgSettings, "num_generations")
    prompts_per_step: int = shared(PgSettings, "prompts_per_step")
    beta: float = shared(PgSettings, "beta")
    learning_rate: float | None = shared(PgSettings, "learning_rate")
    max_grad_norm: float = shared(PgSettings, "max_grad_norm")
    eval_prompts: int = shared(PgSettings, "eval_prompts")
    eval_samples: int = shared(PgSettings, "eval_samples")
    threads: int = shared(PgSettings, "threads")
