"""Evidence for each kind of claim, from tidy tables of runs: one row per (rm, seed) with the
increase read at the claim's point (and `policy` for Section 4.2). Every builder returns an
`Evidence`: the statistic with its interval over what varies, the number of units, the test's
own outcome and the robustness gates; `rules.decide` turns it into the verdict.

* correlations over RMs: two-level bootstrap interval, exact permutation p over the RMs,
  leave-one-RM-out and the same statistic under the other normalisation (`rm_statistic`);
* seed-paired comparisons: t-intervals, Holm over several candidates (`all_above`,
  `some_above`, `paired`);
* a predictor's ranking against trivial predictors and a random ranking (`ranking`);
* Table 2's statistics under two normalisations (`survival`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from rmteacher.verdicts.resampling import (
    STATISTICS,
    holm,
    leave_one_out,
    paired_t,
    pearson,
    percentile_interval,
    permutation_test,
    spearman,
    two_level_bootstrap,
)
from rmteacher.verdicts.rules import NOT_REPRODUCED, REPRODUCED, UNDECIDED, Evidence, finite

STATISTICS_BY_NAME = STATISTICS


def seeds_by_rm(runs: pd.DataFrame, column: str, rms: Sequence[str]) -> dict[str, np.ndarray]:
    """{rm: that RM's per-seed values of `column`} for the RMs of `rms` that have runs."""
    groups = {rm: g[column].to_numpy(dtype=float) for rm, g in runs.groupby("rm")}
    return {rm: groups[rm] for rm in rms if rm in groups and len(groups[rm])}


def _sign_gate(values: Mapping[str, float]) -> tuple[bool, str]:
    """Leave-one-out gate: every left-out statistic is positive; the phrase names the worst."""
    if not values:
        return False, "no units"
    worst = min(values, key=lambda k: values[k] if finite(values[k]) else -np.inf)
    ok = all(finite(v) and v > 0 for v in values.values())
    return ok, f"without {worst}: {values[worst]:+.2f}"


def rm_statistic(
    statistic: Callable[[list[str], np.ndarray], float],
    seeds: Mapping[str, np.ndarray],
    n_boot: int,
    seed: int,
    alt_seeds: Mapping[str, np.ndarray] | None = None,
    level: float = 0.95,
    min_distinct: int = 3,
) -> Evidence:
    """A statistic over RMs of their mean increases (`statistic(rms, means)`), with a two-level
    bootstrap interval, the leave-one-RM-out gate and, given `alt_seeds` (the same RMs' runs
    under the other normalisation), the other-normalisation gate. The outcome reads the
    interval (above 0: reproduced, below: not reproduced)."""
    rms = list(seeds)
    means = np.array([seeds[rm].mean() for rm in rms])
    value = statistic(rms, means) if len(rms) >= min_distinct else float("nan")
    draws, undefined = two_level_bootstrap(seeds, statistic, n_boot, seed, min_distinct)
    low, high = percentile_interval(draws, level)
    by_rm = dict(zip(rms, means, strict=True))
    loo = (
        leave_one_out(rms, lambda keep: statistic(keep, np.array([by_rm[r] for r in keep])))
        if len(rms) > min_distinct
        else {}
    )
    loo_ok, loo_detail = _sign_gate(loo) if loo else (False, "too few RMs to leave one out")
    gates = {"leave_one_rm_out": loo_ok}
    detail = {"leave_one_rm_out": loo_detail}
    alt_value = float("nan")
    if alt_seeds is not None:
        if set(rms) <= set(alt_seeds):
            alt_value = statistic(rms, np.array([alt_seeds[rm].mean() for rm in rms]))
            gates["other_normalisation"] = bool(finite(alt_value) and alt_value > 0)
            detail["other_normalisation"] = f"{alt_value:+.2f} under it"
        else:
            gates["other_normalisation"] = None
            detail["other_normalisation"] = "it did not run on these RMs"
    outcome = (
        REPRODUCED
        if finite(low) and low > 0
        else NOT_REPRODUCED
        if finite(high) and high < 0
        else UNDECIDED
    )
    return Evidence(
        value=value,
        low=low,
        high=high,
        n=len(rms),
        seeds=min((len(v) for v in seeds.values()), default=0),
        outcome=outcome,
        gates=gates,
        gate_detail=detail,
        detail=f"{value:+.2f} [{low:+.2f}, {high:+.2f}] over {len(rms)} RMs",
        extra={
            "undefined_share": undefined,
            "loo_min": min(loo.values()) if loo else float("nan"),
            "alt_value": alt_value,
        },
    )


def correlation_statistic(x: Mapping[str, float], method: str = "pearson"):
    """statistic(rms, means) = corr(x[rms], means)."""
    corr = STATISTICS[method]
    return lambda rms, means: corr([x[r] for r in rms], means)


def correlation(
    x: Mapping[str, float],
    seeds: Mapping[str, np.ndarray],
    n_boot: int,
    seed: int,
    alt_seeds: Mapping[str, np.ndarray] | None = None,
    method: str = "pearson",
    alpha: float = 0.05,
    level: float = 0.95,
) -> Evidence:
    """`rm_statistic` of corr(x, mean increase) plus the exact one-sided permutation p over the
    RMs (the random-ranking baseline): reproduced needs the interval above 0 and p < alpha."""
    evidence = rm_statistic(correlation_statistic(x, method), seeds, n_boot, seed, alt_seeds, level)
    rms = list(seeds)
    if 3 <= len(rms) <= 8:
        means = [seeds[r].mean() for r in rms]
        evidence.p = permutation_test([x[r] for r in rms], means, method, "greater")
    if evidence.outcome == REPRODUCED and not (finite(evidence.p) and evidence.p < alpha):
        evidence.outcome = UNDECIDED
    evidence.detail += f", permutation p {evidence.p:.3f}"
    return evidence


def difference_statistic(
    main: Mapping[str, float], others: Mapping[str, Mapping[str, float]], method="pearson"
):
    """statistic(rms, means) = corr(main) - max over `others` of corr(other)."""
    corr = STATISTICS[method]

    def statistic(rms, means):
        values = [corr([o[r] for r in rms], means) for o in others.values()]
        if not np.isfinite(values).any():
            return float("nan")
        return corr([main[r] for r in rms], means) - float(np.nanmax(values))

    return statistic


def _pairs(runs: pd.DataFrame, a: str, b: str, column: str) -> np.ndarray:
    table = runs.pivot_table(index="seed", columns="rm", values=column)
    if a not in table or b not in table:
        return np.array([])
    return (table[a] - table[b]).dropna().to_numpy()


def paired_rows(runs, pairs: Sequence[tuple[str, str]], column: str) -> pd.DataFrame:
    """Per (a, b): mean of a - b over shared seeds, its t-interval, seeds and one-sided p."""
    rows = [(a, b, *paired_t(_pairs(runs, a, b, column))) for a, b in pairs]
    return pd.DataFrame(rows, columns=["rm", "against", "difference", "low", "high", "seeds", "p"])


def all_above(runs, slow: str, others: Sequence[str], column: str = "gold_increase"):
    """'`slow` is below every RM of `others`': each other - slow paired; reproduced if every
    interval lies above 0, not reproduced if any lies below. Value: the smallest difference."""
    table = paired_rows(runs, [(o, slow) for o in others], column)
    if table.empty or table.difference.isna().all():
        return Evidence(float("nan")), table
    worst = table.loc[table.difference.idxmin()]
    outcome = (
        REPRODUCED
        if (table.low > 0).all()
        else NOT_REPRODUCED
        if (table.high < 0).any()
        else UNDECIDED
    )
    evidence = Evidence(
        value=float(worst.difference),
        low=float(worst.low),
        high=float(worst.high),
        n=int(table.seeds.min()),
        seeds=int(table.seeds.min()),
        outcome=outcome,
        detail=f"closest: {worst.rm} {worst.difference:+.3f} [{worst.low:+.3f}, {worst.high:+.3f}]",
    )
    return evidence, table


def some_above(
    runs, candidates: Sequence[str], target: str, column: str = "gold_increase", alpha=0.05
):
    """'Some candidate beats `target`': one-sided paired t-tests, Holm-corrected; reproduced if
    any is significant, not reproduced if every interval lies below 0. Value: the largest
    difference; p: the smallest Holm-adjusted p."""
    table = paired_rows(runs, [(c, target) for c in candidates], column)
    if table.empty or table.difference.isna().all():
        return Evidence(float("nan")), table
    table["p_holm"] = holm(table.p.to_numpy())
    best = table.loc[table.difference.idxmax()]
    outcome = (
        REPRODUCED
        if (table.p_holm < alpha).any()
        else NOT_REPRODUCED
        if (table.high < 0).all()
        else UNDECIDED
    )
    p = float(table.p_holm.min()) if table.p_holm.notna().any() else float("nan")
    evidence = Evidence(
        value=float(best.difference),
        low=float(best.low),
        high=float(best.high),
        n=int(table.seeds.min()),
        seeds=int(table.seeds.min()),
        p=p,
        outcome=outcome,
        detail=f"best: {best.rm} {best.difference:+.3f}, Holm p {p:.3g}",
    )
    return evidence, table


def paired(runs, a: str, b: str, column: str = "gold_increase") -> Evidence:
    """'a beats b': the seed-paired t-interval of a - b above 0."""
    mean, low, high, n, p = paired_t(_pairs(runs, a, b, column))
    outcome = (
        REPRODUCED
        if finite(low) and low > 0
        else NOT_REPRODUCED
        if finite(high) and high < 0
        else UNDECIDED
    )
    return Evidence(
        mean, low, high, n, n, p, outcome, detail=f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"
    )


def coefficient_statistic(features: pd.DataFrame, index: int):
    """statistic(rms, means) = coefficient `index` of means ~ 1 + features[rms] (least squares);
    NaN when the design is rank-deficient."""

    def statistic(rms, means):
        x = np.column_stack([np.ones(len(rms)), features.loc[list(rms)].to_numpy(dtype=float)])
        if np.linalg.matrix_rank(x) < x.shape[1]:
            return float("nan")
        coef, *_ = np.linalg.lstsq(x, np.asarray(means, dtype=float), rcond=None)
        return float(coef[index])

    return statistic


def survival(
    props: pd.DataFrame,
    standard: pd.DataFrame,
    alternative: pd.DataFrame,
    rms: Sequence[str],
    n_boot: int,
    seed: int,
    properties: Sequence[str] = ("reward_variance", "variance_and_accuracy"),
    level: float = 0.95,
) -> tuple[Evidence, pd.DataFrame]:
    """Table 2's statistics of `properties` over `rms` under both normalisations, on the seeds
    both ran: kept when the alternative's two-level interval lies on the standard value's side
    of 0, reversed when on the other side (a zero-width or undefined interval is neither).
    Reproduced if all are kept, not reproduced if any is reversed. Value: the number kept."""
    shared = sorted(set(standard.seed) & set(alternative.seed))
    std = standard[standard.seed.isin(shared)]
    alt = alternative[alternative.seed.isin(shared)]
    rows = []
    for prop in properties:
        x = props[prop].to_dict()
        for column in ("proxy_increase", "gold_increase"):
            std_seeds = seeds_by_rm(std, column, rms)
            alt_seeds = seeds_by_rm(alt, column, rms)
            for method in ("pearson", "spearman"):
                stat = correlation_statistic(x, method)
                units = [r for r in rms if r in std_seeds and r in alt_seeds]
                value = stat(units, np.array([std_seeds[r].mean() for r in units]))
                alt_value = stat(units, np.array([alt_seeds[r].mean() for r in units]))
                draws, _ = two_level_bootstrap({r: alt_seeds[r] for r in units}, stat, n_boot, seed)
                low, high = percentile_interval(draws, level)
                real = finite(low, high) and high > low
                side = np.sign(value) if finite(value) else 0
                rows.append(
                    {
                        "property": prop,
                        "statistic": f"{column.split('_')[0]}_{method}",
                        "standard": value,
                        "alternative": alt_value,
                        "alternative_low": low,
                        "alternative_high": high,
                        "kept": bool(real and ((side > 0 and low > 0) or (side < 0 and high < 0))),
                        "reversed": bool(
                            real and ((side > 0 and high < 0) or (side < 0 and low > 0))
                        ),
                        "sign_flipped": bool(finite(alt_value) and np.sign(alt_value) != side),
                    }
                )
    table = pd.DataFrame(rows)
    counts = [len(g) for _, g in std.groupby("rm")] + [len(g) for _, g in alt.groupby("rm")]
    outcome = (
        REPRODUCED
        if len(table) and table.kept.all()
        else NOT_REPRODUCED
        if table.reversed.any()
        else UNDECIDED
    )
    n_units = len([r for r in rms if r in set(std.rm) and r in set(alt.rm)])
    evidence = Evidence(
        value=float(table.kept.sum()),
        n=n_units,
        seeds=min(counts, default=0),
        outcome=outcome,
        detail=f"{int(table.kept.sum())} of {len(table)} kept, {int(table.reversed.sum())} "
        f"reversed, {int(table.sign_flipped.sum())} point values change sign",
    )
    return evidence, table


# ---- Section 4.2: a predictor's ranking against trivial ones ---------------------------------


def _mean_spearman(scores: Mapping[str, Mapping[str, float]], rms, means_by_policy) -> float:
    """Mean over policies of Spearman(scores[policy][rms], means); a predictor constant over
    the RMs ranks nothing and scores 0."""
    values = []
    for policy, means in means_by_policy.items():
        x = [scores[policy][r] for r in rms]
        values.append(0.0 if np.ptp(x) == 0 else spearman(x, means))
    return float(np.mean(values)) if values else float("nan")


def ranking(
    scores: Mapping[str, Mapping[str, Mapping[str, float]]],
    seeds: Mapping[str, Mapping[str, np.ndarray]],
    predictor: str,
    baselines: Sequence[str],
    n_boot: int,
    seed: int,
    n_random: int = 20000,
    alpha: float = 0.05,
    level: float = 0.95,
) -> tuple[Evidence, dict]:
    """Does `predictor` rank each policy's RMs by realised r_G increase better than the best
    trivial predictor? `scores[name][policy][rm]`: each predictor's value (higher = predicted
    better); `seeds[policy][rm]`: the runs' r_G increases. The statistic is the mean over
    policies of Spearman(predictor, mean increase) minus the same for the baseline with the
    largest point value; its interval comes from a two-level bootstrap that draws RMs jointly for
    every policy (the same RM set is ranked on each) and then each cell's seeds. A random
    ranking's distribution of the mean Spearman (`n_random` draws) gives the p of the predictor.
    Returns the evidence and a dict of the numbers behind it."""
    policies = list(seeds)
    rms = (
        [r for r in seeds[policies[0]] if all(r in seeds[p] for p in policies)] if policies else []
    )
    if len(rms) < 3:
        return Evidence(float("nan"), n=len(rms)), {}
    point_means = {p: np.array([seeds[p][r].mean() for r in rms]) for p in policies}
    point = {
        name: _mean_spearman(scores[name], rms, point_means) for name in (predictor, *baselines)
    }
    best = max(baselines, key=lambda b: point[b])
    rng = np.random.default_rng(seed)
    draws = np.full((n_boot, 2), np.nan)
    for b in range(n_boot):
        picks = rng.integers(0, len(rms), len(rms))
        if len(set(picks.tolist())) < 3:
            continue
        picked = [rms[i] for i in picks]
        means = {
            p: np.array([rng.choice(seeds[p][r], len(seeds[p][r])).mean() for r in picked])
            for p in policies
        }
        if any(np.ptp(m) == 0 for m in means.values()):
            continue
        draws[b] = [
            _mean_spearman(scores[predictor], picked, means),
            _mean_spearman(scores[best], picked, means),
        ]
    low, high = percentile_interval(draws[:, 0] - draws[:, 1], level)
    s_low, s_high = percentile_interval(draws[:, 0], level)
    random = np.array(
        [
            np.mean([spearman(rng.permutation(len(rms)), point_means[p]) for p in policies])
            for _ in range(n_random)
        ]
    )
    q95 = float(np.quantile(random, 0.95))
    p_random = float((random >= point[predictor] - 1e-12).mean())
    value = point[predictor] - point[best]
    outcome = (
        REPRODUCED
        if finite(low) and low > 0 and p_random < alpha
        else NOT_REPRODUCED
        if finite(high) and high < 0
        else UNDECIDED
    )
    cells = [len(seeds[p][r]) for p in policies for r in rms]
    evidence = Evidence(
        value=value,
        low=low,
        high=high,
        n=len(rms),
        seeds=min(cells),
        p=p_random,
        outcome=outcome,
        detail=f"mean Spearman {point[predictor]:+.2f} against {point[best]:+.2f} for {best}, "
        f"difference [{low:+.2f}, {high:+.2f}]; random ranking p {p_random:.3f}",
    )
    numbers = {
        "spearman": point[predictor],
        "spearman_low": s_low,
        "spearman_high": s_high,
        "baseline": best,
        "baseline_spearman": point[best],
        "random_q95": q95,
        "undefined_share": float(np.isnan(draws[:, 0]).mean()),
        **{f"spearman_{name}": value for name, value in point.items()},
    }
    return evidence, numbers


def interaction(
    best_rms: Sequence[str],
    runner_up_lows: Sequence[float],
    f: float,
    p: float,
    n_policies: int,
    seeds: int,
    alpha: float = 0.05,
) -> Evidence:
    """'The best RM changes across policies': reproduced if the policy x RM interaction is
    significant and the policies' best RMs differ; not reproduced if one RM is best for every
    policy and beats its runner-up on each (Welch interval above 0); else undecided."""
    distinct = len(set(best_rms)) > 1
    if distinct and finite(p) and p < alpha:
        outcome = REPRODUCED
    elif not distinct and len(runner_up_lows) and all(finite(v) and v > 0 for v in runner_up_lows):
        outcome = NOT_REPRODUCED
    else:
        outcome = UNDECIDED
    return Evidence(
        value=f,
        n=n_policies,
        seeds=seeds,
        p=p,
        outcome=outcome,
        detail=f"interaction F {f:.2f}, p {p:.3g}, {len(set(best_rms))} distinct best RM(s)",
    )


def every_seed(smaller: Sequence[bool]) -> Evidence:
    """'On every seed': reproduced if all hold, not reproduced if none does."""
    smaller = [bool(s) for s in smaller]
    outcome = (
        REPRODUCED
        if smaller and all(smaller)
        else NOT_REPRODUCED
        if smaller and not any(smaller)
        else UNDECIDED
    )
    return Evidence(
        value=float(sum(smaller)),
        n=len(smaller),
        seeds=len(smaller),
        outcome=outcome,
        detail=f"{sum(smaller)} of {len(smaller)} seeds",
    )


__all__ = [
    "all_above",
    "coefficient_statistic",
    "correlation",
    "correlation_statistic",
    "difference_statistic",
    "every_seed",
    "interaction",
    "paired",
    "paired_rows",
    "pearson",
    "ranking",
    "rm_statistic",
    "seeds_by_rm",
    "some_above",
    "survival",
]
