"""Table 2: correlations between RM properties (measured on the initial policy) and the reward
increases their RLOO runs achieve, next to the paper's values, with a bootstrap over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmteacher.metrics.rm_metrics import correlation
from rmteacher.paper import TABLE2, TABLE2_CELLS, table2_frame

PROPERTY_LABELS = {
    "reward_variance": "Reward variance",
    "onpolicy_accuracy": "On-policy acc.",
    "offpolicy_accuracy": "Off-policy acc.",
    "accuracy_mean": "On- & off-policy acc.",
    "variance_and_accuracy": "Reward variance & acc.",
}

CELLS = TABLE2_CELLS


def rm_properties(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 columns plus the paper's combined measures: the mean of the two accuracies, and
    the mean of reward variance and that accuracy mean (indexed by rm)."""
    props = table.set_index("rm")[["reward_variance", "onpolicy_accuracy", "offpolicy_accuracy"]]
    props = props.assign(accuracy_mean=(props.onpolicy_accuracy + props.offpolicy_accuracy) / 2)
    return props.assign(variance_and_accuracy=(props.reward_variance + props.accuracy_mean) / 2)


def increases_at(curves: pd.DataFrame, epoch: float) -> pd.DataFrame:
    """Per (rm, seed) proxy and r_G increases at the evaluation point nearest `epoch`."""
    epochs = np.sort(curves.epoch.unique())
    nearest = epochs[np.argmin(np.abs(epochs - epoch))]
    at = curves[np.isclose(curves.epoch, nearest)]
    return at[["rm", "seed", "epoch", "proxy_increase", "gold_increase"]].reset_index(drop=True)


def correlation_table(props: pd.DataFrame, increase: pd.DataFrame) -> pd.DataFrame:
    """Pearson and Spearman of each property with the mean (over seeds) proxy and r_G increase,
    over the RMs present in both (r_G itself excluded, as in the paper)."""
    mean = increase.groupby("rm")[["proxy_increase", "gold_increase"]].mean()
    rms = [rm for rm in props.index if rm in mean.index and rm != "gold"]
    rows = []
    for prop in PROPERTY_LABELS:
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


def bootstrap_correlations(props, increase, n_boot: int, seed: int) -> pd.DataFrame:
    """Std and 5/95 % quantiles of every Table 2 cell when each RM's seeds are resampled with
    replacement (the RM properties are held fixed)."""
    rng = np.random.default_rng(seed)
    groups = {rm: g.reset_index(drop=True) for rm, g in increase.groupby("rm")}
    draws = []
    for _ in range(n_boot):
        sample = pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for g in groups.values()])
        draws.append(correlation_table(props, sample)[list(CELLS)].to_numpy())
    draws = np.stack(draws)
    out = {}
    for j, cell in enumerate(CELLS):
        out[f"{cell}_std"] = np.nanstd(draws[:, :, j], axis=0)
        out[f"{cell}_q05"] = np.nanquantile(draws[:, :, j], 0.05, axis=0)
        out[f"{cell}_q95"] = np.nanquantile(draws[:, :, j], 0.95, axis=0)
    return pd.DataFrame(out, index=list(PROPERTY_LABELS))


def with_paper(corr: pd.DataFrame, table: dict = TABLE2) -> pd.DataFrame:
    """Table 2 (or Table 9) cells beside the paper's values, columns paper_<cell>."""
    return corr.join(table2_frame(table))


def verdicts(corr: pd.DataFrame, increase: pd.DataFrame, early: pd.DataFrame) -> dict:
    """The paper's four Section 4.1 claims as True/False, or None where this run cannot test
    one (the RMs it needs were not trained); the rules are stated in the book chapter."""
    mean = increase.groupby("rm")[["proxy_increase", "gold_increase"]].mean()
    mixes = [rm for rm in mean.index if rm.startswith("rm_onpolicy_")]
    acc_rows = ["onpolicy_accuracy", "offpolicy_accuracy", "accuracy_mean"]
    early_mean = early.groupby("rm")["gold_increase"].mean()
    out = {
        "claim_variance_predicts_proxy_increase": bool(
            corr.loc["reward_variance", "proxy_spearman"] > 0.5
            and corr.loc["reward_variance", "proxy_pearson"]
            >= corr.loc[acc_rows, "proxy_pearson"].max()
        ),
        "claim_variance_and_accuracy_beats_accuracy_for_gold": bool(
            corr.loc["variance_and_accuracy", "gold_pearson"]
            > corr.loc[acc_rows, "gold_pearson"].max()
        ),
        "claim_perfect_rm_teaches_slowest": None,
        "claim_proxy_beats_gold_early": None,
    }
    if "perfect" in mean.index and mixes:
        out["claim_perfect_rm_teaches_slowest"] = bool(
            mean.loc["perfect", "gold_increase"] < mean.loc[mixes, "gold_increase"].min()
        )
    if "gold" in early_mean.index and mixes:
        out["claim_proxy_beats_gold_early"] = bool(
            early_mean.loc[mixes].max() > early_mean.loc["gold"]
        )
    return out


def verdict_text(value) -> str:
    """How a verdict reads in the book: 'yes', 'no' or 'not tested'."""
    return "not tested" if value is None else ("yes" if value else "no")
