"""Stage theory_escape_time: time to improve r_G vs reward variance (Theorems 1/4, Prop. 3).

Two ways to lower the initial variance Var_{pi_0}[r_RM], each for a tabular policy and for a
shared-parameter MLP policy over V^L:

* The T sweep, a consistency check: Theorem 5's perfectly accurate RM with rewards in (0, 1/T).
  Without KL this is a pure rescaling: r_RM at T is r_RM at T = 1 divided by T, gradient flow
  with r/T is gradient flow with r slowed down T times, so t_gamma(T) = T t_gamma(1) while
  Var(T) = Var(1)/T^2. The log-log slope is -1/2 by construction for *every* parametrization;
  it checks the integrator and the bounds, not an exponent. With KL (not rescaled) the flows
  differ. The MLP runs also compare scaling the RM on all prompts with scaling it on prompt 0
  only: with shared parameters the variance averaged over prompts is what counts.
* The rarity sweep (module `rarity`, Remark 3), the test of Theorems 1/4 and Proposition 3:
  reward 1 on r_G's best output, 0 elsewhere, and pi_0 produces that output with probability p.
  The reward scale is fixed, so its slope is a measurement.

The bounds themselves (t_gamma >= lower bound) are checked on every run of both sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from rmteacher.stages.theory.params.escape_time import (
    EscapeTimeParams,
    tabular_problem,
)
from rmteacher.theory import rarity
from rmteacher.theory.common import (
    finite_or_nan,
    loglog_slope,
    rarity_setups,
    tabular_flow,
)
from rmteacher.theory.exact import autoregressive as ar
from rmteacher.theory.exact import bounds, constructions, flow, quantities, tabular
from rmteacher.theory.exact.mlp_flow import (
    initial_probabilities,
    mlp_ground_truth,
    mlp_policy,
    mlp_time_to_gamma,
)


@dataclass(frozen=True)
class EscapeTimeResult:
    """One row per gradient-flow run (columns policy, design, lam, T or rare_prob, variance,
    t_gamma, horizon, lower_bound, ...), and the stage's metrics."""

    escape_times: pd.DataFrame
    metrics: dict


def kl_horizon(p, lam: float, big_t: float, kl_free: dict, key) -> float:
    """KL-free runs integrate to ar_horizon * T; KL runs stop at kl_horizon_factor times the
    KL-free t_gamma of the same T (when that one was reached)."""
    if lam > 0 and np.isfinite(kl_free.get(key, np.inf)):
        return p.kl_horizon_factor * kl_free[key]
    return p.ar_horizon * big_t


def tabular_sweep(p) -> pd.DataFrame:

    gold, pi0 = tabular_problem(p)
    rows = []
    kl_free: dict[float, float] = {}
    for lam in sorted(p.lams):
        for big_t in p.t_values:
            rm = constructions.slow_rm(gold, big_t)
            var = float(quantities.reward_variance(pi0, rm))
            horizon = kl_horizon(p, lam, big_t, kl_free, big_t)
            res = tabular_flow(
                pi0, rm, lam, horizon, gold=gold, gamma=p.gamma, n_points=2, rtol=p.rtol
            )
            if lam == 0:
                kl_free[big_t] = res.t_gamma
            rows.append(
                dict(
                    policy="tabular",
                    design="all_prompts",
                    lam=lam,
                    T=big_t,
                    variance=var,
                    t_gamma=res.t_gamma,
                    horizon=horizon,
                    lower_bound=float(bounds.proposition3_time_lower_bound(var, p.gamma, 1)),
                    bound_name="Proposition 3",
                )
            )
    return pd.DataFrame(rows)


def autoregressive_sweep(p) -> pd.DataFrame:

    space, model = mlp_policy(p)
    pi0 = initial_probabilities(model, space)
    gold = mlp_ground_truth(p, space)
    runs = [("all_prompts", lam) for lam in p.lams] + [("one_prompt", 0.0)]
    runs.sort(key=lambda run: run[1])  # KL-free runs first: they set the KL runs' horizon
    kl_free: dict[tuple[str, float], float] = {}
    rows = []
    with ar.single_threaded():
        for design, lam in tqdm(runs, desc="autoregressive sweeps", mininterval=5):
            for big_t in p.t_values:
                rm = gold.copy()
                for x in range(p.n_prompts) if design == "all_prompts" else [0]:
                    rm[x] = constructions.slow_rm(gold[x], big_t)
                mean_var = float(quantities.reward_variance(pi0, rm).mean())
                horizon = kl_horizon(p, lam, big_t, kl_free, (design, big_t))
                run = mlp_time_to_gamma(
                    model,
                    space,
                    rm,
                    gold,
                    gamma=p.gamma,
                    lam=lam,
                    horizon=horizon,
                    rtol=p.rtol,
                    n_path=p.jacobian_samples,
                )
                if lam == 0:
                    kl_free[(design, big_t)] = run.t_gamma
                bound = bounds.theorem4_time_lower_bound(
                    mean_var, p.gamma, lam, p.seq_len, run.jacobian_sup
                )
                rows.append(
                    dict(
                        policy="shared_mlp",
                        design=design,
                        lam=lam,
                        T=big_t,
                        variance=mean_var,
                        t_gamma=run.t_gamma,
                        horizon=horizon,
                        lower_bound=float(bound),
                        bound_name="Theorem 4",
                        jacobian_sup=run.jacobian_sup,
                    )
                )
    return pd.DataFrame(rows)


