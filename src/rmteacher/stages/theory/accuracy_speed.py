"""Stage theory_accuracy_speed: accuracy does not decide optimization speed (Theorems 2/5).

Head-to-head: the perfectly accurate RM with rewards in (0, 1/T) against Remark 2's RM of
accuracy 2/|Y|. Sweep, two families of rankings:

* y_gamma first (alpha = 1, Remark 2's ordering, and noisy rankings): each ranking gives a slow
  RM (rewards in (0, 1/T)) and a fast RM (reward 1 on y_gamma, below pi_0(y_gamma) elsewhere)
  with *identical* accuracy, so speed differs at every accuracy level.
* any ranking (reversed r_G, alpha = 0, and noisy rankings): slow RMs only, since Theorem 5's
  slow RM may realize any attainable accuracy.

Slow RMs that rank y_gamma below an output with a large pi_0 can take astronomically long: the
flow first concentrates on that output, after which y_gamma gains mass at a rate proportional to
its (shrinking) probability times a reward gap below 1/T. Such runs are censored at the horizon
and reported as such; the lower bound is only checked on runs that reach gamma.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rmteacher.core import paths
from rmteacher.stages.theory.params.accuracy_speed import AccuracySpeedParams
from rmteacher.theory.common import (
    SinglePromptSetup,
    expected_gold_along,
    finite_or_nan,
    tabular_flow,
)
from rmteacher.theory.exact import bounds, constructions, quantities, tabular
from rmteacher.theory.theorem2 import (
    Theorem2Construction,
    setup_from,
    theorem2_horizon,
    theorem2_rms,
    theorem2_times,
    time_to_gamma,
)


@dataclass(frozen=True)
class AccuracySpeedResult:
    """t_gamma of Theorem 2's two RMs (`head_to_head`), their E[r_G](t) curves
    (`gold_curves`), one row per (ranking, RM) of the accuracy sweep (`sweep`), and metrics."""

    head_to_head: pd.DataFrame
    gold_curves: pd.DataFrame
    sweep: pd.DataFrame
    metrics: dict


SLOW, FAST = "slow (rewards in (0, 1/T))", "fast (reward 1 on y_gamma)"


def head_to_head(p, setup: SinglePromptSetup) -> tuple[pd.DataFrame, pd.DataFrame]:
    """t_gamma of the two Theorem 2 RMs, and E[r_G](t) curves on a common horizon."""
    rms = theorem2_rms(p, setup)
    times = theorem2_times(p, setup)
    reached = [t for t in times.values() if np.isfinite(t)]
    horizon = 1.5 * max(reached) if reached else theorem2_horizon(p, setup)
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


def sweep_orderings(p, setup: SinglePromptSetup) -> list[tuple[str, str, np.ndarray]]:
    """(family, ordering name, ranking scores) for both families of the sweep."""
    rng = np.random.default_rng(p.seed + 1)
    mixes = np.linspace(0.0, 1.0, p.n_rankings)
    gold, target = setup.gold, setup.target
    first = [("alpha = 1", gold), ("Remark 2", constructions.remark2_order(gold, target))]
    first += [
        ("noisy", o) for o in constructions.noisy_orderings(gold, mixes, p.noise, rng, target)
    ]
    free = [("reversed r_G", -gold)]
    free += [("noisy", o) for o in constructions.noisy_orderings(gold, mixes, p.noise, rng)]
    return [("y_gamma first", name, o) for name, o in first] + [
        ("any ranking", name, o) for name, o in free
    ]


def accuracy_sweep(p, setup: SinglePromptSetup) -> pd.DataFrame:
    """One row per (ranking, RM): accuracy, variance, t_gamma (inf if censored at the horizon),
    the bounds, and E[r_G] at the flow's limit (`limit_gold`, from `tabular.flow_limit`)."""
    slow_bound = bounds.theorem5_slow_lower_bound(p.big_t, setup.gamma, 1)
    rho = bounds.theorem5_rho(setup.gold_mean0, setup.gamma, setup.gold[setup.target])
    fast_bound = bounds.theorem5_fast_upper_bound(setup.pi0[setup.target], rho, 1)
    rows = []
    for k, (family, name, order) in enumerate(sweep_orderings(p, setup)):
        rms = {SLOW: constructions.slow_rm(order, p.big_t)}
        if family == "y_gamma first":
            rms[FAST] = constructions.fast_rm(order, setup.target, setup.pi0[setup.target])
        for kind, rm in rms.items():
            horizon = p.horizon_factor * slow_bound if kind == SLOW else 10 * fast_bound
            t_gamma = time_to_gamma(setup, rm, p.lam, horizon)
            limit = tabular.flow_limit(setup.pi0, rm, p.lam)
            rows.append(
                dict(
                    ranking=k,
                    family=family,
                    ordering=name,
                    rm=kind,
                    accuracy=quantities.accuracy(rm, setup.gold),
                    variance=float(quantities.reward_variance(setup.pi0, rm)),
                    t_gamma=t_gamma,
                    horizon=horizon,
                    reached=bool(np.isfinite(t_gamma)),
                    limit_gold=float(limit @ setup.gold),
                    slow_lower_bound=slow_bound,
                    fast_upper_bound=fast_bound,
                )
            )
    return pd.DataFrame(rows)


