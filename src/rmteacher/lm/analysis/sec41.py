"""Section 4.1's analysis: Table 2 (correlations of RM properties measured on the initial policy
with the reward increases their RLOO runs achieve) with seed-bootstrap intervals, paired tests of
"RM A teaches faster than RM B", the controlled family's response surface, increases at matched
KL, and the verdict on each claim from a rule fixed here, before any run.

Verdicts are 'reproduced', 'not reproduced' or 'undecided' (the interval does not decide).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from rmteacher.metrics.rm_metrics import correlation
from rmteacher.paper import TABLE2, TABLE2_CELLS, table2_frame

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
REPRODUCED, NOT_REPRODUCED, UNDECIDED = "reproduced", "not reproduced", "undecided"


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


def bootstrap_draws(props, increase, n_boot: int, seed: int, rms=None) -> np.ndarray:
    """[n_boot, properties, cells] Table 2 recomputed with each RM's seeds resampled with
    replacement (the RM properties, measured once on 20,000 samples, are held fixed)."""
    rng = np.random.default_rng(seed)
    groups = [g.reset_index(drop=True) for _, g in increase.groupby("rm")]
    draws = []
    for _ in range(n_boot):
        sample = pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for g in groups])
        draws.append(correlation_table(props, sample, rms)[list(CELLS)].to_numpy())
    return np.stack(draws)


def bootstrap_correlations(
    props, increase, n_boot: int, seed: int, rms=None, draws: np.ndarray | None = None
) -> pd.DataFrame:
    """Std and 2.5/97.5 % quantiles of every Table 2 cell under the seed bootstrap (from
    `draws` of `bootstrap_draws` if already computed)."""
    if draws is None:
        draws = bootstrap_draws(props, increase, n_boot, seed, rms)
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


def paired_difference(increase: pd.DataFrame, a: str, b: str, column: str = "gold_increase"):
    """Mean over shared seeds of increase(a) - increase(b) with its 95 % t-interval: (mean, low,
    high, n). Runs with the same seed share the prompt order and the sampling stream, so the
    seed-paired difference removes their common noise."""
    table = increase.pivot_table(index="seed", columns="rm", values=column)
    d = (table[a] - table[b]).dropna().to_numpy()
    if len(d) < 2:
        return float(np.mean(d)) if len(d) else float("nan"), float("nan"), float("nan"), len(d)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half), len(d)


def interval_verdict(low: float, high: float) -> str:
    """reproduced if the interval lies above 0, not reproduced if below, else undecided."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return UNDECIDED
    return REPRODUCED if low > 0 else NOT_REPRODUCED if high < 0 else UNDECIDED


def slower_than_all(
    increase: pd.DataFrame, slow: str, others: list[str]
) -> tuple[str, pd.DataFrame]:
    """Claim 'RM `slow` teaches r_G slower than every RM in `others`': reproduced if every
    difference other - slow has its interval above 0, not reproduced if any lies below 0."""
    rows = [(o, *paired_difference(increase, o, slow)) for o in others]
    table = pd.DataFrame(rows, columns=["rm", "difference", "low", "high", "seeds"])
    verdicts = [interval_verdict(r.low, r.high) for r in table.itertuples()]
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED, table
    return (NOT_REPRODUCED if NOT_REPRODUCED in verdicts else UNDECIDED), table


def some_beats(
    increase: pd.DataFrame, candidates: list[str], target: str
) -> tuple[str, pd.DataFrame]:
    """Claim 'some RM in `candidates` raises r_G faster than `target`': Holm-corrected one-sided
    paired t-tests; reproduced if any is significant at 5 %, not reproduced if every candidate's
    95 % interval lies below 0, else undecided."""
    rows = []
    for c in candidates:
        table = increase.pivot_table(index="seed", columns="rm", values="gold_increase")
        d = (table[c] - table[target]).dropna().to_numpy()
        mean, low, high, n = paired_difference(increase, c, target)
        p = float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue) if n >= 2 else 1.0
        rows.append((c, mean, low, high, n, p))
    table = pd.DataFrame(rows, columns=["rm", "difference", "low", "high", "seeds", "p"])
    order = table.p.sort_values().index
    holm = [min(1.0, p * (len(table) - i)) for i, p in enumerate(table.p[order])]
    table.loc[order, "p_holm"] = np.maximum.accumulate(holm)
    if (table.p_holm < 0.05).any():
        return REPRODUCED, table
    if (table.high < 0).all():
        return NOT_REPRODUCED, table
    return UNDECIDED, table


def correlation_verdict(
    draws: np.ndarray, props_index, prop: str, cell: str
) -> tuple[str, float, float]:
    """A correlation cell's 95 % bootstrap interval and verdict (positive = reproduced)."""
    i, j = list(props_index).index(prop), list(CELLS).index(cell)
    low, high = np.nanquantile(draws[:, i, j], [0.025, 0.975])
    return interval_verdict(low, high), float(low), float(high)


def beats_accuracy_verdict(draws: np.ndarray, props_index, cell: str) -> tuple[str, float, float]:
    """Claim 'variance & accuracy correlates with the increase more than any accuracy alone':
    the bootstrap interval of corr(variance & acc.) - max over accuracies of corr(acc.)."""
    index = list(props_index)
    j = list(CELLS).index(cell)
    combined = draws[:, index.index("variance_and_accuracy"), j]
    best_accuracy = np.nanmax(
        np.stack([draws[:, index.index(a), j] for a in ACCURACIES if a in index]), axis=0
    )
    low, high = np.nanquantile(combined - best_accuracy, [0.025, 0.975])
    return interval_verdict(low, high), float(low), float(high)


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
    """Per run, the r_G increase where its (monotone-interpolated) KL path first reaches `kl`;
    NaN if it never gets there (paper Figure 4, read at one KL)."""
    rows = []
    for keys, run in curves.sort_values("step").groupby(["rm", "variant", "seed"]):
        path_kl = np.maximum.accumulate(run.kl.clip(lower=0).to_numpy())
        gain = run.gold_increase.to_numpy()
        value = float(np.interp(kl, path_kl, gain)) if path_kl[-1] >= kl else float("nan")
        rows.append({"rm": keys[0], "variant": keys[1], "seed": keys[2], "gold_at_kl": value})
    return pd.DataFrame(rows)


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
