"""Analysis of the robustness variants: how a uniform reward scale c changes the increases under
Adam and under plain SGD, and Table 2's statistics under two normalisations. The verdicts are
decided by `rmteacher.verdicts`."""

from __future__ import annotations

import numpy as np
import pandas as pd


def scale_sensitivity(curves: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and scale c: the final mean proxy and r_G increase, plus `scale_effect`, the
    proxy increase at the largest c minus that at the smallest (0 = the scale is undone)."""
    last = curves[curves.step == curves.step.max()]
    table = last.groupby(["optimizer", "scale"])[["proxy_increase", "gold_increase"]].mean()
    table = table.reset_index().sort_values(["optimizer", "scale"])
    effect = table.groupby("optimizer")["proxy_increase"].agg(lambda s: s.iloc[-1] - s.iloc[0])
    return table.join(effect.rename("scale_effect"), on="optimizer")


def sign_comparison(
    standard: pd.DataFrame,
    standard_boot: pd.DataFrame,
    alternative: pd.DataFrame,
    alternative_boot: pd.DataFrame,
) -> pd.DataFrame:
    """Every Table 2 statistic (property x {proxy, gold} x {Pearson, Spearman}) under the standard
    and the alternative normalisation, each with its seed-bootstrap 95 % interval (`*_boot` from
    `bootstrap_correlations`): `same_sign` compares the point values; `kept` says the alternative's
    interval excludes 0 on the standard value's side, `reversed` that it excludes 0 on the other
    side (neither: the alternative cannot tell)."""

    rows = []
    for prop in standard.index.intersection(alternative.index):
        for cell in ("proxy_pearson", "proxy_spearman", "gold_pearson", "gold_spearman"):
            value, alt = standard.loc[prop, cell], alternative.loc[prop, cell]
            low, high = (
                alternative_boot.loc[prop, f"{cell}_low"],
                alternative_boot.loc[prop, f"{cell}_high"],
            )
            side = np.sign(value)
            rows.append(
                {
                    "property": prop,
                    "statistic": cell,
                    "standard": value,
                    "standard_low": standard_boot.loc[prop, f"{cell}_low"],
                    "standard_high": standard_boot.loc[prop, f"{cell}_high"],
                    "alternative": alt,
                    "alternative_low": low,
                    "alternative_high": high,
                    "same_sign": bool(np.sign(alt) == side and side != 0),
                    "kept": bool((side > 0 and low > 0) or (side < 0 and high < 0)),
                    "reversed": bool((side > 0 and high < 0) or (side < 0 and low > 0)),
                }
            )
    return pd.DataFrame(rows)


def scale_effects_by_seed(curves: pd.DataFrame) -> pd.DataFrame:
    """[seed x optimizer] final proxy increase at the largest c minus at the smallest, per seed
    (runs with the same seed share prompts and sampling, so the difference is paired)."""
    last = curves[curves.step == curves.step.max()]
    final = last.groupby(["optimizer", "seed", "scale"]).proxy_increase.mean().unstack("scale")
    return (final[final.columns.max()] - final[final.columns.min()]).unstack("optimizer")
