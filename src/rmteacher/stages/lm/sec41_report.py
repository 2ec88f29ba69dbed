"""Stage sec41_report (paper Table 2, Figures 2 and 4, and the controlled family): what the RLOO
runs say about each Section 4.1 claim, with intervals, and the verdict of each claim from the rules
of the claims registry (`rmteacher.verdicts`), gated by rm_eval's manipulation checks and by
the alternative normalisation's runs.

Table 2 is computed over the trained mixes only (no RM whose variance we constructed) and, for
comparison, over the mixes and the perfect RM (the paper's set); every cell has a 95 % interval
from resampling RMs and then each drawn RM's seeds."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns

from rmteacher.core import paths
from rmteacher.lm.analysis import sec41 as analysis
from rmteacher.lm.analysis.sec41 import CELLS, PROPERTY_LABELS
from rmteacher.lm.rm.names import CONTROLS, MIXES
from rmteacher.stages.lm.params.sec41_report import Sec41ReportParams
from rmteacher.verdicts import checks as registry_checks
from rmteacher.verdicts import sections
from rmteacher.verdicts.claims import CLAIMS, registry_hash


@dataclass(frozen=True)
class Sec41Report:
    """Everything the Section 4.1 pages show. `table1`: Table 1 (mixes and controls);
    `checks`: rm_eval's manipulation checks; `table2`: Table 2 over the mixes with intervals and
    the paper's values; `table2_paper_set`: the same over mixes + perfect RM; `claims`: one row
    per claim (verdict, statistic, interval, n, failed checks and gates); `verdict_texts`: the
    sentences of each verdict box (reason, checks, gates); `failed_checks`: each failed
    manipulation check and the claims it makes not testable; `baselines`: each Table 2 predictor
    beside the trivial ones; `comparisons`: the paired differences behind the claims;
    `increases`: per run, the increases at the correlation epoch; `curves`: rloo's
    curves; `family`: per family member, variance, accuracy and mean r_G increase; `surface`:
    the fitted plane on an (accuracy, variance) grid; `matched`: per RM, the r_G increase at the
    matched KL; `grad_norm`: per RM, the mean gradient norm of the
    first epoch beside its variance; `samples`: initial and final samples per RM; `hacking`: per
    RM, the final r_G increase beside the change of VADER itself and the KL; `order`,
    `palette`: display order and colours; `metrics`."""

    table1: pd.DataFrame
    checks: pd.DataFrame
    table2: pd.DataFrame
    table2_paper_set: pd.DataFrame
    table2_text: pd.DataFrame
    table2_paper_set_text: pd.DataFrame
    claims: pd.DataFrame
    verdict_texts: dict
    failed_checks: pd.DataFrame
    baselines: pd.DataFrame
    comparisons: pd.DataFrame
    increases: pd.DataFrame
    curves: pd.DataFrame
    family: pd.DataFrame
    surface: pd.DataFrame
    matched: pd.DataFrame
    grad_norm: pd.DataFrame
    samples: pd.DataFrame
    hacking: pd.DataFrame
    clipping: pd.DataFrame
    order: list
    palette: dict
    metrics: dict


def display_order(rms) -> tuple[list, dict]:
    """Mixes by on-policy share, then the controls, then the rest; viridis for the mixes."""
    order = [rm for rm in (*MIXES, *CONTROLS) if rm in set(rms)]
    order += sorted(set(rms) - set(order))
    mixes = [rm for rm in order if rm.startswith("rm_onpolicy_")]
    palette = dict(zip(mixes, sns.color_palette("viridis", len(mixes)), strict=True))
    palette.update({"perfect": "tab:red", "perfect_unshifted": "tab:orange", "gold": "black"})
    others = [rm for rm in order if rm not in palette]
    palette.update(zip(others, sns.color_palette("tab20", len(others)), strict=True))
    return order, palette


def table2_view(corr, interval_source) -> pd.DataFrame:
    """'value [low, high] (paper p)' per Table 2 cell, indexed by property label."""
    return pd.DataFrame(
        {
            cell: [
                f"{corr.loc[p, cell]:+.2f} [{interval_source.loc[p, f'{cell}_low']:+.2f}, "
                f"{interval_source.loc[p, f'{cell}_high']:+.2f}]"
                + (
                    ""
                    if pd.isna(corr.loc[p, f"paper_{cell}"])
                    else f" (paper {corr.loc[p, f'paper_{cell}']:+.2f})"
                )
                for p in corr.index
            ]
            for cell in CELLS
        },
        index=[PROPERTY_LABELS[p] for p in corr.index],
    )


def failed_check_table(check_metrics: dict, verdicts: dict) -> pd.DataFrame:
    """Each failed manipulation check of rm_eval: what it asks, its value, and every registered
    claim that needs it (this stage's with their verdicts; other stages' by name)."""
    rows = []
    for row in registry_checks.table({"rm_eval": check_metrics}, CLAIMS):
        if row["stage"] != "rm_eval" or row["passed"] is not False:
            continue
        needing = [c for c in CLAIMS if row["check"] in c.checks]
        rows.append(
            {
                "check": row["check"],
                "what": row["what"],
                "value": row["value"],
                "claims it makes not testable": "; ".join(
                    f"{c.key} ({verdicts[c.key].verdict})" if c.key in verdicts else c.key
                    for c in needing
                )
                or "none",
            }
        )
    return pd.DataFrame(rows, columns=["check", "what", "value", "claims it makes not testable"])


def run(params: Sec41ReportParams) -> Sec41Report:
    """Table 2, the claims and their verdicts from rm_eval's outputs and rloo's runs; writes
    metrics/correlations.csv."""
    table = pd.read_csv(paths.RM_TABLE)
    checks = pd.read_csv(paths.CHECKS)
    curves = pd.read_csv(paths.curves("rloo"))
    logs = pd.read_csv(paths.train_logs("rloo"))
    samples = pd.read_csv(paths.RLOO_SAMPLES)
    props = analysis.rm_properties(table)
    main = curves[curves.variant == "main"]
    at = analysis.increases_at(main, params.increase_epoch)
    mixes = [rm for rm in MIXES if rm in set(at.rm)]
    paper_set = mixes + [rm for rm in ("perfect",) if rm in set(at.rm)]

    tables, draws = {}, {}
    for name, rms in (("mixes", mixes), ("paper_set", paper_set)):
        runs = at[at.rm.isin(rms)]
        corr = analysis.correlation_table(props, runs, rms)
        draws[name] = analysis.bootstrap_draws(props, runs, params.n_bootstrap, params.seed, rms)
        boot = analysis.bootstrap_correlations(
            props, runs, params.n_bootstrap, params.seed, rms, draws=draws[name]
        )
        tables[name] = analysis.with_paper(corr).join(boot)
    paths.METRICS.mkdir(exist_ok=True)
    pd.concat([t.assign(rms=name) for name, t in tables.items()]).rename_axis(
        "property"
    ).reset_index().to_csv(paths.CORRELATIONS, index=False, float_format="%.4f")

    end = analysis.increases_at(main, main.epoch.max())
    # the lambda arm (names with '_b') only rescales advantages: a consistency check, not the
    # variance axis the surface tests (see lm/rm/suite.py)
    family_rms = sorted(rm for rm in set(at.rm) if rm.startswith("fam_") and "_b" not in rm)
    family_rms += ["gold"]
    family_runs = at[at.rm.isin(family_rms)].merge(
        props[["reward_variance", "onpolicy_accuracy"]], left_on="rm", right_index=True
    )
    family = (
        family_runs.groupby("rm")
        .agg(
            reward_variance=("reward_variance", "first"),
            onpolicy_accuracy=("onpolicy_accuracy", "first"),
            gold_increase=("gold_increase", "mean"),
            gold_increase_std=("gold_increase", "std"),
            proxy_increase=("proxy_increase", "mean"),
            seeds=("seed", "nunique"),
        )
        .reset_index()
    )
    surface = {}
    if len(family) >= 4:
        surface = analysis.surface_fit(family_runs, params.n_bootstrap, params.seed)

    # every claim of this stage, from the registry's rules
    rm_eval_metrics = json.loads((paths.METRICS / "rm_eval.json").read_text())
    checks_passed = registry_checks.evaluate({"rm_eval": rm_eval_metrics})
    alt_path = paths.ALT_NORMALIZATION_INCREASES
    alt_runs = pd.read_csv(alt_path) if alt_path.exists() else None
    decided = sections.section41(
        props,
        at,
        checks_passed,
        mixes,
        params.n_bootstrap,
        params.seed,
        alt_runs=alt_runs,
        curves=main,
        matched_kl=params.matched_kl,
        final=end,
        family_rms=family_rms,
    )
    claims = decided.claims_table()
    comparisons = pd.concat(
        [t.assign(comparison=name) for name, t in decided.tables.items() if "rm" in t],
        ignore_index=True,
    )
    failed_checks = failed_check_table(rm_eval_metrics, {**decided.verdicts})

    matched_runs = analysis.at_matched_kl(main, params.matched_kl)
    matched = matched_runs.groupby("rm").gold_at_kl.agg(["mean", "std", "count"]).reset_index()
    moved = main[main.epoch > 0]
    steps_per_epoch = float((moved.step / moved.epoch).median())
    first = logs[(logs.variant == "main") & (logs.step <= params.increase_epoch * steps_per_epoch)]
    grad = (
        first.groupby("rm")[["grad_norm", "within_group_variance"]]
        .mean()
        .join(props["reward_variance"])
        .reset_index()
    )
    clipping = analysis.clipping_ablation(
        curves, logs, params.increase_epoch, steps_per_epoch, params.max_grad_norm or float("inf")
    )
    grad_mixes = grad[grad.rm.isin(paper_set + ["gold", "perfect_unshifted"])]
    grad_corr = float(np.corrcoef(grad_mixes.reward_variance, grad_mixes.grad_norm)[0, 1])

    ends = main.sort_values("step").groupby(["rm", "seed"])
    hacking = (
        pd.DataFrame(
            {
                "gold_increase": ends.gold_increase.last(),
                "vader_change": ends.vader.last() - ends.vader.first(),
                "kl": ends.kl.last(),
            }
        )
        .groupby("rm")
        .mean()
        .reset_index()
    )
    last = samples.step == samples.groupby("rm").step.transform("max")
    shown = samples[(samples.step == 0) | last].assign(
        when=lambda f: np.where(f.step == 0, "initial", "final")
    )
    order, palette = display_order(curves.rm.unique())
    table1 = table[~table.rm.str.startswith("fam_")].set_index("rm")[
        [
            "reward_variance",
            "onpolicy_accuracy",
            "onpolicy_accuracy_untied",
            "offpolicy_accuracy",
            "offpolicy_accuracy_untied",
        ]
    ]
    grid_a, grid_v = np.meshgrid(
        np.linspace(family.onpolicy_accuracy.min(), 1.0, 40),
        np.linspace(0.0, family.reward_variance.max() * 1.1, 40),
    )
    plane = (
        surface.get("surface_intercept", np.nan)
        + surface.get("surface_variance", np.nan) * grid_v
        + surface.get("surface_accuracy", np.nan) * grid_a
    )
    surface_grid = pd.DataFrame(
        {"accuracy": grid_a.ravel(), "variance": grid_v.ravel(), "predicted": plane.ravel()}
    )
    metrics = {
        **decided.all_metrics(),
        "registry_hash": registry_hash(),
        **{
            f"{prop}_{cell}": float(tables["mixes"].loc[prop, cell])
            for prop in tables["mixes"].index
            for cell in analysis.CELLS
        },
        **{
            f"paper_set_{prop}_{cell}": float(tables["paper_set"].loc[prop, cell])
            for prop in tables["paper_set"].index
            for cell in analysis.CELLS
        },
        **surface,
        "grad_norm_vs_variance_pearson": grad_corr,
        "increase_epoch": float(at.epoch.median()),
        "end_epoch": float(end.epoch.median()),
        "matched_kl": params.matched_kl,
        "n_mixes": len(mixes),
        **{
            f"noclip_{r.rm}_{key}": float(getattr(r, key))
            for r in clipping.itertuples()
            for key in ("difference", "low", "high", "clipped_step_share")
        },
        **{
            f"clipping_{column}_{name}": float(getattr(clipping[column], name)())
            if len(clipping)
            else None
            for column in ("clipped_step_share", "median_grad_norm")
            for name in ("min", "max")
        },
        # a globally normalised reward has total variance 1: what the per-prompt variance does
        # not hold lies between prompts (up to the unbiased estimator's small correction)
        "gold_between_prompt_share": float(1 - props.loc["gold", "reward_variance"])
        if "gold" in props.index
        else None,
        "mixes_between_prompt_share_min": float(1 - props.loc[mixes, "reward_variance"].max()),
        "mixes_between_prompt_share_max": float(1 - props.loc[mixes, "reward_variance"].min()),
        "checks_passed": int(checks.passed.sum()),
        "checks_total": len(checks),
    }
    return Sec41Report(
        table1,
        checks,
        tables["mixes"],
        tables["paper_set"],
        table2_view(tables["mixes"], tables["mixes"]),
        table2_view(tables["paper_set"], tables["paper_set"]),
        claims,
        decided.texts(),
        failed_checks,
        decided.tables["baselines"],
        comparisons,
        at,
        curves,
        family,
        surface_grid,
        matched,
        grad,
        shown,
        hacking,
        clipping,
        order,
        palette,
        metrics,
    )
