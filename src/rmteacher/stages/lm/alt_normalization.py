"""Stage alt_normalization (paper Table 9): the Section 4.1 RMs normalised by the square root of
their mean per-prompt variance instead of the global std, RLOO up to the correlation epoch with
Section 4.1's settings, and Table 2 recomputed beside the standard normalisation's."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pandas as pd

from rmteacher.core import paths
from rmteacher.lm.analysis.sec41 import (
    CELLS,
    PROPERTY_LABELS,
    bootstrap_correlations,
    correlation_table,
    increases_at,
    rm_properties,
    with_paper,
)
from rmteacher.lm.analysis.variants import sign_comparison
from rmteacher.lm.pg.ensemble import run_runs
from rmteacher.lm.pg.settings import run_config
from rmteacher.lm.pg.sweep import InitialPolicy, TrainingPlan, check_rms
from rmteacher.lm.rm.evaluation import load_eval_matrices, load_suite
from rmteacher.lm.rm.names import MIXES
from rmteacher.lm.world.prompts import World
from rmteacher.paper import TABLE9
from rmteacher.rewards.normalize import Normalization
from rmteacher.stages.lm.params.alt_normalization import AltNormalizationParams
from rmteacher.verdicts import checks as registry_checks
from rmteacher.verdicts import legacy, sections
from rmteacher.verdicts.claims import registry_hash


@dataclass(frozen=True)
class AltNormalizationResult:
    """`normalizations`: each RM's alternative (mean, scale); `curves`: the runs' evaluation
    curves; `table9`: every Table 2 cell under both normalisations, with the bootstrap and the
    paper's Table 9; `table9_text`: the same as text; `increases`: per RM, mean and std of the
    increases at the epoch under both normalisations; `signs`: the claim's statistics over the
    mixes under both normalisations (on the seeds both ran), the alternative's two-level
    interval and whether each is kept, reversed or changes sign; `verdict_texts`: the verdict
    box's sentences; `metrics`."""

    normalizations: pd.DataFrame
    curves: pd.DataFrame
    table9: pd.DataFrame
    table9_text: pd.DataFrame
    increases: pd.DataFrame
    signs: pd.DataFrame
    verdict_texts: dict
    metrics: dict


def run(params: AltNormalizationParams) -> AltNormalizationResult:
    """Train every RM of rloo's Table 2 set (the mixes and the perfect RM it ran, from its
    declared output artifacts/rloo/curves.csv) under the alternative normalisation, in Section
    4.1's regime (the pg fields), and recompute Table 2."""
    world = World.load()
    suite = load_suite()
    standard_curves = pd.read_csv(paths.curves("rloo"))
    ran = dict.fromkeys(standard_curves[standard_curves.variant == "main"].rm)
    rms = [rm for rm in ran if rm in MIXES or rm == "perfect"]  # Table 2's RMs, in rloo's order
    check_rms(rms, list(suite), "rloo.rms")
    matrices = load_eval_matrices([*rms, "gold"])
    alternative = {name: Normalization.from_per_prompt_variance(m) for name, m in matrices.items()}
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    plan = TrainingPlan.for_settings(
        world.prompt_texts("pg_train"), params, params.epochs, evals_per_epoch=1
    )
    base = run_config(params, world.generation())  # pg.learning_rate, or rloo_lr's choice
    runs = [
        {"rm": rm, "proxy": suite[rm], "norm": alternative[rm], "cfg": replace(base, seed=seed)}
        for seed in params.seeds
        for rm in rms
    ]
    curves, _, _ = run_runs(
        policy, plan, runs, suite["gold"], alternative["gold"], threads=params.threads
    )

    props = rm_properties(pd.read_csv(paths.RM_TABLE))
    alt_at = increases_at(curves, params.epochs)
    standard = standard_curves[
        (standard_curves.variant == "main") & standard_curves.rm.isin(rms)
    ].drop(columns="variant")
    std_at = increases_at(standard, params.epochs)
    alt_corr = correlation_table(props, alt_at)
    std_corr = correlation_table(props, std_at)
    boot = bootstrap_correlations(props, alt_at, params.n_bootstrap, seed=0)  # RMs and seeds
    table9 = with_paper(alt_corr.join(std_corr.add_prefix("standard_")), TABLE9).join(boot)
    table9.index.name = "property"

    def cell_text(prop, cell):
        paper_value = table9.loc[prop, f"paper_{cell}"]
        paper_text = "" if pd.isna(paper_value) else f"; paper {paper_value:+.3f}"
        return (
            f"{table9.loc[prop, cell]:+.3f} ± {table9.loc[prop, f'{cell}_std']:.3f} "
            f"(standard {table9.loc[prop, f'standard_{cell}']:+.3f}{paper_text})"
        )

    text = pd.DataFrame(
        {cell: [cell_text(p, cell) for p in table9.index] for cell in CELLS},
        index=[PROPERTY_LABELS[p] for p in table9.index],
    )
    stats = ["mean", "std"]
    increases = (
        alt_at.groupby("rm")[["proxy_increase", "gold_increase"]]
        .agg(stats)
        .join(
            std_at.groupby("rm")[["proxy_increase", "gold_increase"]].agg(stats),
            lsuffix="_alt",
            rsuffix="_standard",
        )
    )
    std_boot = bootstrap_correlations(props, std_at, params.n_bootstrap, seed=0, resample_rms=False)
    old_boot = bootstrap_correlations(props, alt_at, params.n_bootstrap, seed=0, resample_rms=False)
    old_signs = sign_comparison(std_corr, std_boot, alt_corr, old_boot)  # D8's old rule
    # the claim, over the mixes on the seeds both normalisations ran (the registry's rule)
    paths.ALT_NORMALIZATION.mkdir(parents=True, exist_ok=True)
    alt_at.to_csv(paths.ALT_NORMALIZATION_INCREASES, index=False)
    rm_eval_metrics = json.loads((paths.METRICS / "rm_eval.json").read_text())
    decided = sections.table9(
        props,
        std_at,
        alt_at,
        registry_checks.evaluate({"rm_eval": rm_eval_metrics}),
        [rm for rm in MIXES if rm in rms],
        params.n_bootstrap,
        0,
    )
    signs = decided.tables["survival"]
    metrics = {
        **{
            f"alt_{prop}_{cell}": float(alt_corr.loc[prop, cell])
            for prop in alt_corr.index
            for cell in CELLS
        },
        **decided.all_metrics(),
        "registry_hash": registry_hash(),
        "deviation_d5_old": legacy.first_world_survival(std_corr, alt_corr),
        "deviation_d8_old": legacy.kept_survival(old_signs),
        "runs": int(curves.groupby(["rm", "seed"]).ngroups),
        "threads": int(params.threads),
    }
    norms = pd.DataFrame({rm: n.to_dict() for rm, n in alternative.items()}).T
    return AltNormalizationResult(
        norms, curves, table9, text, increases, signs, decided.texts(), metrics
    )
