"""Analysis of the robustness variants: how a uniform reward scale c changes the increases under
Adam and under plain SGD."""

from __future__ import annotations

import pandas as pd


def scale_sensitivity(curves: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and scale c: the final mean proxy and r_G increase, plus `scale_effect`, the
    proxy increase at the largest c minus that at the smallest (0 = the scale is undone)."""
    last = curves[curves.step == curves.step.max()]
    table = last.groupby(["optimizer", "scale"])[["proxy_increase", "gold_increase"]].mean()
    table = table.reset_index().sort_values(["optimizer", "scale"])
    effect = table.groupby("optimizer")["proxy_increase"].agg(lambda s: s.iloc[-1] - s.iloc[0])
    return table.join(effect.rename("scale_effect"), on="optimizer")
