"""Stage sec41_report (paper Table 2, Figures 2 and 4, and the controlled family): what the RLOO
runs say about each Section 4.1 claim, with intervals, and the verdict of each claim from the rules
of `rmteacher.lm.analysis.sec41` (fixed before any run).

Table 2 is computed over the five trained mixes only (no RM whose variance we constructed) and,
for comparison, over the mixes and the perfect RM (the paper's n = 6); every cell has a 95 %
interval from resampling each RM's seeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import StageParams, param

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Sec41ReportParams(StageParams):
    """Table 2 over the mixes (and over mixes + the perfect RM, as the paper), paired tests of the
    claims, the controlled family's surface, increases at matched KL and every verdict."""

    STAGE = "sec41_report"
    increase_epoch: float = param(1.0, "epoch at which increases are compared (paper: 1)", gt=0)
    n_bootstrap: int = param(2000, "bootstrap resamples over seeds", ge=10)
    seed: int = param(0, "bootstrap seed", ge=0)
    matched_kl: float = param(
        1.0, "KL (nats) at which every run's r_G increase is also read (Figure 4)", gt=0
    )


@dataclass(frozen=True)
class Sec41Report:
    """Everything the Section 4.1 pages show. `table1`: Table 1 (mixes and controls);
    `checks`: rm_eval's manipulation checks; `table2`: Table 2 over the mixes with intervals and
    the paper's values; `table2_paper_set`: the same over mixes + perfect RM; `claims`: one row
    per claim (verdict, statistic, interval, rule); `comparisons`: the paired differences behind
    the claims; `increases`: per run, the increases at the correlation epoch; `curves`: rloo's
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
    import seaborn as sns

    from rmteacher.lm.experiments.rloo import CONTROLS, MIXES

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
    import pandas as pd

    from rmteacher.lm.analysis.sec41 import CELLS, PROPERTY_LABELS

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


def stage_max_grad_norm() -> float:
    """The gradient clipping of rloo's main runs, from its validated params."""
    from rmteacher.lm.experiments.rloo import RlooParams

    return RlooParams.from_file().max_grad_norm or float("inf")


def run(params: Sec41ReportParams) -> Sec41Report:
    """Table 2, the claims and their verdicts from rm_eval's outputs and rloo's runs; writes
    metrics/correlations.csv."""
    import numpy as np
    import pandas as pd

    from rmteacher.core import paths
    from rmteacher.lm.analysis import sec41 as analysis
    from rmteacher.lm.experiments.rloo import MIXES

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
    claims, comparisons = [], []

    def add(key, text, verdict, value, low, high, rule):
        claims.append(
            {
                "claim": key,
                "text": text,
                "verdict": verdict,
                "value": value,
                "low": low,
                "high": high,
                "rule": rule,
            }
        )

    if "perfect" in set(at.rm) and mixes:
        verdict, diffs = analysis.slower_than_all(at, "perfect", mixes)
        worst = diffs.loc[diffs.difference.idxmin()]
        add(
            "perfect_rm_teaches_slowest",
            "the perfectly accurate, low-variance RM raises r_G slower than every mix RM",
            verdict,
            worst.difference,
            worst.low,
            worst.high,
            "every mix's seed-paired r_G-increase advantage over the perfect RM at the "
            "correlation epoch has its 95 % t-interval above 0",
        )
        comparisons.append(diffs.assign(comparison="mix - perfect"))
    if "gold" in set(at.rm) and mixes:
        verdict, diffs = analysis.some_beats(at, mixes, "gold")
        best = diffs.loc[diffs.difference.idxmax()]
        add(
            "proxy_beats_gold_early",
            "some mix RM raises r_G faster than training on r_G itself, at the correlation epoch",
            verdict,
            best.difference,
            best.low,
            best.high,
            "a one-sided seed-paired t-test of mix - r_G is significant at 5 % after Holm's "
            "correction over the mixes",
        )
        comparisons.append(diffs.assign(comparison="mix - gold"))
    index = tables["mixes"].index
    verdict, low, high = analysis.correlation_verdict(
        draws["mixes"], index, "reward_variance", "proxy_pearson"
    )
    add(
        "variance_predicts_proxy_increase",
        "over the mixes, reward variance correlates positively with the proxy increase",
        verdict,
        tables["mixes"].loc["reward_variance", "proxy_pearson"],
        low,
        high,
        "the seed-bootstrap 95 % interval of the Pearson correlation lies above 0",
    )
    verdict, low, high = analysis.correlation_verdict(
        draws["mixes"], index, "reward_variance", "gold_pearson"
    )
    add(
        "variance_predicts_gold_increase",
        "over the mixes, reward variance correlates positively with the r_G increase",
        verdict,
        tables["mixes"].loc["reward_variance", "gold_pearson"],
        low,
        high,
        "the seed-bootstrap 95 % interval of the Pearson correlation lies above 0",
    )
    verdict, low, high = analysis.beats_accuracy_verdict(draws["mixes"], index, "gold_pearson")
    combined = tables["mixes"].loc["variance_and_accuracy", "gold_pearson"]
    best_accuracy = (
        tables["mixes"].loc[[a for a in analysis.ACCURACIES if a in index], "gold_pearson"].max()
    )
    add(
        "variance_and_accuracy_beats_accuracy",
        "over the mixes, variance & accuracy correlates with the r_G increase more than accuracy",
        verdict,
        combined - best_accuracy,
        low,
        high,
        "the bootstrap 95 % interval of Pearson(variance & acc.) - max Pearson(accuracy) lies "
        "above 0",
    )

    # the lambda arm (names with '_b') only rescales advantages: a consistency check, not the
    # variance axis the surface tests (see lm/rm/suite.py)
    family_rms = [rm for rm in set(at.rm) if rm.startswith("fam_") and "_b" not in rm]
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
        add(
            "variance_raises_increase_at_fixed_accuracy",
            "across the controlled family, the r_G increase rises with reward variance at fixed "
            "accuracy",
            analysis.interval_verdict(
                surface["surface_variance_low"], surface["surface_variance_high"]
            ),
            surface["surface_variance"],
            surface["surface_variance_low"],
            surface["surface_variance_high"],
            "the variance coefficient of r_G increase ~ 1 + variance + accuracy (least squares "
            "over the family's runs) has its RM-and-seed bootstrap 95 % interval above 0",
        )
        noisy, exact = "fam_n2_c1", "fam_n0_c0.1"
        if {noisy, exact} <= set(at.rm):
            mean, low, high, _ = analysis.paired_difference(at, noisy, exact)
            add(
                "less_accurate_beats_more_accurate",
                "the least accurate uncompressed family member raises r_G faster than the "
                "perfectly accurate, most compressed one (accuracy alone does not order RMs)",
                analysis.interval_verdict(low, high),
                mean,
                low,
                high,
                f"the seed-paired difference {noisy} - {exact} has its 95 % t-interval above 0",
            )
    claims = pd.DataFrame(claims)
    comparisons = pd.concat(comparisons, ignore_index=True) if comparisons else pd.DataFrame()

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
        curves, logs, params.increase_epoch, steps_per_epoch, stage_max_grad_norm()
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
        **{f"claim_{r.claim}": r.verdict for r in claims.itertuples()},
        **{f"claim_{r.claim}_value": float(r.value) for r in claims.itertuples()},
        **{f"claim_{r.claim}_low": float(r.low) for r in claims.itertuples()},
        **{f"claim_{r.claim}_high": float(r.high) for r in claims.itertuples()},
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
