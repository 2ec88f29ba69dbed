"""Stage alt_normalization (paper Table 9): the Section 4.1 RMs normalised by the square root of
their mean per-prompt variance instead of the global std, RLOO up to the correlation epoch with
Section 4.1's settings, and Table 2 recomputed beside the standard normalisation's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import StageParams, param

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class AltNormalizationParams(StageParams):
    """Table 9 analog: the Section 4.1 RMs normalised by the square root of their mean
    per-prompt variance instead of the global std, RLOO up to the correlation epoch, and Table 2
    recomputed."""

    STAGE = "alt_normalization"
    seeds: tuple[int, ...] = param((0, 1, 2), "training seeds", ge=0)
    epochs: float = param(1.0, "trl epochs (the correlations use epoch 1)", gt=0)
    n_bootstrap: int = param(2000, "bootstrap resamples over seeds", ge=10)


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
    """Train every rloo RM but r_G under the alternative normalisation and recompute Table 2."""
    import json
    from dataclasses import replace

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
    from rmteacher.lm.experiments.rloo import MIXES, RlooParams, chosen_learning_rate
    from rmteacher.lm.pg.loop import PgRunConfig
    from rmteacher.lm.pg.sweep import InitialPolicy, TrainingPlan, check_rms, run_grid
    from rmteacher.lm.rm.evaluation import load_eval_matrices, load_suite
    from rmteacher.lm.world.prompts import World
    from rmteacher.paper import TABLE9
    from rmteacher.rewards.normalize import Normalization
    from rmteacher.verdicts import checks as registry_checks
    from rmteacher.verdicts import legacy, sections
    from rmteacher.verdicts.claims import registry_hash

    rloo = RlooParams.from_file()  # Section 4.1's RLOO settings (the stage tracks that group)
    world = World.load()
    suite = load_suite()
    rms = [rm for rm in rloo.rms if rm in MIXES or rm == "perfect"]  # Table 2's RMs
    check_rms(rms, list(suite), "rloo.rms")
    matrices = load_eval_matrices([*rms, "gold"])
    alternative = {name: Normalization.from_per_prompt_variance(m) for name, m in matrices.items()}
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    plan = TrainingPlan.build(
        world.prompt_texts("pg_train"),
        rloo.eval_prompts,
        rloo.eval_samples,
        rloo.num_generations,
        rloo.prompts_per_step,
        params.epochs,
        evals_per_epoch=1,
    )
    base = PgRunConfig(
        num_generations=rloo.num_generations,
        prompts_per_step=rloo.prompts_per_step,
        beta=rloo.beta,
        learning_rate=chosen_learning_rate(rloo),
        max_grad_norm=rloo.max_grad_norm,
        seed=0,
        **world.generation(),
    )
    runs = [
        {"rm": rm, "proxy": suite[rm], "norm": alternative[rm], "cfg": replace(base, seed=seed)}
        for seed in params.seeds
        for rm in rms
    ]
    curves, _, _ = run_grid(policy, plan, runs, suite["gold"], alternative["gold"])

    props = rm_properties(pd.read_csv(paths.RM_TABLE))
    standard_curves = pd.read_csv(paths.curves("rloo"))
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
    }
    norms = pd.DataFrame({rm: n.to_dict() for rm, n in alternative.items()}).T
    return AltNormalizationResult(
        norms, curves, table9, text, increases, signs, decided.texts(), metrics
    )
