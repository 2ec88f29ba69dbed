"""Tables 10 and 12 analogs: for every initial policy x reward model, the RM's properties on that
policy and the increases its policy-gradient runs achieve; the best RM of each policy and whether
reward variance and accuracy predict it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rmteacher.metrics.rm_metrics import correlation, gold_tie_fraction

PREDICTORS = {
    "reward_variance": "reward variance",
    "onpolicy_accuracy": "on-policy accuracy",
    "offpolicy_accuracy": "off-policy accuracy",
    "variance_and_accuracy": "variance & accuracy (Table 2's combined measure)",
}


def with_combined_measure(properties: pd.DataFrame) -> pd.DataFrame:
    """Adds Table 2's combined measure: the mean of reward variance and the mean of on- and
    off-policy accuracy."""
    accuracy_mean = (properties.onpolicy_accuracy + properties.offpolicy_accuracy) / 2
    return properties.assign(variance_and_accuracy=(properties.reward_variance + accuracy_mean) / 2)


def final_increases(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of the proxy and r_G increase at each run's last evaluation,
    per (policy, variant, rm)."""
    last = curves[
        curves.step == curves.groupby(["policy", "variant", "rm", "seed"]).step.transform("max")
    ]
    stats = last.groupby(["policy", "variant", "rm"])[["gold_increase", "proxy_increase"]].agg(
        ["mean", "std"]
    )
    stats.columns = [f"{col}_{stat}" for col, stat in stats.columns]
    return stats.reset_index()


def policy_rm_table(properties: pd.DataFrame, increases: pd.DataFrame) -> pd.DataFrame:
    """One row per policy x RM (x variant): properties on that policy beside the increases."""
    props = with_combined_measure(properties)
    return props.merge(increases, on=["policy", "rm"], how="inner")


def best_rm_summary(table: pd.DataFrame, variant: str = "rloo") -> pd.DataFrame:
    """Per policy: the RM with the largest mean r_G increase, the RM each predictor would pick
    (its largest value), and the Spearman correlation of each predictor with the r_G increase
    over that policy's RMs."""
    rows = []
    for policy, group in table[table.variant == variant].groupby("policy", sort=False):
        group = group.set_index("rm")
        row = {
            "policy": policy,
            "best_rm": group.gold_increase_mean.idxmax(),
            "best_gold_increase": float(group.gold_increase_mean.max()),
        }
        for predictor in PREDICTORS:
            row[f"picked_by_{predictor}"] = group[predictor].idxmax()
            row[f"spearman_{predictor}"] = (
                correlation(group[predictor], group.gold_increase_mean)[1]
                if len(group) >= 3
                else float("nan")
            )
        rows.append(row)
    summary = pd.DataFrame(rows)
    for predictor in PREDICTORS:
        summary[f"{predictor}_picks_best"] = summary[f"picked_by_{predictor}"] == summary.best_rm
    return summary


def variance_effect(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant: Pearson and Spearman correlation, over all policy x RM cells, of the reward
    variance with the proxy increase. RLOO and unscaled GRPO should show the paper's positive
    relation; GRPO with per-group std scaling removes the reward's scale and with it the effect."""
    rows = []
    for variant, group in table.groupby("variant", sort=False):
        pearson, spearman = (
            correlation(group.reward_variance, group.proxy_increase_mean)
            if len(group) >= 3
            else (np.nan, np.nan)
        )
        rows.append(
            {
                "variant": variant,
                "variance_proxy_pearson": pearson,
                "variance_proxy_spearman": spearman,
            }
        )
    return pd.DataFrame(rows)


def best_rm_bootstrap(curves: pd.DataFrame, variant: str, n_boot: int, seed: int) -> pd.DataFrame:
    """How sure the best RM is: per policy, the fraction of bootstrap resamples (each RM's seeds
    drawn with replacement) in which each RM has the largest mean final r_G increase."""
    rng = np.random.default_rng(seed)
    runs = curves[curves.variant == variant]
    last = runs[runs.step == runs.groupby(["policy", "rm", "seed"]).step.transform("max")]
    rows = []
    for policy, group in last.groupby("policy", sort=False):
        per_rm = {rm: g.gold_increase.to_numpy() for rm, g in group.groupby("rm")}
        names = list(per_rm)
        wins = np.zeros(len(names))
        for _ in range(n_boot):
            means = [rng.choice(v, size=len(v), replace=True).mean() for v in per_rm.values()]
            wins[int(np.argmax(means))] += 1
        rows.extend(
            {"policy": policy, "rm": rm, "best_fraction": w / n_boot}
            for rm, w in zip(names, wins, strict=True)
        )
    return pd.DataFrame(rows)


def rm_tie_fractions(cells: pd.DataFrame, eval_dir) -> pd.DataFrame:
    """For each (policy, rm) cell: the fraction of sample pairs of a prompt to which the RM gives
    equal rewards, from `eval_dir/<policy>/rewards_<rm>.npy` (sec42_eval's [prompts, samples]
    matrices). With k = 2 a tied pair is a group with zero advantage."""
    pairs = cells[["policy", "rm"]].drop_duplicates()
    return pd.DataFrame(
        [
            {
                "policy": policy,
                "rm": rm,
                "rm_tie_fraction": gold_tie_fraction(
                    np.load(Path(eval_dir) / policy / f"rewards_{rm}.npy")
                ),
            }
            for policy, rm in pairs.itertuples(index=False)
        ]
    )
