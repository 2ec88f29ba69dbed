"""Theorem 2's construction (paper Section 3.2; Theorem 5 in the appendix) on one prompt: the
ground truth r_G, the initial policy pi_0, the target y_gamma, the perfectly accurate RM with
rewards in (0, 1/T) and Remark 2's RM of accuracy 2/|Y|, and their times to raise E[r_G] by
gamma. Stage theory_accuracy_speed defines it (its params) and saves it
(`Theorem2Construction`); theory_best_of_n reads it from there."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rmteacher.theory.common import SinglePromptSetup, tabular_flow, theorem2_setup
from rmteacher.theory.exact import bounds, constructions


@dataclass(frozen=True)
class Theorem2Construction:
    """The settings that fix the construction: seed of r_G and pi_0, |Y|, gamma, the std of the
    initial logits, pi_0(y_gamma), T and the KL weight."""

    seed: int
    n_outputs: int
    gamma: float
    temperature: float
    target_prob: float
    big_t: float
    lam: float

    @classmethod
    def of(cls, params) -> Theorem2Construction:
        """The construction of any object with these fields (theory_accuracy_speed's params)."""
        return cls(**{name: getattr(params, name) for name in cls.__dataclass_fields__})

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Theorem2Construction:
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run the theory_accuracy_speed stage first")
        return cls(**json.loads(path.read_text()))


ACCURATE = "perfectly accurate, rewards in (0, 1/T)"
REMARK2 = "accuracy 2/|Y| (Remark 2)"


def setup_from(p) -> SinglePromptSetup:
    """r_G, pi_0 and y_gamma (ValueError if gamma is unreachable)."""
    return theorem2_setup(p.seed, p.n_outputs, p.gamma, p.temperature, p.target_prob)


def time_to_gamma(setup: SinglePromptSetup, rm: np.ndarray, lam: float, horizon: float) -> float:
    return tabular_flow(
        setup.pi0, rm, lam, horizon, gold=setup.gold, gamma=setup.gamma, n_points=2
    ).t_gamma


def theorem2_rms(p, setup: SinglePromptSetup) -> dict[str, np.ndarray]:
    """Theorem 2's pair: the perfectly accurate slow RM and Remark 2's fast RM."""
    return {
        ACCURATE: constructions.slow_rm(setup.gold, p.big_t),
        REMARK2: constructions.fast_rm(
            constructions.remark2_order(setup.gold, setup.target),
            setup.target,
            setup.pi0[setup.target],
        ),
    }


def theorem2_horizon(p, setup: SinglePromptSetup) -> float:
    """Integration horizon of Theorem 2's pair: 5000x the slow RM's lower bound."""
    return 5000 * bounds.theorem5_slow_lower_bound(p.big_t, setup.gamma, 1)


def theorem2_times(p, setup: SinglePromptSetup) -> dict[str, float]:
    """t_gamma of Theorem 2's pair (inf if not reached within `theorem2_horizon`)."""
    horizon = theorem2_horizon(p, setup)
    rms = theorem2_rms(p, setup)
    return {name: time_to_gamma(setup, rm, p.lam, horizon) for name, rm in rms.items()}
