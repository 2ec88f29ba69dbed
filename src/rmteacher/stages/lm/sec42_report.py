"""Stage sec42_report (paper Tables 10 and 12): for every initial policy x RM, the RM's
properties on that policy beside the increases its runs achieved; the best RM of each policy
against its runner-up (Welch); whether the best RM changes across policies (the policy x RM
interaction of a two-way ANOVA); each predictor's rank correlation with the realised r_G increase;
and how well `rmteacher report`'s predicted ranking matched what RLOO did."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from rmteacher.core import paths
from rmteacher.core.tables import number, spread
from rmteacher.lm.analysis import sec42 as analysis
from rmteacher.paper import table10_text
from rmteacher.stages.lm.params.sec42_report import Sec42ReportParams
from rmteacher.verdicts import checks as registry_checks
from rmteacher.verdicts import legacy, sections
from rmteacher.verdicts.claims import registry_hash

TABLE_COLUMNS = [
    "policy",
    "rm",
    "variant",
    "reward_variance",
    "onpolicy_accuracy",
    "onpolicy_accuracy_untied",
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
    `winners`: per policy, best RM, runner-up and their Welch interval; `interaction`: the
    ANOVA's F-test; `predictors`: per policy and predictor, Spearman with the r_G increase and
    its interval; `agreement`: per policy, the report's predicted vs realised ranking;
    `ranking`: predicted and realised rank per policy x RM; `ties`: each RM's tie fraction per
    policy; `variance_effect`: per variant, variance vs proxy increase; `paper_table10`: the
    paper's Table 10 in the same layout; `claims`: the verdicts (claims registry); `verdict_texts`:
    the verdict boxes' sentences; `metrics`."""

    table: pd.DataFrame
    tables: dict
    winners: pd.DataFrame
    interaction: dict
    predictors: pd.DataFrame
    agreement: pd.DataFrame
    ranking: pd.DataFrame
    ties: pd.DataFrame
    variance_effect: pd.DataFrame
    paper_table10: pd.DataFrame
    claims: pd.DataFrame
    verdict_texts: dict
    metrics: dict


def cell_view(table: pd.DataFrame, variant: str) -> pd.DataFrame:
    """policy x RM grid of one variant's cells as text (Table 10 and 12 layout)."""
    rows = table[table.variant == variant]
    text = rows.apply(
        lambda r: " | ".join(
            [
                spread(r.gold_increase_mean, r.gold_increase_std, 3),
                *(  # "–" where a value is undefined, e.g. a scorer's off-policy accuracy
                    number(value, 3)
                    for value in (
                        r.proxy_increase_mean,
                        r.reward_variance,
                        r.onpolicy_accuracy,
                        r.offpolicy_accuracy,
                    )
                ),
            ]
        ),
        axis=1,
    )
    return rows.assign(cell=text).pivot(index="policy", columns="rm", values="cell")


