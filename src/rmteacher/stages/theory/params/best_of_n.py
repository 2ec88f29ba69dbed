"""Stage theory_best_of_n's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import StageParams, param


@dataclass(frozen=True)
class BestOfNParams(StageParams):
    """Best-of-N with the Theorem 2 RMs (Proposition 1): accuracy is what matters there. The
    construction (seed, r_G, pi_0, T, gamma, KL weight) is the one theory_accuracy_speed saved,
    so both stages always use the same RMs."""

    STAGE = "theory_best_of_n"
    max_n: int = param(16, "largest N", ge=1, le=4096)
    n_mc: int = param(20000, "Monte Carlo trials per checked N", ge=100)
    n_random_rms: int = param(50, "extra noisy RMs compared under Best-of-N", ge=0)
    noise: float = param(0.5, "noise of the extra RMs' rankings", ge=0)
