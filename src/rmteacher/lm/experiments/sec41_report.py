"""Stage sec41_report (paper Table 2, Figures 2 and 4): correlations of each RM property measured
on the initial policy with the proxy and r_G increases after an epoch of RLOO, over the five mix
RMs and the perfect-accuracy RM (r_G itself excluded, as in the paper), with a bootstrap over
seeds, and the verdict on each Section 4.1 claim."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import StageParams, param

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Sec41ReportParams(StageParams):
    """Table 2 (correlations of RM properties with reward increases), Figures 2 and 4, and the
    verdict on each Section 4.1 claim."""

    STAGE = "sec41_report"
    increase_epoch: float = param(1.0, "epoch at which increases are correlated (paper: 1)", gt=0)
    n_bootstrap: int = param(2000, "bootstrap resamples over seeds", ge=10)
    seed: int = param(0, "bootstrap seed", ge=0)


@dataclass(frozen=True)
class Sec41Report:
    """`properties`: Table 1 plus the combined measures, per RM; `table2`: every Table 2 cell
    with its bootstrap std and 5/95 % quantiles beside the paper's; `table2_text`: the same as
    'value ± std (paper value)' strings; `increases`: per run, the increases at the correlation
    epoch; `curves`: rloo's evaluation curves; `first_epoch_logs`:
    per-step logs up to the correlation epoch; `grad_norm`: per RM, the mean gradient norm and
    within-group variance of that epoch beside the reward variance; `order` and `palette`: the
    RMs in display order and their colours; `metrics` and `verdicts` (as text)."""

    properties: pd.DataFrame
    table2: pd.DataFrame
    table2_text: pd.DataFrame
    increases: pd.DataFrame
    curves: pd.DataFrame
    first_epoch_logs: pd.DataFrame
    grad_norm: pd.DataFrame
    order: list
    palette: dict
    metrics: dict
    verdicts: dict


def display_order(rms) -> tuple[list, dict]:
    """The RMs in the order the figures use (mixes by on-policy share, then the controls) and a
    colour for each: viridis for the mixes, fixed colours for the perfect RM and r_G."""
    import seaborn as sns

    known = ["rm_onpolicy_100", "rm_onpolicy_75", "rm_onpolicy_50", "rm_onpolicy_25"]
    known += ["rm_onpolicy_0", "perfect", "gold"]
    order = [rm for rm in known if rm in set(rms)]
    order += sorted(set(rms) - set(order))
    mixes = [rm for rm in order if rm.startswith("rm_onpolicy_")]
    palette = dict(zip(mixes, sns.color_palette("viridis", len(mixes)), strict=True))
    palette.update({"perfect": "tab:red", "perfect_unshifted": "tab:orange", "gold": "black"})
    return order, palette


def run(params: Sec41ReportParams) -> Sec41Report:
    """Table 2 from rm_eval's Table 1 and rloo's curves; writes metrics/correlations.csv."""
    import numpy as np
    import pandas as pd

    from rmteacher.core import paths
    from rmteacher.lm.analysis.sec41 import (
        PROPERTY_LABELS,
        bootstrap_correlations,
        correlation_table,
        increases_at,
        rm_properties,
        verdict_text,
        verdicts,
        with_paper,
    )

    table = pd.read_csv(paths.RM_TABLE)
    curves = pd.read_csv(paths.curves("rloo"))
    logs = pd.read_csv(paths.train_logs("rloo"))
    props = rm_properties(table)
    at_epoch = increases_at(curves, params.increase_epoch)
    corr = correlation_table(props, at_epoch)
    boot = bootstrap_correlations(props, at_epoch, params.n_bootstrap, params.seed)
    table2 = with_paper(corr).join(boot)
    table2.index.name = "property"
    table2.reset_index().to_csv(paths.CORRELATIONS, index=False, float_format="%.4f")
    cells = ("proxy_pearson", "proxy_spearman", "gold_pearson", "gold_spearman")
    text = pd.DataFrame(
        {
            cell: [
                f"{v:+.3f} ± {s:.3f} (paper {p:+.3f})"
                for v, s, p in zip(
                    table2[cell], table2[f"{cell}_std"], table2[f"paper_{cell}"], strict=True
                )
            ]
            for cell in cells
        },
        index=[PROPERTY_LABELS[p] for p in table2.index],
    )
    first = logs[logs.epoch <= params.increase_epoch + 1e-9] if "epoch" in logs else logs
    first = first.assign(
        grad_norm=first.grad_norm.astype(float),
        within_group_variance=first.within_group_variance.astype(float),
    )
    per_rm = (
        first.groupby("rm")[["grad_norm", "within_group_variance"]]
        .mean()
        .join(props["reward_variance"])
    )
    early_epoch = float(np.sort(curves.epoch.unique())[1])
    early = increases_at(curves, early_epoch)
    verdict = verdicts(corr, at_epoch, early)
    grad_corr = np.corrcoef(per_rm.reward_variance, per_rm.grad_norm)[0, 1]
    metrics = {
        **{
            f"{prop}_{cell}": float(corr.loc[prop, cell])
            for prop in corr.index
            for cell in corr.columns
        },
        **verdict,
        "grad_norm_vs_variance_pearson": float(grad_corr),
        "increase_epoch": float(at_epoch.epoch.iloc[0]),
        "early_epoch": early_epoch,
    }
    order, palette = display_order(curves.rm.unique())
    return Sec41Report(
        props,
        table2,
        text,
        at_epoch,
        curves,
        first,
        per_rm.reset_index(),
        order,
        palette,
        metrics,
        {key: verdict_text(value) for key, value in verdict.items()},
    )
