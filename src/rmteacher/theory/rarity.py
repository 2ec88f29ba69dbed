"""The escape-time stage's rarity sweep (Remark 3): reward variance lowered at a fixed reward scale.

The RM gives reward 1 to r_G's best output y* and 0 to every other output, and pi_0 produces y*
with probability p, swept over decades. Then Var_{pi_0}[r_RM] = p(1 - p): the variance falls
because the *policy* rarely produces the rewarded output, not because the rewards shrink, so
gradient flow is not a time-rescaled copy of one run and the fitted log-log slope of t_gamma on
Var measures something (for the T sweep it is -1/2 by construction).

* Tabular: pi_0 is `theorem2_setup`'s policy with pi_0(y*) = p (the other outputs keep their
  relative probabilities).
* Shared MLP over V^L: y* = (0, ..., 0) on every prompt, with r_G(x, y*) = 1, and the output bias
  of token 0 set so that pi_0(y*|x_0) = p on prompt 0 (the other prompts move with it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.optimize import brentq

from rmteacher.theory.common import rarity_setups, tabular_flow
from rmteacher.theory.exact import autoregressive as ar
from rmteacher.theory.exact import bounds, constructions, quantities
from rmteacher.theory.exact.mlp_flow import (
    initial_probabilities,
    mlp_ground_truth,
    mlp_policy,
    mlp_time_to_gamma,
)

RARE_TOKEN = 0  # y* = (0, ..., 0), index 0 of the lexicographic enumeration of V^L


def tabular_sweep(p) -> pd.DataFrame:
    rows = []
    for prob, setup in zip(p.rare_probs, rarity_setups(p), strict=True):
        rm = constructions.indicator_rm(p.n_outputs, setup.target, low=0.0)
        var = float(quantities.reward_variance(setup.pi0, rm))
        horizon = p.ar_horizon / prob
        res = tabular_flow(
            setup.pi0, rm, 0.0, horizon, gold=setup.gold, gamma=p.gamma, n_points=2, rtol=p.rtol
        )
        rows.append(
            dict(
                policy="tabular",
                design="rarity",
                lam=0.0,
                rare_prob=prob,
                variance=var,
                t_gamma=res.t_gamma,
                horizon=horizon,
                lower_bound=float(bounds.proposition3_time_lower_bound(var, p.gamma, 1)),
                bound_name="Proposition 3",
            )
        )
    return pd.DataFrame(rows)


def set_rare_probability(model: ar.SharedMLPLogits, space: ar.SequenceSpace, prob: float) -> None:
    """Set the output bias b2 of RARE_TOKEN so that pi_0(y*|x_0) = prob. ln pi(y*|x_0) is a sum of
    per-position log-softmax values of the same token, each increasing in that token's bias, so
    the root is unique."""

    def gap(shift: float) -> float:
        with torch.no_grad():
            model.b2[RARE_TOKEN] = shift
            return float(ar.sequence_log_probs(model(), space)[0, 0]) - np.log(prob)

    gap(brentq(gap, -60.0, 60.0, xtol=1e-12))


def mlp_problems(p):
    """(space, model, r_G) for every p in p.rare_probs; r_G(x, y*) = 1 on every prompt.

    Raises ValueError when E_{pi_0}[r_G(x_0, .)] + gamma >= 1 for some p."""
    problems = []
    for prob in p.rare_probs:
        space, model = mlp_policy(p)
        set_rare_probability(model, space, prob)
        gold = mlp_ground_truth(p, space)
        gold[:, 0] = 1.0
        start = float(initial_probabilities(model, space)[0] @ gold[0])
        if start + p.gamma >= 1.0:
            raise ValueError(
                f"gamma={p.gamma} is unreachable in the MLP rarity sweep at p={prob:g}: "
                f"E_pi0[r_G] = {start:.3f} and max r_G = 1"
            )
        problems.append((space, model, gold))
    return problems


def mlp_sweep(p) -> pd.DataFrame:
    rows = []
    with ar.single_threaded():
        for prob, (space, model, gold) in zip(p.rare_probs, mlp_problems(p), strict=True):
            pi0 = initial_probabilities(model, space)
            rm = np.zeros_like(gold)
            rm[:, 0] = 1.0
            mean_var = float(quantities.reward_variance(pi0, rm).mean())
            horizon = p.ar_horizon / prob
            run = mlp_time_to_gamma(
                model,
                space,
                rm,
                gold,
                gamma=p.gamma,
                lam=0.0,
                horizon=horizon,
                rtol=p.rtol,
                n_path=p.jacobian_samples,
            )
            bound = bounds.theorem4_time_lower_bound(
                mean_var, p.gamma, 0.0, p.seq_len, run.jacobian_sup
            )
            rows.append(
                dict(
                    policy="shared_mlp",
                    design="rarity",
                    lam=0.0,
                    rare_prob=prob,
                    variance=mean_var,
                    t_gamma=run.t_gamma,
                    horizon=horizon,
                    lower_bound=float(bound),
                    bound_name="Theorem 4",
                    jacobian_sup=run.jacobian_sup,
                )
            )
    return pd.DataFrame(rows)
