"""Intervals and tests over the units that vary: a two-level bootstrap (units, then seeds within
each drawn unit), an exact permutation test over the units, leave-one-unit-out statistics,
seed-paired t-intervals and Holm's correction.

A unit is what an RM property is measured on (an RM, or an RM on one policy); its seeds are
replicate runs. A correlation over n RMs has n points whatever the number of seeds: resampling
seeds alone holds the RMs fixed and gives an interval that ignores how few they are."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

MAX_EXACT_UNITS = 8  # 8! = 40320 orderings


def pearson(x, y) -> float:
    """Pearson correlation; NaN when either side is constant or has fewer than 3 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x, y) -> float:
    """Spearman correlation (average ranks for ties); NaN where Pearson of the ranks is."""
    return pearson(stats.rankdata(x), stats.rankdata(y))


STATISTICS: dict[str, Callable] = {"pearson": pearson, "spearman": spearman}


def two_level_bootstrap(
    seeds_by_unit: Mapping[str, np.ndarray],
    statistic: Callable[[list[str], np.ndarray], float],
    n_boot: int,
    seed: int,
    min_distinct: int = 3,
) -> tuple[np.ndarray, float]:
    """Draws of `statistic(units, means)` where each draw picks len(units) units with
    replacement and, within each pick, that unit's seed values with replacement (`means` are the
    resampled seed means, one per pick). A draw with fewer than `min_distinct` distinct units is
    undefined (NaN), as is one where the statistic is. Returns (draws, share of undefined
    draws)."""
    rng = np.random.default_rng(seed)
    units = list(seeds_by_unit)
    values = [np.asarray(seeds_by_unit[u], dtype=float) for u in units]
    draws = np.full(n_boot, np.nan)
    for b in range(n_boot):
        picks = rng.integers(0, len(units), len(units))
        if len(set(picks.tolist())) < min_distinct:
            continue
        means = np.array([rng.choice(values[i], len(values[i])).mean() for i in picks])
        draws[b] = statistic([units[i] for i in picks], means)
    return draws, float(np.isnan(draws).mean())


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central `level` interval of the defined draws (NaN, NaN if fewer than 10 are)."""
    defined = draws[np.isfinite(draws)]
    if len(defined) < 10:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low, high = np.quantile(defined, [tail, 1 - tail])
    return float(low), float(high)


def correlation_draws(
    x: Mapping[str, float],
    seeds_by_unit: Mapping[str, np.ndarray],
    n_boot: int,
    seed: int,
    method: str = "pearson",
) -> tuple[np.ndarray, float]:
    """Two-level bootstrap draws of corr(x, mean increase) over the units (RMs and seeds
    resampled); a draw whose picked x values are all equal is undefined."""
    corr = STATISTICS[method]

    def statistic(units, means):
        return corr([x[u] for u in units], means)

    return two_level_bootstrap(seeds_by_unit, statistic, n_boot, seed)


def permutation_test(x, y, method: str = "pearson", alternative: str = "greater") -> float:
    """Exact permutation p-value of corr(x, y) over all n! orderings of y (n <= 8): the share
    of orderings whose correlation is at least the observed one ('greater'), at most it
    ('less'), or at least it in size ('two-sided'). The smallest attainable p is 1/n!."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n > MAX_EXACT_UNITS:
        raise ValueError(f"exact permutation test: {n} units, at most {MAX_EXACT_UNITS}")
    if method == "spearman":
        x, y = stats.rankdata(x), stats.rankdata(y)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    xs = (x - x.mean()) / np.sqrt(((x - x.mean()) ** 2).sum())
    ys = (y - y.mean()) / np.sqrt(((y - y.mean()) ** 2).sum())
    orders = np.array(list(itertools.permutations(range(n))))
    null = ys[orders] @ xs
    observed = float(xs @ ys)
    tol = 1e-12
    if alternative == "greater":
        hits = null >= observed - tol
    elif alternative == "less":
        hits = null <= observed + tol
    else:
        hits = np.abs(null) >= abs(observed) - tol
    return float(hits.mean())


def smallest_p(n: int) -> float:
    """The smallest one-sided p an exact permutation test over n distinct units can give."""
    return 1 / math.factorial(n)


def leave_one_out(units: Sequence[str], statistic: Callable[[list[str]], float]) -> dict:
    """{left-out unit: statistic over the others}."""
    return {u: statistic([v for v in units if v != u]) for u in units}


def paired_t(differences) -> tuple[float, float, float, int, float]:
    """Mean of seed-paired differences, its 95 % t-interval, the number of pairs and the
    one-sided p of 'mean > 0' (interval and p are NaN with fewer than 2 pairs, or when every
    difference is the same: a zero-width interval is no evidence)."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    if n < 2 or np.ptp(d) == 0:
        return mean, float("nan"), float("nan"), n, float("nan")
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
    p = float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)
    return mean, float(mean - half), float(mean + half), n, p


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (NaN stays NaN and counts as a hypothesis)."""
    p = np.asarray(pvalues, dtype=float)
    filled = np.where(np.isnan(p), 1.0, p)
    order = np.argsort(filled)
    adjusted = np.empty_like(filled)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, filled[i] * (len(p) - rank)))
        adjusted[i] = running
    return np.where(np.isnan(p), np.nan, adjusted)
