"""Power calculations for the language-track verdicts, from the per-seed spread of runs made.

Controlled family (Section 4.1). The verdict reads the variance coefficient b_v of the plane

    increase_{m,s} = b_0 + b_v * variance_m + b_a * accuracy_m + u_m + e_{m,s}

fitted by least squares over every (member m, seed s) run, with a 95 % interval from the bootstrap
of `sec41.surface_fit` (members resampled, then seeds within each). Two noise sources set its
width: the seed noise e (sd sigma, shrinks with more seeds) and each member's departure u from
the plane (sd tau, the lack of fit; it does not shrink with seeds, only with more members or a
wider variance axis). `noise_components` estimates both from runs; `surface_width` simulates the
verdict's own bootstrap on a new member design with a given number of seeds; `seeds_for_width` is
the smallest seed count whose simulated interval is narrow enough.

Section 4.2 cells. "Best RM vs runner-up" is a Welch interval of two cells' mean increase;
`seeds_for_difference` is the seed count per cell at which a given difference is detected by a
two-sided 5 % test with the stated power (normal approximation, equal cell sds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class NoiseComponents:
    """Plane coefficients (b_0, b_v, b_a), seed sd sigma and lack-of-fit sd tau of family runs."""

    coefficients: tuple[float, float, float]
    sigma: float
    tau: float
    n_members: int
    n_runs: int


def design_matrix(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([np.ones(len(frame)), frame.reward_variance, frame.onpolicy_accuracy])


def noise_components(runs: pd.DataFrame) -> NoiseComponents:
    """sigma: the pooled within-member sd of `gold_increase`; tau: the sd of member means about
    the plane fitted to them, less the part seed noise explains (method of moments, floored at
    0). `runs` has columns rm, seed, reward_variance, onpolicy_accuracy, gold_increase."""
    groups = runs.groupby("rm")
    sizes = groups.size()
    if (sizes < 2).any() or len(sizes) < 4:
        raise ValueError("noise_components needs >= 4 members with >= 2 seeds each")
    pooled = float((groups.gold_increase.var(ddof=1) * (sizes - 1)).sum() / (sizes - 1).sum())
    members = groups.agg(
        gold_increase=("gold_increase", "mean"),
        reward_variance=("reward_variance", "first"),
        onpolicy_accuracy=("onpolicy_accuracy", "first"),
    )
    x = design_matrix(members)
    coef, *_ = np.linalg.lstsq(x, members.gold_increase.to_numpy(), rcond=None)
    residual = members.gold_increase.to_numpy() - x @ coef
    dof = len(members) - np.linalg.matrix_rank(x)
    between = float((residual**2).sum() / dof) if dof > 0 else float("nan")
    tau2 = max(0.0, between - pooled * float(np.mean(1.0 / sizes)))
    return NoiseComponents(
        tuple(float(c) for c in coef),
        float(np.sqrt(pooled)),
        float(np.sqrt(tau2)),
        len(members),
        len(runs),
    )


def _bootstrap_interval(values: np.ndarray, x_members: np.ndarray, n_boot: int, rng) -> float:
    """Width of the 95 % interval of b_v from the two-level bootstrap of `surface_fit`:
    `values` [M, n] (member x seed increases), `x_members` [M, 3] the members' design rows."""
    m, n = values.shape
    coefs = []
    for _ in range(n_boot):
        picked = rng.integers(0, m, m)
        seeds = rng.integers(0, n, (m, n))
        y = values[picked[:, None], seeds].ravel()
        x = np.repeat(x_members[picked], n, axis=0)
        if np.ptp(x[:, 1]) == 0 or np.ptp(x[:, 2]) == 0:
            continue  # surface_fit skips draws without spread in a property
        coefs.append(np.linalg.lstsq(x, y, rcond=None)[0][1])
    low, high = np.quantile(coefs, [0.025, 0.975])
    return float(high - low)


def surface_width(
    members: pd.DataFrame,
    components: NoiseComponents,
    n_seeds: int,
    *,
    n_sim: int = 200,
    n_boot: int = 400,
    seed: int = 0,
) -> np.ndarray:
    """Simulated widths [n_sim] of the variance coefficient's 95 % interval when every member of
    `members` (columns reward_variance, onpolicy_accuracy) runs `n_seeds` seeds, increases drawn
    from the plane with lack of fit tau and seed noise sigma."""
    if n_seeds < 2:
        raise ValueError("surface_width: the bootstrap over seeds needs n_seeds >= 2")
    rng = np.random.default_rng(seed)
    x = design_matrix(members)
    mean = x @ np.asarray(components.coefficients)
    widths = np.empty(n_sim)
    for i in range(n_sim):
        u = rng.normal(0.0, components.tau, len(members))
        e = rng.normal(0.0, components.sigma, (len(members), n_seeds))
        widths[i] = _bootstrap_interval((mean + u)[:, None] + e, x, n_boot, rng)
    return widths


def seeds_for_width(
    members: pd.DataFrame,
    components: NoiseComponents,
    target: float,
    *,
    candidates=(2, 3, 5, 10, 15, 20, 30, 50),
    assurance: float = 0.8,
    **kwargs,
) -> pd.DataFrame:
    """Per candidate seed count: the median and `assurance` quantile of the simulated width,
    and whether that quantile is <= `target` (the smallest such count is the answer)."""
    rows = []
    for n in candidates:
        widths = surface_width(members, components, n, **kwargs)
        q = float(np.quantile(widths, assurance))
        rows.append(
            {
                "seeds": n,
                "median_width": float(np.median(widths)),
                "width_q": q,
                "narrow_enough": q <= target,
            }
        )
    return pd.DataFrame(rows)


def seeds_for_difference(sd: float, difference: float, power: float = 0.8, alpha: float = 0.05):
    """Seeds per cell for a two-sided `alpha` test of two cell means `difference` apart (each
    cell's seed sd `sd`) to reject with probability `power` (normal approximation)."""
    if sd <= 0 or difference <= 0:
        raise ValueError("seeds_for_difference: sd and difference must be positive")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return int(np.ceil(2 * (z * sd / difference) ** 2))