def run(params: Sec42ReportParams) -> Sec42Report:
    """The tables and decisions from sec42_eval's properties and sec42_pg's runs; writes
    metrics/policy_rm_table.csv."""
    properties = pd.read_csv(paths.POLICY_RM_EVAL)
    properties = properties[properties.rm != "gold"]
    curves = pd.read_csv(paths.curves("sec42_pg"))
    table = analysis.policy_rm_table(properties, analysis.final_increases(curves))
    paths.METRICS.mkdir(exist_ok=True)
    table[TABLE_COLUMNS].to_csv(paths.POLICY_RM_TABLE, index=False, float_format="%.4f")
    tables = {"table10": cell_view(table, "rloo")}
    for variant in ("grpo", "grpo_group"):  # glued whether or not this profile ran them
        missing = pd.DataFrame({"note": [f"'{variant}' is not in sec42_pg.variants"]})
        ran = variant in set(table.variant)
        tables[f"table12_{variant}"] = cell_view(table, variant) if ran else missing

    runs = analysis.final_runs(curves, "rloo")
    winners = analysis.best_against_runner_up(runs)
    interaction = analysis.interaction_test(runs)
    rloo_props = table[table.variant == "rloo"]
    predictors = analysis.predictor_correlations(
        rloo_props, runs, list(analysis.PREDICTORS), params.n_bootstrap, params.seed
    )
    agreement = analysis.ranking_agreement(properties, runs, params.n_bootstrap, params.seed)
    realised = runs.groupby(["policy", "rm"]).gold_increase.mean().reset_index()
    realised["realised_rank"] = realised.groupby("policy").gold_increase.rank(ascending=False)
    ranking = properties[["policy", "rm", "predicted_rank", "teacher_score"]].merge(
        realised, on=["policy", "rm"]
    )
    ties = analysis.rm_tie_fractions(table, paths.SEC42_EVAL)
    effect = analysis.variance_effect(table)

    # every claim of this stage, from the registry's rules
    eval_metrics = json.loads((paths.METRICS / "sec42_eval.json").read_text())
    decided = sections.section42(
        rloo_props,
        runs,
        winners,
        interaction,
        registry_checks.evaluate({"sec42_eval": eval_metrics}),
        params.n_bootstrap,
        params.seed,
    )
    claims = decided.claims_table()
    combined = predictors[predictors.predictor == "variance_and_accuracy"]
    accuracy = predictors[predictors.predictor == "onpolicy_accuracy_untied"]
    decided.deviations["deviation_d9_old_report"] = legacy.mean_of_bounds(agreement)[0]
    decided.deviations["deviation_d9_old_combined"] = legacy.mean_of_bounds(combined)[0]
    rloo_ties = table[table.variant == "rloo"].merge(ties, on=["policy", "rm"])
    tie_gold_spearman = float(
        stats.spearmanr(rloo_ties.rm_tie_fraction, rloo_ties.gold_increase_mean)[0]
    )
    effect_by = effect.set_index("variant")
    metrics = {
        **decided.all_metrics(),
        "registry_hash": registry_hash(),
        **interaction,
        **{f"best_rm_{r.policy}": r.best_rm for r in winners.itertuples()},
        **{f"best_rm_{r.policy}_margin": r.difference for r in winners.itertuples()},
        **{f"best_rm_{r.policy}_margin_low": r.low for r in winners.itertuples()},
        **{f"best_rm_{r.policy}_margin_high": r.high for r in winners.itertuples()},
        "n_distinct_best_rms": int(winners.best_rm.nunique()),
        "report_top1_hits": int(agreement.top1_hit.sum()) if len(agreement) else 0,
        # top-1 hits count once per distinct best RM: the same RM winning everywhere is one hit
        "report_top1_distinct": int(agreement[agreement.top1_hit].realised_best.nunique())
        if len(agreement)
        else 0,
        "report_spearman_mean": float(agreement.spearman.mean()) if len(agreement) else None,
        "untied_accuracy_spearman_mean": float(accuracy.spearman.mean()) if len(accuracy) else None,
        "rm_tie_fraction_gold_increase_spearman": tie_gold_spearman,
        **{
            f"{variant}_variance_proxy_spearman": float(row.variance_proxy_spearman)
            for variant, row in effect_by.iterrows()
        },
        **{
            f"{variant}_variance_proxy_pearson": float(row.variance_proxy_pearson)
            for variant, row in effect_by.iterrows()
        },
        "n_policies": int(table.policy.nunique()),
        "n_rms": int(table.rm.nunique()),
        "max_predictor_spread": float(np.nanmax(predictors.high - predictors.low))
        if len(predictors)
        else None,
    }
    return Sec42Report(
        table[TABLE_COLUMNS],
        tables,
        winners,
        interaction,
        predictors,
        agreement,
        ranking,
        ties,
        effect,
        table10_text(),
        claims,
        decided.texts(),
        metrics,
    )
