"""Parameters of theory_policy_dependence (light: `rmteacher check` imports them)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.theory.common import (
    check_constructible,
)
from rmteacher.theory.theorem6 import check_v0_reachable, ground_truth


@dataclass(frozen=True)
class PolicyDependenceParams(StageParams):
    """Different initial policies, different best RM (Theorems 3/6)."""

    STAGE = "theory_policy_dependence"
    seed: int = param(0, "random seed of r_G", ge=0)
    n_outputs: int = param(10, "|Y|", ge=3, le=2000)
    v0: float = param(0.0, "common initial E[r_G] of both policy families", gt=-1, lt=1)
    gamma: float = param(0.1, "required improvement of E[r_G]", gt=0, lt=2)
    big_t: float = param(10.0, "T: the rare target has probability T^-2 (main figure)", ge=1)
    c: float = param(0.2, "probability of the likely target", gt=0, lt=1)
    lam: float = param(0.0, "KL weight", ge=0)
    t_values: tuple[float, ...] = param((2.0, 5.0, 10.0, 20.0, 50.0), "T values of the sweep", ge=1)

    def check(self) -> None:
        for key, values in (("big_t", (self.big_t,)), ("t_values", self.t_values)):
            for big_t in values:
                if self.c + big_t**-2 >= 1:
                    raise ParamsError(
                        f"{self.STAGE}.{key}: c + T^-2 = {self.c + big_t**-2:.3f} >= 1 at "
                        f"T={big_t:g}, leaving no mass for the other outputs; raise T or lower c"
                    )
        check_constructible(self.STAGE, "gamma", lambda: ground_truth(self))
        for big_t in sorted({*self.t_values, self.big_t}):
            check_constructible(self.STAGE, "v0", lambda t=big_t: check_v0_reachable(self, t))
