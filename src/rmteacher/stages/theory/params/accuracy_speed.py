"""Parameters of theory_accuracy_speed (light: `rmteacher check` imports them, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import StageParams, param
from rmteacher.theory.common import (
    check_constructible,
)
from rmteacher.theory.theorem2 import setup_from


@dataclass(frozen=True)
class AccuracySpeedParams(StageParams):
    """Accuracy does not decide speed (Theorems 2/5): the accurate slow RM vs Remark 2's RM,
    then slow and fast RMs at every accuracy level. Its construction (r_G, pi_0, the two RMs) is
    also the one theory_best_of_n reads."""

    STAGE = "theory_accuracy_speed"
    seed: int = param(0, "random seed of r_G, pi_0 and the rankings", ge=0)
    n_outputs: int = param(12, "|Y|", ge=3, le=2000)
    gamma: float = param(0.2, "required improvement of E[r_G]", gt=0, lt=2)
    temperature: float = param(1.0, "std of the initial logits", gt=0)
    target_prob: float = param(0.02, "pi_0(y_gamma) of the best output", gt=0, lt=1)
    big_t: float = param(100.0, "T: the slow RMs' rewards lie in (0, 1/T)", ge=1)
    lam: float = param(0.0, "KL weight", ge=0)
    n_rankings: int = param(
        30,
        "noisy rankings per sweep family (with and without y_gamma first), plus the "
        "alpha = 1, Remark 2 and reversed rankings",
        ge=2,
    )
    noise: float = param(0.7, "ranking noise in the sweep (spreads the accuracies)", ge=0)
    horizon_factor: float = param(
        1e6,
        "sweep horizon of the slow RMs, in units of Theorem 5's lower bound; later t_gamma "
        "are censored",
        gt=1,
    )

    def check(self) -> None:
        check_constructible(self.STAGE, "gamma", lambda: setup_from(self))
