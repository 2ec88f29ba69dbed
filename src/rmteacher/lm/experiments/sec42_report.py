"""Stage sec42_report (paper Tables 10 and 12): for every initial policy x RM, the RM's
properties on that policy beside the increases its runs achieved; the best RM of each policy and
how sure it is; whether reward variance and accuracy predict it; the tie fractions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import StageParams, param

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Sec42ReportParams(StageParams):
    """Table 10 and Table 12 analogs, the policy x RM heatmap, the best RM of each policy and
    whether reward variance and accuracy predict it."""

    STAGE = "sec42_report"
    n_bootstrap: int = param(2000, "bootstrap resamples over seeds", ge=10)
    seed: int = param(0, "bootstrap seed", ge=0)


TABLE_COLUMNS = [
    "policy",
    "rm",
    "variant",
    "reward_variance",
    "onpolicy_accuracy",
    "offpolicy_accuracy",
    "variance_and_accuracy",
    "gold_increase_mean",
    "gold_increase_std",
    "proxy_increase_mean",
    "proxy_increase_std",
]


@dataclass(frozen=True)
class Sec42Report:
    """`table`: one row per policy x RM x variant (TABLE_COLUMNS); `tables`: the Table 10 view
    (RLOO) and a Table 12 view per GRPO variant, each cell 'r_G increase ± std | proxy increase |
    variance | on-policy acc. | off-policy acc.' (a note where the variant did not run);
    `best`: per policy, the best RM, its bootstrap stability and each predictor's pick;
    `stability`: every RM's bootstrap win fraction; `ties`: each RM's tie fraction per policy;
    `variance_effect`: per variant, variance vs proxy increase; `paper_table10`: the paper's
    Table 10 in the same layout; `metrics`."""

    table: pd.DataFrame
    tables: dict
    best: pd.DataFrame
    stability: pd.DataFrame
    ties: pd.DataFrame
    variance_effect: pd.DataFrame
    paper_table10: pd.DataFrame
    metrics: dict


def cell_view(table: pd.DataFrame, variant: str) -> pd.DataFrame:
    """policy x RM grid of one variant's cells as text (Table 10 and 12 layout)."""
    rows = table[table.variant == variant]
    text = rows.apply(
        lambda r: (
            f"{r.gold_increase_mean:.3f}±{r.gold_increase_std:.3f} | "
            f"{r.proxy_increase_mean:.3f} | {r.reward_variance:.3f} | "
            f"{r.onpolicy_accuracy:.3f} | {r.offpolicy_accuracy:.3f}"
        ),
        axis=1,
    )
    return rows.assign(cell=text).pivot(index="policy", columns="rm", values="cell")


def run(params: Sec42ReportParams) -> Sec42Report:
    """The tables from sec42_eval's properties and sec42_pg's curves; writes
    metrics/policy_rm_table.csv."""
    import pandas as pd
    from scipy import stats

    from rmteacher.core import paths
    from rmteacher.lm.analysis.sec42 import (
        PREDICTORS,
        best_rm_bootstrap,
        best_rm_summary,
        final_increases,
        policy_rm_table,
        rm_tie_fractions,
        variance_effect,
    )
    from rmteacher.paper import table10_text

    properties = pd.read_csv(paths.POLICY_RM_EVAL)
    properties = properties[properties.rm != "gold"]
    curves = pd.read_csv(paths.curves("sec42_pg"))
    table = policy_rm_table(properties, final_increases(curves))[TABLE_COLUMNS]
    paths.METRICS.mkdir(exist_ok=True)
    table.to_csv(paths.POLICY_RM_TABLE, index=False, float_format="%.4f")
    tables = {"table10": cell_view(table, "rloo")}
    for variant in ("grpo", "grpo_group"):  # glued whether or not this profile ran them
        missing = pd.DataFrame({"note": [f"'{variant}' is not in sec42_pg.variants"]})
        ran = variant in set(table.variant)
        tables[f"table12_{variant}"] = cell_view(table, variant) if ran else missing
    best = best_rm_summary(table, "rloo")
    stability = best_rm_bootstrap(curves, "rloo", params.n_bootstrap, params.seed)
    renamed = stability.rename(columns={"rm": "best_rm", "best_fraction": "best_rm_bootstrap"})
    best = best.merge(renamed, on=["policy", "best_rm"], how="left")
    ties = rm_tie_fractions(table, paths.SEC42_EVAL)
    rloo_ties = table[table.variant == "rloo"].merge(ties, on=["policy", "rm"])
    tie_gold_spearman = float(
        stats.spearmanr(rloo_ties.rm_tie_fraction, rloo_ties.gold_increase_mean)[0]
    )
    effect = variance_effect(table)
    effect_by = effect.set_index("variant")
    best_rms = dict(zip(best.policy, best.best_rm, strict=True))
    metrics = {
        **{f"best_rm_{policy}": rm for policy, rm in best_rms.items()},
        **{f"best_rm_{r.policy}_bootstrap": float(r.best_rm_bootstrap) for r in best.itertuples()},
        "best_rm_changes_across_policies": len(set(best_rms.values())) > 1,
        "rm_tie_fraction_gold_increase_spearman": tie_gold_spearman,
        **{
            f"{predictor}_picks_best_fraction": float(best[f"{predictor}_picks_best"].mean())
            for predictor in PREDICTORS
        },
        **{
            f"{predictor}_mean_spearman_with_gold": float(best[f"spearman_{predictor}"].mean())
            for predictor in PREDICTORS
        },
        **{
            f"{variant}_variance_proxy_spearman": float(row.variance_proxy_spearman)
            for variant, row in effect_by.iterrows()
        },
        **{
            f"{variant}_variance_proxy_pearson": float(row.variance_proxy_pearson)
            for variant, row in effect_by.iterrows()
        },
    }
    return Sec42Report(table, tables, best, stability, ties, effect, table10_text(), metrics)