def tolerance_check(p, table: pd.DataFrame) -> float:
    """Largest relative change of t_gamma when rtol is tightened 100x, over tabular runs that are
    not rescalings of one another: the rarest rarity run and, if any KL run reached gamma, the
    KL run at the largest such T."""
    cases = []
    rare = rarity_setups(p)[int(np.argmin(p.rare_probs))]
    rm = constructions.indicator_rm(p.n_outputs, rare.target, low=0.0)
    cases.append((rare.gold, rare.pi0, rm, 0.0, p.ar_horizon / min(p.rare_probs)))
    kl = table[(table.policy == "tabular") & (table.lam > 0) & np.isfinite(table.t_gamma)]
    if len(kl):
        row = kl.sort_values("T").iloc[-1]
        gold, pi0 = tabular_problem(p)
        cases.append((gold, pi0, constructions.slow_rm(gold, row["T"]), row.lam, row.horizon))
    changes = []
    shape = (1, p.n_outputs)
    for gold, pi0, rm, lam, horizon in cases:
        changes.append(
            flow.t_gamma_tolerance_check(
                lambda th, pi0=pi0, rm=rm, lam=lam: tabular.gradient(
                    th.reshape(shape), pi0[None], rm[None], lam
                ).ravel(),
                np.log(pi0),
                horizon,
                lambda th, gold=gold: float(tabular.softmax(th.reshape(shape))[0] @ gold),
                float(pi0 @ gold) + p.gamma,
                rtol=p.rtol,
            )
        )
    return max(changes)


def run(p: EscapeTimeParams) -> EscapeTimeResult:
    """Both sweeps, for both policies. Slopes are NaN when fewer than two finite points exist."""
    table = pd.concat(
        [tabular_sweep(p), autoregressive_sweep(p), rarity.tabular_sweep(p), rarity.mlp_sweep(p)],
        ignore_index=True,
    )
    table["ratio_to_bound"] = table.t_gamma / table.lower_bound

    def select(policy: str, design: str, lam: float | None = None) -> pd.DataFrame:
        sel = table[(table.policy == policy) & (table.design == design)]
        return sel if lam is None else sel[sel.lam == lam]

    def slope(policy: str, design: str, lam: float) -> float:
        sel = select(policy, design, lam)
        return loglog_slope(sel.variance, sel.t_gamma)

    kl_lam = min((lam for lam in p.lams if lam > 0), default=None)
    t_sweep = table[table.design != "rarity"]
    one = select("shared_mlp", "one_prompt").t_gamma
    everywhere = select("shared_mlp", "all_prompts", 0.0).t_gamma
    rare = table[table.design == "rarity"]
    metrics = {
        # Consistency checks: -1/2 by construction (the T sweep only rescales time).
        "escape_time_slope_tabular": slope("tabular", "all_prompts", 0.0),
        "escape_time_slope_autoregressive": slope("shared_mlp", "all_prompts", 0.0),
        "escape_time_slope_tabular_kl": (
            slope("tabular", "all_prompts", kl_lam) if kl_lam else float("nan")
        ),
        "escape_time_slope_autoregressive_kl": (
            slope("shared_mlp", "all_prompts", kl_lam) if kl_lam else float("nan")
        ),
        # The measured exponents (fixed reward scale): the tests of Theorems 1/4 and Prop. 3.
        "escape_time_slope_rarity_tabular": slope("tabular", "rarity", 0.0),
        "escape_time_slope_rarity_autoregressive": slope("shared_mlp", "rarity", 0.0),
        "n_not_reached_within_horizon_with_kl": int(np.isinf(table[table.lam > 0].t_gamma).sum()),
        "min_ratio_to_lower_bound_tabular": float(
            t_sweep[t_sweep.policy == "tabular"].ratio_to_bound.min()
        ),
        "min_ratio_to_lower_bound_autoregressive": float(
            t_sweep[t_sweep.policy == "shared_mlp"].ratio_to_bound.min()
        ),
        "min_ratio_to_lower_bound_rarity_tabular": float(
            rare[rare.policy == "tabular"].ratio_to_bound.min()
        ),
        "min_ratio_to_lower_bound_rarity_autoregressive": float(
            rare[rare.policy == "shared_mlp"].ratio_to_bound.min()
        ),
        "rarity_bounds_hold_all": bool(
            np.isfinite(rare.t_gamma).all() and (rare.t_gamma >= rare.lower_bound).all()
        ),
        "rarity_variance_min": float(rare.variance.min()),
        "rarity_variance_max": float(rare.variance.max()),
        "one_prompt_design_time_spread": finite_or_nan(one, np.max) / finite_or_nan(one),
        "all_prompts_design_time_spread": finite_or_nan(everywhere, np.max)
        / finite_or_nan(everywhere),
        "integrator_t_gamma_rel_change": tolerance_check(p, table),
        "worst_case_exponent_autoregressive": -1 / 3,
    }
    return EscapeTimeResult(escape_times=table, metrics=metrics)
