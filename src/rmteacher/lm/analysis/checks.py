"""Manipulation checks, before any policy gradient: do the independent variables of Section 4.1
really vary? Each check compares a measured value with a threshold fixed in rm_eval's params."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from rmteacher.lm.rm.suite import family_name


def manipulation_checks(
    table: pd.DataFrame, manifest: dict, params, family: pd.DataFrame
) -> pd.DataFrame:
    """One row per check: `check` (a key), `what`, `requirement` (text), `value`, `passed`.

    Table columns used: rm, reward_variance, onpolicy_fraction, own_distribution_accuracy_untied,
    heldout_off_accuracy_untied, and the attribute gold_tie_fraction."""
    by_rm = table.set_index("rm")
    mixes = [rm["name"] for rm in manifest["rms"]]
    pairs = [rm.get("pairs", 0) for rm in manifest["rms"]]
    low, high = params.check_gold_variance
    gold_variance = float(by_rm.loc["gold", "reward_variance"])
    variances = by_rm.loc[mixes, "reward_variance"]
    own = by_rm.loc[mixes, "own_distribution_accuracy_untied"]
    onpolicy = by_rm.loc[mixes, "onpolicy_accuracy_untied"]
    off_share = 1 - by_rm.loc[mixes, "onpolicy_fraction"]
    trend = (
        float(stats.spearmanr(off_share, by_rm.loc[mixes, "heldout_off_accuracy_untied"])[0])
        if len(mixes) >= 3
        else float("nan")
    )
    rows = [
        (
            "gold_variance",
            "r_G's reward variance under the initial policy (paper: 0.256)",
            f"in [{low:g}, {high:g}]",
            gold_variance,
            low <= gold_variance <= high,
        ),
        (
            "gold_ties",
            "share of on-policy sample pairs r_G ties",
            f"<= {params.check_gold_ties:g}",
            table.attrs["gold_tie_fraction"],
            table.attrs["gold_tie_fraction"] <= params.check_gold_ties,
        ),
        (
            "pairs",
            "preference pairs of the mix with the fewest (all mixes equal)",
            f">= {params.check_pairs} and equal",
            float(min(pairs)),
            min(pairs) >= params.check_pairs and len(set(pairs)) == 1,
        ),
        (
            "own_accuracy",
            "lowest held-out untied accuracy of a mix on its own training mix",
            f">= {params.check_own_accuracy:g}",
            float(own.min()),
            bool(own.min() >= params.check_own_accuracy),
        ),
        (
            "onpolicy_accuracy",
            "lowest on-policy untied accuracy of a mix on the initial policy's samples",
            f">= {params.check_onpolicy_accuracy:g}",
            float(onpolicy.min()),
            bool(onpolicy.min() >= params.check_onpolicy_accuracy),
        ),
        (
            "variance_span",
            "largest / smallest reward variance over the mixes (paper: 2.0)",
            f">= {params.check_variance_span:g}",
            float(variances.max() / variances.min()),
            bool(variances.max() / variances.min() >= params.check_variance_span),
        ),
        (
            "offpolicy_trend",
            "Spearman of off-policy share with held-out off-policy accuracy (paper: 0.9)",
            f">= {params.check_offpolicy_trend:g}",
            trend,
            bool(trend >= params.check_offpolicy_trend),
        ),
    ]
    built = family_checks(family)
    rows += [
        (
            "family_accuracy",
            "compressed family members: largest accuracy change from their uncompressed sibling",
            "= 0",
            built["family_compression_accuracy_gap"],
            built["family_compression_accuracy_gap"] == 0,
        ),
        (
            "family_variance",
            "rank-noise family members: largest relative change of reward variance from r_G's",
            f"<= {params.check_family_variance:g}",
            built["family_noise_variance_gap"],
            built["family_noise_variance_gap"] <= params.check_family_variance,
        ),
        (
            "family_variance_span",
            "family members of one accuracy: smallest (over rank-noise levels) max / min reward "
            "variance along the prompt-scale axis",
            f">= {params.check_family_variance_span:g}",
            built["family_variance_span"],
            built["family_variance_span"] >= params.check_family_variance_span,
        ),
    ]
    return pd.DataFrame(rows, columns=["check", "what", "requirement", "value", "passed"])


AXES = ("eta", "compression", "amplification", "between")


def family_table(table: pd.DataFrame, members: list[dict]) -> pd.DataFrame:
    """The controlled family (and r_G, its eta = 0 member with no scaling): rank noise eta,
    compression floor c, amplification ceiling A, prompt-mean factor lambda ('between'), reward
    variance and on-policy accuracy (tie rule and untied) under the initial policy."""

    by_rm = table.set_index("rm")
    rows = [{"rm": "gold", "eta": 0.0, "compression": 1.0, "amplification": 1.0, "between": 1.0}]
    rows += [
        {
            "rm": family_name(**{k: m.get(k, 1.0) for k in AXES}),
            **{k: m.get(k, 1.0) for k in AXES},
        }
        for m in members
    ]
    frame = pd.DataFrame(rows)
    for column in ("reward_variance", "onpolicy_accuracy", "onpolicy_accuracy_untied"):
        frame[column] = frame.rm.map(by_rm[column])
    return frame


def family_checks(family: pd.DataFrame) -> dict:
    """What the family was built to do: prompt scaling (c, A, lambda) leaves accuracy unchanged
    (largest gap from the same noise level's unscaled member); rank noise leaves variance nearly
    unchanged (largest relative gap from r_G's among the unscaled members); and the variance
    axis spans a wide range at each accuracy (smallest, over noise levels, max/min variance
    among the members scaled by c or A - the lambda arm only rescales advantages, see `suite`)."""
    if "amplification" not in family:
        family = family.assign(amplification=1.0, between=1.0)
    unscaled = (family.compression == 1.0) & (family.amplification == 1.0) & (family.between == 1.0)
    base = family[unscaled].set_index("eta")
    gaps = [
        abs(row.onpolicy_accuracy - base.loc[row.eta, "onpolicy_accuracy"])
        for row in family[~unscaled].itertuples()
        if row.eta in base.index
    ]
    gold_variance = float(base.loc[0.0, "reward_variance"])
    axis = family[family.between == 1.0].groupby("eta").reward_variance
    spans = (axis.max() / axis.min())[axis.count() >= 2]
    return {
        "family_compression_accuracy_gap": float(np.max(gaps)) if gaps else float("nan"),
        "family_noise_variance_gap": float(
            np.max(np.abs(family[unscaled].reward_variance / gold_variance - 1))
        ),
        "family_variance_span": float(spans.min()) if len(spans) else float("nan"),
    }
