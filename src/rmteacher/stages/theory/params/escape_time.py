"""Stage theory_escape_time's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.theory.common import (
    check_constructible,
    rarity_setups,
)
from rmteacher.theory.exact import constructions


@dataclass(frozen=True)
class EscapeTimeParams(StageParams):
    """Time for r_G to rise by gamma vs reward variance (Theorems 1/4, Proposition 3): the
    perfectly accurate RM with rewards in (0, 1/T), T swept (a pure rescaling), and Remark 3's RM
    rewarding one output of probability p under pi_0, p swept (a fixed reward scale)."""

    STAGE = "theory_escape_time"
    seed: int = param(0, "random seed", ge=0)
    n_outputs: int = param(20, "|Y| of the tabular policy", ge=2, le=5000)
    temperature: float = param(1.0, "std of the initial tabular logits", gt=0)
    gamma: float = param(0.1, "required improvement of E[r_G]", gt=0, lt=2)
    lams: tuple[float, ...] = param((0.0, 0.05), "KL weights; must include 0", ge=0)
    t_values: tuple[float, ...] = param(
        (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), "values of T (RM rewards in (0, 1/T))", ge=1
    )
    rare_probs: tuple[float, ...] = param(
        (1e-1, 1e-2, 1e-3, 1e-4),
        "rarity sweep: pi_0(y*) of the output the RM rewards (1 on y*, 0 elsewhere)",
        gt=0,
        lt=1,
    )
    rtol: float = param(1e-8, "relative tolerance of the ODE integrator", gt=0, lt=1e-3)
    ar_horizon: float = param(
        1e4,
        "KL-free integration horizon, tabular and MLP: per unit of T (T sweep), per unit of "
        "1/p (rarity sweep)",
        gt=0,
    )
    kl_horizon_factor: float = param(
        20.0, "KL runs stop at this multiple of the KL-free t_gamma", gt=1
    )
    vocab_size: int = param(3, "|V| of the autoregressive policy", ge=2, le=16)
    seq_len: int = param(3, "L of the autoregressive policy", ge=1, le=8)
    n_prompts: int = param(4, "prompts sharing the MLP's parameters", ge=2, le=32)
    mlp_hidden: int = param(16, "hidden width of the shared MLP logit map", ge=1)
    init_scale: float = param(1.0, "scale of the random MLP weights", gt=0)
    jacobian_samples: int = param(
        20, "states per MLP path where J is evaluated (Theorem 4's sup over the path)", ge=2
    )

    def check(self) -> None:
        if 0.0 not in self.lams:
            raise ParamsError(
                f"{self.STAGE}.lams: must include 0.0 (KL-free runs set the horizons)"
            )
        if len(set(self.t_values)) < 2:
            raise ParamsError(f"{self.STAGE}.t_values: need at least two distinct values of T")
        if len(set(self.rare_probs)) < 2:
            raise ParamsError(f"{self.STAGE}.rare_probs: need at least two distinct values of p")
        if self.vocab_size**self.seq_len > 20_000:
            raise ParamsError(f"{self.STAGE}: vocab_size**seq_len must be <= 20000 to enumerate")
        check_constructible(self.STAGE, "gamma", lambda: check_reachable_tabular(self))

    def check_models(self) -> None:
        check_constructible(self.STAGE, "gamma", lambda: check_reachable_mlp(self))


def tabular_problem(p) -> tuple[np.ndarray, np.ndarray]:
    """(r_G, pi_0) of the tabular T sweep; ValueError if gamma is unreachable."""
    rng = np.random.default_rng(p.seed)
    gold = rng.uniform(-1, 1, p.n_outputs)
    pi0 = constructions.random_policy(p.n_outputs, p.temperature, rng)
    if pi0 @ gold + p.gamma >= gold.max():
        raise ValueError(
            f"gamma={p.gamma} is unreachable in the tabular T sweep: "
            f"max r_G - E_pi0[r_G] = {gold.max() - pi0 @ gold:.3f}"
        )
    return gold, pi0


def check_reachable_tabular(p) -> None:
    """Raise ValueError if the tabular T sweep or a tabular rarity setup cannot rise by gamma
    (numpy only: initial policies, no flow)."""
    tabular_problem(p)
    rarity_setups(p)


def check_reachable_mlp(p) -> None:
    """Raise ValueError if r_G cannot rise by gamma on the tracked prompt of the MLP T sweep or
    an MLP rarity setup (builds the seeded torch policies; no flow)."""
    # torch (~1 s): only the deep check builds the MLP policies, never `rmteacher check`
    from rmteacher.theory import rarity
    from rmteacher.theory.exact import autoregressive as ar
    from rmteacher.theory.exact.mlp_flow import initial_probabilities, mlp_ground_truth, mlp_policy

    with ar.single_threaded():
        space, model = mlp_policy(p)
        gold = mlp_ground_truth(p, space)[0]
        start = float(initial_probabilities(model, space)[0] @ gold)
        if start + p.gamma >= gold.max():
            raise ValueError(
                f"gamma={p.gamma} is unreachable on prompt 0 of the MLP T sweep: "
                f"max r_G - E_pi0[r_G] = {gold.max() - start:.3f}"
            )
        rarity.mlp_problems(p)
