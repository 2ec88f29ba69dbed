"""Section 4.1's statistics: Table 2 (correlations of RM properties measured on the initial
policy with the reward increases their RLOO runs achieve) with intervals that resample RMs and
seeds, the controlled family's response surface, increases at matched KL and the clipping
ablation. The verdicts on the claims are decided by `rmteacher.verdicts` (the claims registry).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from rmteacher.metrics.rm_metrics import correlation
from rmteacher.paper import TABLE2, TABLE2_CELLS, table2_frame
from rmteacher.verdicts.sections import at_kl

PROPERTY_LABELS = {
    "reward_variance": "Reward variance",
    "onpolicy_accuracy": "On-policy acc.",
    "onpolicy_accuracy_untied": "On-policy acc. (untied)",
    "offpolicy_accuracy": "Off-policy acc.",
    "accuracy_mean": "On- & off-policy acc.",
    "variance_and_accuracy": "Reward variance & acc.",
}
ACCURACIES = (
    "onpolicy_accuracy",
    "onpolicy_accuracy_untied",
    "offpolicy_accuracy",
    "accuracy_mean",
)
CELLS = TABLE2_CELLS


def rm_properties(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 columns plus the paper's combined measures (indexed by rm): the mean of on- and
    off-policy accuracy, and the mean of reward variance and that accuracy mean."""
    columns = ["reward_variance", "onpolicy_accuracy", "offpolicy_accuracy"]
    if "onpolicy_accuracy_untied" in table:
        columns.append("onpolicy_accuracy_untied")
    props = table.set_index("rm")[columns]
    props = props.assign(accuracy_mean=(props.onpolicy_accuracy + props.offpolicy_accuracy) / 2)
    return props.assign(variance_and_accuracy=(props.reward_variance + props.accuracy_mean) / 2)


def increases_at(curves: pd.DataFrame, epoch: float) -> pd.DataFrame:
    """Per run (rm, seed and, if present, variant) the proxy and r_G increase and the KL at the
    evaluation point nearest `epoch` among that run's points."""
    keys = [k for k in ("rm", "variant", "seed") if k in curves]
    nearest = (curves.epoch - epoch).abs()
    idx = nearest.groupby([curves[k] for k in keys]).idxmin()
    columns = [*keys, "epoch", "proxy_increase", "gold_increase"]
    columns += [c for c in ("kl",) if c in curves]
    return curves.loc[idx.to_numpy(), columns].reset_index(drop=True)


def correlation_table(props: pd.DataFrame, increase: pd.DataFrame, rms=None) -> pd.DataFrame:
    """Pearson and Spearman of each property with the mean (over seeds) proxy and r_G increase,
    over `rms` (default: every RM present in both but r_G itself, as in the paper)."""
    mean = increase.groupby("rm")[["proxy_increase", "gold_increase"]].mean()
    if rms is None:
        rms = [rm for rm in props.index if rm in mean.index and rm != "gold"]
    rows = []
    for prop in [p for p in PROPERTY_LABELS if p in props]:
        x = props.loc[rms, prop].to_numpy()
        pp, ps = correlation(x, mean.loc[rms, "proxy_increase"])
        gp, gs = correlation(x, mean.loc[rms, "gold_increase"])
        rows.append(
            {
                "property": prop,
                "proxy_pearson": pp,
                "proxy_spearman": ps,
                "gold_pearson": gp,
                "gold_spearman": gs,
            }
        )
    return pd.DataFrame(rows).set_index("property")


def bootstrap_draws(
    props, increase, n_boot: int, seed: int, rms=None, resample_rms: bool = True
) -> np.ndarray:
    """[n_boot, properties, cells] Table 2 recomputed on resampled data: RMs drawn with
    replacement, then each drawn RM's seeds with replacement (a two-level bootstrap: a
    correlation over n RMs has n points whatever the seeds). A draw with fewer than 3 distinct
    RMs is NaN. With `resample_rms=False` only the seeds are resampled (the rule before issue
    17)."""
    rng = np.random.default_rng(seed)
    if rms is None:
        rms = [rm for rm in props.index if rm in set(increase.rm) and rm != "gold"]
    groups = {
        rm: g.reset_index(drop=True) for rm, g in increase[increase.rm.isin(rms)].groupby("rm")
    }
    shape = (len([p for p in PROPERTY_LABELS if p in props]), len(CELLS))
    draws = []
    for _ in range(n_boot):
        picks = [rms[i] for i in rng.integers(0, len(rms), len(rms))] if resample_rms else list(rms)
        if len(set(picks)) < 3:
            draws.append(np.full(shape, np.nan))
            continue
        names = [f"{rm}#{k}" for k, rm in enumerate(picks)]
        sample = pd.concat(
            [
                groups[rm].iloc[rng.integers(0, len(groups[rm]), len(groups[rm]))].assign(rm=name)
                for rm, name in zip(picks, names, strict=True)
            ]
        )
        sample_props = props.loc[picks].set_axis(names)
        draws.append(correlation_table(sample_props, sample, names)[list(CELLS)].to_numpy())
    return np.stack(draws)