def sweep_metrics(sweep: pd.DataFrame, target: float) -> dict:
    slow, fast = sweep[sweep.rm == SLOW], sweep[sweep.rm == FAST]
    checked = slow[slow.reached]  # an unreached run satisfies a lower bound trivially
    paired = slow[slow.family == "y_gamma first"].set_index("ranking")
    fast_t = fast.set_index("ranking").t_gamma
    # Censored slow runs count at their horizon: a lower bound on the ratio.
    ratio = np.minimum(paired.t_gamma, paired.horizon) / fast_t[paired.index]
    censored = slow[~slow.reached]
    return {
        "thm5_slow_bound_n_checked": len(checked),
        "thm5_slow_bound_holds_all": bool(
            len(checked) > 0 and (checked.t_gamma >= checked.slow_lower_bound).all()
        ),
        "thm5_fast_bound_n_checked": len(fast),
        "thm5_fast_bound_holds_all": bool((fast.t_gamma <= fast.fast_upper_bound).all()),
        "sweep_n_slow": len(slow),
        "sweep_n_fast": len(fast),
        "sweep_n_censored_slow": len(censored),
        "sweep_n_censored_slow_limit_below_target": int((censored.limit_gold < target).sum()),
        "sweep_n_censored_fast": int((~fast.reached).sum()),
        "sweep_accuracy_min": float(sweep.accuracy.min()),
        "sweep_accuracy_max": float(sweep.accuracy.max()),
        "sweep_accuracy_min_fast": float(fast.accuracy.min()),
        "sweep_min_paired_slow_over_fast": float(ratio.min()),
        "sweep_max_fast_t_gamma": float(fast.t_gamma.max()),
        "sweep_min_slow_t_gamma": finite_or_nan(slow.t_gamma),
        "sweep_min_slow_ratio_to_bound": finite_or_nan(checked.t_gamma / checked.slow_lower_bound),
        "sweep_horizon_slow": float(slow.horizon.max()),
    }


def run(p: AccuracySpeedParams) -> AccuracySpeedResult:
    """Theorem 2's head-to-head, then the accuracy sweep; saves the construction for
    theory_best_of_n (artifacts/theory_accuracy_speed/construction.json)."""
    setup = setup_from(p)
    Theorem2Construction.of(p).save(paths.THEORY_CONSTRUCTION)
    rho = bounds.theorem5_rho(setup.gold_mean0, setup.gamma, setup.gold[setup.target])
    max_lam = bounds.theorem5_max_lambda(setup.pi0[setup.target], rho, setup.pi0.min())
    summary, curves = head_to_head(p, setup)
    sweep = accuracy_sweep(p, setup)
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
        **sweep_metrics(sweep, setup.gold_mean0 + setup.gamma),
    }
    return AccuracySpeedResult(
        head_to_head=summary, gold_curves=curves, sweep=sweep, metrics=metrics
    )
