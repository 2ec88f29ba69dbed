"""Stage theory_best_of_n: under Best-of-N a perfectly accurate RM is optimal (Proposition 1),
the same RM that is slowest under policy gradient (Theorem 2).

The construction (r_G, pi_0, the two Theorem 2 RMs, the seed) is theory_accuracy_speed's: `run`
takes it as `construction` and, when none is given, reads the one that stage saved
(artifacts/theory_accuracy_speed/construction.json, a declared dependency), so the two stages
cannot drift apart. The notebook relies on that default; tests pass one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rmteacher.core import paths
from rmteacher.stages.theory.params.best_of_n import BestOfNParams
from rmteacher.theory.exact import constructions, quantities
from rmteacher.theory.theorem2 import (
    ACCURATE,
    REMARK2,
    Theorem2Construction,
    setup_from,
    theorem2_rms,
    theorem2_times,
)


@dataclass(frozen=True)
class BestOfNResult:
    """Exact Best-of-N E[r_G] per RM and N (`gold_by_n`), the Monte Carlo check of the exact
    values (`monte_carlo_check`), and the stage's metrics."""

    gold_by_n: pd.DataFrame
    monte_carlo_check: pd.DataFrame
    metrics: dict


LABELS = {ACCURATE: "perfectly accurate (slow under PG)", REMARK2: "accuracy 2/|Y| (fast under PG)"}


def candidate_rms(p, construction, setup) -> dict[str, np.ndarray]:
    """Theorem 2's two RMs, then p.n_random_rms RMs ranking outputs like r_G + noise (seeded
    by the construction's seed + 2)."""
    rng = np.random.default_rng(construction.seed + 2)
    rms = {LABELS[name]: rm for name, rm in theorem2_rms(construction, setup).items()}
    for k in range(p.n_random_rms):
        noisy = setup.gold + p.noise * rng.standard_normal(setup.gold.size)
        rms[f"noisy r_G #{k}"] = constructions.values_following(noisy, -1.0, 1.0)
    return rms


def run(p: BestOfNParams, construction: Theorem2Construction | None = None) -> BestOfNResult:
    """Best-of-N with Theorem 2's RMs and noisy ones. `construction`: Theorem 2's construction
    (default: the one theory_accuracy_speed saved; its params work too)."""
    if construction is None:
        construction = Theorem2Construction.load(paths.THEORY_CONSTRUCTION)
    setup = setup_from(construction)
    rms = candidate_rms(p, construction, setup)
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
    rng = np.random.default_rng(construction.seed + 3)
    checks = []
    accurate, fast = LABELS[ACCURATE], LABELS[REMARK2]
    for name in (accurate, fast):
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
    others = wide.drop(columns=accurate)
    times = theorem2_times(construction, setup)
    metrics = {
        "bon_accurate_rm_is_best": bool(
            (wide[accurate].to_numpy()[:, None] >= others.to_numpy() - 1e-12).all()
        ),
        "bon_n_rms_compared": len(rms),
        "bon_gold_at_max_n_accurate": float(wide[accurate].iloc[-1]),
        "bon_gold_at_max_n_low_accuracy": float(wide[fast].iloc[-1]),
        "bon_gold_at_max_n_best_other": float(others.iloc[-1].max()),
        "bon_mc_max_abs_z": float(mc.z.abs().max()),
        "pg_t_gamma_accurate_rm": float(times[ACCURATE]),
        "pg_t_gamma_low_accuracy_rm": float(times[REMARK2]),
        "max_gold_reward": float(setup.gold.max()),
    }
    return BestOfNResult(gold_by_n=table, monte_carlo_check=mc, metrics=metrics)