def bootstrap_correlations(
    props,
    increase,
    n_boot: int,
    seed: int,
    rms=None,
    draws: np.ndarray | None = None,
    resample_rms: bool = True,
) -> pd.DataFrame:
    """Std and 2.5/97.5 % quantiles of every Table 2 cell under the two-level bootstrap (from
    `draws` of `bootstrap_draws` if already computed)."""
    if draws is None:
        draws = bootstrap_draws(props, increase, n_boot, seed, rms, resample_rms)
    index = correlation_table(props, increase, rms).index
    out = {}
    for j, cell in enumerate(CELLS):
        out[f"{cell}_std"] = np.nanstd(draws[:, :, j], axis=0)
        out[f"{cell}_low"] = np.nanquantile(draws[:, :, j], 0.025, axis=0)
        out[f"{cell}_high"] = np.nanquantile(draws[:, :, j], 0.975, axis=0)
    return pd.DataFrame(out, index=index)


def with_paper(corr: pd.DataFrame, table: dict = TABLE2) -> pd.DataFrame:
    """Table 2 (or Table 9) cells beside the paper's values, columns paper_<cell>."""
    return corr.join(table2_frame(table))


def surface_fit(family_runs: pd.DataFrame, n_boot: int, seed: int) -> dict:
    """Least squares gold_increase ~ 1 + variance + accuracy over the family's runs, with 95 %
    intervals from a bootstrap that resamples RMs and, within each, seeds. Returns the
    coefficients, their intervals and the fit's R^2."""
    rng = np.random.default_rng(seed)

    def fit(frame):
        x = np.column_stack([np.ones(len(frame)), frame.reward_variance, frame.onpolicy_accuracy])
        coef, *_ = np.linalg.lstsq(x, frame.gold_increase.to_numpy(), rcond=None)
        return coef

    coef = fit(family_runs)
    groups = [g for _, g in family_runs.groupby("rm")]
    draws = []
    for _ in range(n_boot):
        picked = [groups[i] for i in rng.integers(0, len(groups), len(groups))]
        sample = pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for g in picked])
        if sample.reward_variance.nunique() > 1 and sample.onpolicy_accuracy.nunique() > 1:
            draws.append(fit(sample))
    draws = np.array(draws)
    predicted = (
        np.column_stack(
            [np.ones(len(family_runs)), family_runs.reward_variance, family_runs.onpolicy_accuracy]
        )
        @ coef
    )
    residual = family_runs.gold_increase - predicted
    r2 = 1 - residual.var() / family_runs.gold_increase.var()
    out = {"surface_r2": float(r2)}
    for k, name in enumerate(("intercept", "variance", "accuracy")):
        out[f"surface_{name}"] = float(coef[k])
        out[f"surface_{name}_low"] = float(np.quantile(draws[:, k], 0.025))
        out[f"surface_{name}_high"] = float(np.quantile(draws[:, k], 0.975))
    return out


def at_matched_kl(curves: pd.DataFrame, kl: float) -> pd.DataFrame:
    """Per run (rm, variant, seed), the r_G increase `gold_at_kl` where its KL path first
    reaches `kl` (`rmteacher.verdicts.sections.at_kl`); NaN if it never gets there."""
    frames = [
        at_kl(runs, kl).assign(variant=variant) for variant, runs in curves.groupby("variant")
    ]
    out = pd.concat(frames, ignore_index=True).rename(columns={"gold_increase": "gold_at_kl"})
    return out[["rm", "variant", "seed", "gold_at_kl"]]


CLIPPING_COLUMNS = [
    "rm",
    "gold_increase_clipped",
    "gold_increase_unclipped",
    "difference",
    "low",
    "high",
    "seeds",
    "clipped_step_share",
    "median_grad_norm",
]


def clipping_ablation(
    curves: pd.DataFrame,
    logs: pd.DataFrame,
    epoch: float,
    steps_per_epoch: float,
    max_grad_norm: float,
) -> pd.DataFrame:
    """Per RM run without gradient clipping: the r_G increase at `epoch` with clipping (variant
    'main') and without ('noclip'), their seed-paired difference (noclip - main) with its 95 %
    t-interval, and the share of the main runs' steps up to `epoch` whose gradient norm exceeded
    `max_grad_norm` (the steps clipping shortened)."""
    noclip = curves[curves.variant == "noclip"]
    both = increases_at(curves[curves.rm.isin(set(noclip.rm))], epoch)
    rows = []
    for rm, runs in both.groupby("rm"):
        pair = runs.pivot_table(index="seed", columns="variant", values="gold_increase")
        paired = pair.dropna()
        if {"main", "noclip"} > set(pair.columns) or paired.empty:
            continue
        diff = (paired.noclip - paired.main).to_numpy()
        half = (
            stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
            if len(diff) > 1
            else float("nan")
        )
        main_logs = logs[(logs.rm == rm) & (logs.variant == "main")]
        early = main_logs[main_logs.step <= epoch * steps_per_epoch]
        rows.append(
            {
                "rm": rm,
                "gold_increase_clipped": float(paired.main.mean()),
                "gold_increase_unclipped": float(paired.noclip.mean()),
                "difference": float(diff.mean()),
                "low": float(diff.mean() - half),
                "high": float(diff.mean() + half),
                "seeds": len(diff),
                "clipped_step_share": float((early.grad_norm > max_grad_norm).mean()),
                "median_grad_norm": float(early.grad_norm.median()),
            }
        )
    return pd.DataFrame(rows, columns=CLIPPING_COLUMNS)
