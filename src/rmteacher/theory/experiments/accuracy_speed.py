"""Stage theory_accuracy_speed: accuracy does not decide optimization speed (Theorems 2/5).

Head-to-head: the perfectly accurate RM with rewards in (0, 1/T) against Remark 2's RM of
accuracy 2/|Y|. Sweep: many rankings with y_gamma first; each ranking gives a slow RM and a fast
RM with *identical* accuracy (same ranking), so speed differs at every accuracy level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmteacher.theory import bounds, constructions, quantities
from rmteacher.theory.experiments.common import (
    SinglePromptSetup,
    expected_gold_along,
    tabular_flow,
    theorem2_setup,
)


def setup_from(p) -> SinglePromptSetup:
    return theorem2_setup(p.seed, p.n_outputs, p.gamma, p.temperature, p.target_prob)


def time_to_gamma(setup: SinglePromptSetup, rm: np.ndarray, lam: float, horizon: float) -> float:
    return tabular_flow(
        setup.pi0, rm, lam, horizon, gold=setup.gold, gamma=setup.gamma, n_points=2
    ).t_gamma


def head_to_head(p, setup: SinglePromptSetup) -> tuple[pd.DataFrame, pd.DataFrame]:
    """t_gamma of the two Theorem 2 RMs, and E[r_G](t) curves on a common horizon."""
    rms = {
        "perfectly accurate, rewards in (0, 1/T)": constructions.slow_rm(setup.gold, p.big_t),
        "accuracy 2/|Y| (Remark 2)": constructions.fast_rm(
            constructions.remark2_order(setup.gold, setup.target),
            setup.target,
            setup.pi0[setup.target],
        ),
    }
    slow_bound = bounds.theorem5_slow_lower_bound(p.big_t, setup.gamma, 1)
    times = {name: time_to_gamma(setup, rm, p.lam, 5000 * slow_bound) for name, rm in rms.items()}
    horizon = 1.5 * max(t for t in times.values() if np.isfinite(t))
    summary, curves = [], []
    for name, rm in rms.items():
        res = tabular_flow(setup.pi0, rm, p.lam, horizon, n_points=400)
        gold_t = expected_gold_along(res, setup.gold)
        curves.append(
            pd.DataFrame(
                {"rm": name, "time": res.times, "gold_increase": gold_t - setup.gold_mean0}
            )
        )
        summary.append(
            dict(
                rm=name,
                accuracy=quantities.accuracy(rm, setup.gold),
                variance=float(quantities.reward_variance(setup.pi0, rm)),
                t_gamma=times[name],
            )
        )
    return pd.DataFrame(summary), pd.concat(curves, ignore_index=True)


def accuracy_sweep(p, setup: SinglePromptSetup) -> pd.DataFrame:
    rng = np.random.default_rng(p.seed + 1)
    mixes = np.linspace(0.0, 1.0, p.n_rankings)
    orders = constructions.orderings_with_target_first(
        setup.gold, setup.target, mixes, p.noise, rng
    )
    slow_bound = bounds.theorem5_slow_lower_bound(p.big_t, setup.gamma, 1)
    rho = bounds.theorem5_rho(setup.gold_mean0, setup.gamma, setup.gold[setup.target])
    fast_bound = bounds.theorem5_fast_upper_bound(setup.pi0[setup.target], rho, 1)
    rows = []
    for k, order in enumerate(orders):
        pair = {
            "slow (rewards in (0, 1/T))": constructions.slow_rm(order, p.big_t),
            "fast (reward 1 on y_gamma)": constructions.fast_rm(
                order, setup.target, setup.pi0[setup.target]
            ),
        }
        for kind, rm in pair.items():
            # Slow RMs need ~100x their lower bound (and more when misordered): integrate far.
            horizon = 20000 * slow_bound if kind.startswith("slow") else 10 * fast_bound
            t_gamma = time_to_gamma(setup, rm, p.lam, horizon)
            rows.append(
                dict(
                    ranking=k,
                    mix=mixes[k],
                    rm=kind,
                    accuracy=quantities.accuracy(rm, setup.gold),
                    variance=float(quantities.reward_variance(setup.pi0, rm)),
                    t_gamma=t_gamma,
                    horizon=horizon,
                    reached=bool(np.isfinite(t_gamma)),
                    slow_lower_bound=slow_bound,
                    fast_upper_bound=fast_bound,
                )
            )
    return pd.DataFrame(rows)


def run(p) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Return (head-to-head summary, E[r_G] curves, accuracy sweep, metrics)."""
    setup = setup_from(p)
    rho = bounds.theorem5_rho(setup.gold_mean0, setup.gamma, setup.gold[setup.target])
    max_lam = bounds.theorem5_max_lambda(setup.pi0[setup.target], rho, setup.pi0.min())
    summary, curves = head_to_head(p, setup)
    sweep = accuracy_sweep(p, setup)
    slow = sweep[sweep.rm.str.startswith("slow")]
    fast = sweep[sweep.rm.str.startswith("fast")]
    paired = slow.t_gamma.to_numpy() / fast.t_gamma.to_numpy()
    t_slow, t_fast = summary.t_gamma.to_numpy()
    metrics = {
        "thm2_slow_over_fast_time_ratio": float(t_slow / t_fast),
        "thm2_t_gamma_accurate_rm": float(t_slow),
        "thm2_t_gamma_low_accuracy_rm": float(t_fast),
        "thm2_accuracy_accurate_rm": float(summary.accuracy.iloc[0]),
        "thm2_accuracy_low_accuracy_rm": float(summary.accuracy.iloc[1]),
        "two_over_n_outputs": 2 / p.n_outputs,
        "thm5_slow_lower_bound": bounds.theorem5_slow_lower_bound(p.big_t, setup.gamma, 1),
        "thm5_fast_upper_bound": bounds.theorem5_fast_upper_bound(setup.pi0[setup.target], rho, 1),
        "thm5_lambda_condition_holds": bool(p.lam <= max_lam),
        "thm5_slow_bound_holds_all": bool((slow.t_gamma >= slow.slow_lower_bound).all()),
        "thm5_fast_bound_holds_all": bool((fast.t_gamma <= fast.fast_upper_bound).all()),
        "sweep_accuracy_min": float(sweep.accuracy.min()),
        "sweep_accuracy_max": float(sweep.accuracy.max()),
        "sweep_min_paired_slow_over_fast": float(paired.min()),
        "sweep_max_fast_t_gamma": float(fast.t_gamma.max()),
        "sweep_min_slow_t_gamma": float(slow.t_gamma.min()),
        "sweep_n_slow_not_reached": int((~slow.reached).sum()),
        "sweep_horizon_slow": float(slow.horizon.max()),
    }
    return summary, curves, sweep, metrics
