"""Stage theory_best_of_n: under Best-of-N a perfectly accurate RM is optimal (Proposition 1),
the same RM that is slowest under policy gradient (Theorem 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmteacher.theory import bounds, constructions, quantities
from rmteacher.theory.experiments.accuracy_speed import setup_from, time_to_gamma


def candidate_rms(p, setup) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(p.seed + 2)
    rms = {
        "perfectly accurate (slow under PG)": constructions.slow_rm(setup.gold, p.big_t),
        "accuracy 2/|Y| (fast under PG)": constructions.fast_rm(
            constructions.remark2_order(setup.gold, setup.target),
            setup.target,
            setup.pi0[setup.target],
        ),
    }
    for k in range(p.n_random_rms):
        noisy = setup.gold + p.noise * rng.standard_normal(setup.gold.size)
        rms[f"noisy r_G #{k}"] = constructions.values_following(noisy, -1.0, 1.0)
    return rms


def run(p) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Return (Best-of-N E[r_G] per RM and N, Monte Carlo check, metrics)."""
    setup = setup_from(p)
    rms = candidate_rms(p, setup)
    rows = []
    for name, rm in rms.items():
        acc = quantities.accuracy(rm, setup.gold)
        for n in range(1, p.max_n + 1):
            rows.append(
                dict(
                    rm=name,
                    accuracy=acc,
                    n=n,
                    gold_reward=quantities.best_of_n_expected_reward(setup.pi0, rm, setup.gold, n),
                )
            )
    table = pd.DataFrame(rows)
    rng = np.random.default_rng(p.seed + 3)
    checks = []
    for name in list(rms)[:2]:
        for n in sorted({1, 2, 4, p.max_n}):
            exact = quantities.best_of_n_expected_reward(setup.pi0, rms[name], setup.gold, n)
            est, se = quantities.best_of_n_monte_carlo(
                setup.pi0, rms[name], setup.gold, n, p.n_mc, rng
            )
            checks.append(
                dict(rm=name, n=n, exact=exact, monte_carlo=est, std_error=se, z=(est - exact) / se)
            )
    mc = pd.DataFrame(checks)
    wide = table.pivot(index="n", columns="rm", values="gold_reward")
    accurate, fast = list(rms)[:2]
    others = wide.drop(columns=accurate)
    slow_bound = bounds.theorem5_slow_lower_bound(p.big_t, setup.gamma, 1)
    t_acc = time_to_gamma(setup, rms[accurate], 0.0, 5000 * slow_bound)
    t_fast = time_to_gamma(setup, rms[fast], 0.0, 5000 * slow_bound)
    metrics = {
        "bon_accurate_rm_is_best": bool(
            (wide[accurate].to_numpy()[:, None] >= others.to_numpy() - 1e-12).all()
        ),
        "bon_n_rms_compared": len(rms),
        "bon_gold_at_max_n_accurate": float(wide[accurate].iloc[-1]),
        "bon_gold_at_max_n_low_accuracy": float(wide[fast].iloc[-1]),
        "bon_gold_at_max_n_best_other": float(others.iloc[-1].max()),
        "bon_mc_max_abs_z": float(mc.z.abs().max()),
        "pg_t_gamma_accurate_rm": float(t_acc),
        "pg_t_gamma_low_accuracy_rm": float(t_fast),
        "max_gold_reward": float(setup.gold.max()),
    }
    return table, mc, metrics
