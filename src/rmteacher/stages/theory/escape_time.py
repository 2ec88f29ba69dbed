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
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.theory.common import (
    check_constructible,
    finite_or_nan,
    loglog_slope,
    rarity_setups,
    tabular_flow,
)
from rmteacher.theory.exact import bounds, constructions, flow, quantities, tabular

if TYPE_CHECKING:
    import pandas as pd


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


@dataclass(frozen=True)
class EscapeTimeResult:
    """One row per gradient-flow run (columns policy, design, lam, T or rare_prob, variance,
    t_gamma, horizon, lower_bound, ...), and the stage's metrics."""

    escape_times: pd.DataFrame
    metrics: dict


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


def kl_horizon(p, lam: float, big_t: float, kl_free: dict, key) -> float:
    """KL-free runs integrate to ar_horizon * T; KL runs stop at kl_horizon_factor times the
    KL-free t_gamma of the same T (when that one was reached)."""
    if lam > 0 and np.isfinite(kl_free.get(key, np.inf)):
        return p.kl_horizon_factor * kl_free[key]
    return p.ar_horizon * big_t


def tabular_sweep(p) -> pd.DataFrame:
    import pandas as pd

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
    import pandas as pd

    from rmteacher.theory.exact import autoregressive as ar
    from rmteacher.theory.exact.mlp_flow import (
        initial_probabilities,
        mlp_ground_truth,
        mlp_policy,
        mlp_time_to_gamma,
    )

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
    import pandas as pd

    from rmteacher.theory import rarity

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
