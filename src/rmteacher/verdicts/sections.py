"""Every registered claim of a stage decided from tidy tables, so that the stages call one
function each and a script can feed the same function the committed CSVs.

Inputs: `props` (indexed by rm: reward_variance, the accuracies, accuracy_mean,
variance_and_accuracy), `runs` (rm, seed, proxy_increase, gold_increase [, kl] at the Table 2
epoch), `checks` ({check name: passed}, from `checks.evaluate`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from rmteacher.verdicts import evidence as ev
from rmteacher.verdicts import legacy
from rmteacher.verdicts.claims import claim
from rmteacher.verdicts.deviations import DEVIATIONS
from rmteacher.verdicts.rules import Evidence, Verdict, decide

ACCURACIES = legacy.ACCURACIES


@dataclass
class Decided:
    """A stage's verdicts (by claim key), the tables behind them, extra metrics (numbers the
    outcome table quotes) and the old rules' verdicts for the Deviations page."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    deviations: dict = field(default_factory=dict)

    def add(self, key: str, evidence: Evidence | None, checks: Mapping) -> Verdict:
        """Decide claim `key`; where a deviation added manipulation checks to its rule, also
        decide it under the old rule (the same evidence without them) for the Deviations page."""
        verdict = decide(claim(key), evidence, checks)
        self.verdicts[key] = verdict
        for d in DEVIATIONS:
            added = d.added_checks.get(key, ())
            if added:
                old = replace(
                    claim(key), checks=tuple(c for c in claim(key).checks if c not in added)
                )
                name = d.id.lower()
                self.deviations[f"deviation_{name}_old_{key}"] = decide(
                    old, evidence, checks
                ).verdict
        return verdict

    def all_metrics(self) -> dict:
        out = {}
        for verdict in self.verdicts.values():
            out |= verdict.metrics()
        return out | self.metrics | self.deviations

    def texts(self) -> dict:
        out = {}
        for verdict in self.verdicts.values():
            out |= verdict.texts()
        return out

    def claims_table(self) -> pd.DataFrame:
        """One row per claim: verdict, value, interval, n, unit, p, failed checks and gates."""
        rows = []
        for v in self.verdicts.values():
            rows.append(
                {
                    "claim": v.key,
                    "verdict": v.verdict,
                    "value": v.value,
                    "low": v.low,
                    "high": v.high,
                    "n": v.n,
                    "unit": v.unit,
                    "p": v.p,
                    "checks failed": ", ".join(c for c, ok in v.checks.items() if ok is False),
                    "gates failed": ", ".join(g for g, ok in v.gates.items() if ok is not True),
                }
            )
        return pd.DataFrame(rows).set_index("claim") if rows else pd.DataFrame()


def _seeds(runs: pd.DataFrame, column: str, rms: Sequence[str]):
    return ev.seeds_by_rm(runs, column, rms)


def seed_only_draws(props, runs, rms, n_boot: int, seed: int, cells) -> dict:
    """The Table 2 statistics under the old seed-only bootstrap (each RM's seeds resampled in
    rm order, the RMs fixed): {(property, column, method): draws}. Kept for the old rules."""
    rng = np.random.default_rng(seed)
    groups = {rm: g for rm, g in runs[runs.rm.isin(rms)].groupby("rm")}
    order = list(groups)
    out = {cell: np.empty(n_boot) for cell in cells}
    for b in range(n_boot):
        picks = {rm: rng.integers(0, len(groups[rm]), len(groups[rm])) for rm in order}
        means = {
            column: [groups[rm][column].to_numpy()[picks[rm]].mean() for rm in rms]
            for column in ("proxy_increase", "gold_increase")
        }
        for prop, column, method in cells:
            out[(prop, column, method)][b] = ev.STATISTICS_BY_NAME[method](
                props.loc[list(rms), prop].to_numpy(), means[column]
            )
    return out


def section41(
    props: pd.DataFrame,
    runs: pd.DataFrame,
    checks: Mapping,
    mixes: Sequence[str],
    n_boot: int,
    seed: int,
    alt_runs: pd.DataFrame | None = None,
    curves: pd.DataFrame | None = None,
    matched_kl: float = float("nan"),
    final: pd.DataFrame | None = None,
    family_rms: Sequence[str] = (),
    family_pair: tuple[str, str] = ("fam_n2_c1", "fam_n0_c0.1"),
) -> Decided:
    """Section 4.1's claims. `alt_runs`: the same RMs' runs under the other normalisation;
    `curves`: the main runs' evaluation curves (rm, seed, step, kl, gold_increase), read at the
    matched KL (`matched_kl`, or the largest KL every compared run reaches if smaller);
    `final`: one row per run at its last evaluation (for D3's old rule); `family_rms`: the
    controlled family's members and r_G."""
    out = Decided()
    mixes = [m for m in mixes if m in set(runs.rm)]
    present = set(runs.rm)

    # the perfect RM and r_G, per epoch and at matched KL
    for suffix in ("", "_at_kl"):
        if suffix and curves is None:
            continue
        for key, other in (
            ("perfect_rm_teaches_slowest", "perfect"),
            ("proxy_beats_gold_early", "gold"),
        ):
            if other not in present:
                continue
            frame = runs
            if suffix:
                level = matched_kl_level(curves, [*mixes, other], matched_kl)
                frame = at_kl(curves[curves.rm.isin([*mixes, other])], level)
                out.metrics[f"{key}_at_kl_kl"] = level
            if other == "perfect":
                evidence, table = ev.all_above(frame, "perfect", mixes)
            else:
                evidence, table = ev.some_above(frame, mixes, "gold")
            out.add(key + suffix, evidence, checks)
            out.tables[key + suffix] = table
            if not suffix:
                name = "perfect" if other == "perfect" else "proxy"
                out.deviations[f"deviation_d7_old_{name}"] = legacy.ungated(evidence)

    # Table 2 over the mixes
    alt = (
        {c: _seeds(alt_runs, c, mixes) for c in ("proxy_increase", "gold_increase")}
        if (alt_runs is not None)
        else {"proxy_increase": None, "gold_increase": None}
    )
    variance = props["reward_variance"].to_dict()
    for key, column in (
        ("variance_predicts_proxy_increase", "proxy_increase"),
        ("variance_predicts_gold_increase", "gold_increase"),
    ):
        seeds = _seeds(runs, column, mixes)
        evidence = ev.correlation(variance, seeds, n_boot, seed, alt[column])
        out.add(key, evidence, checks)
    accuracies = {a: props[a].to_dict() for a in ACCURACIES if a in props}
    seeds = _seeds(runs, "gold_increase", mixes)
    statistic = ev.difference_statistic(props["variance_and_accuracy"].to_dict(), accuracies)
    out.add(
        "variance_and_accuracy_beats_accuracy",
        ev.rm_statistic(statistic, seeds, n_boot, seed, alt["gold_increase"]),
        checks,
    )
    out.tables["baselines"] = baselines_table(props, runs, mixes)

    # the old rules on today's data
    mix_runs = runs[runs.rm.isin(mixes)]
    cells = [
        ("reward_variance", "proxy_increase", "pearson"),
        ("reward_variance", "gold_increase", "pearson"),
        ("variance_and_accuracy", "gold_increase", "pearson"),
        *[(a, "gold_increase", "pearson") for a in accuracies],
    ]
    if len(mixes) >= 3:
        draws = seed_only_draws(props, mix_runs, mixes, n_boot, seed, cells)
        old = legacy.seed_bootstrap_correlation
        out.deviations["deviation_d6_old_proxy"] = old(draws[cells[0]])[0]
        out.deviations["deviation_d6_old_gold"] = old(draws[cells[1]])[0]
        out.deviations["deviation_d6_old_combined"] = legacy.seed_bootstrap_difference(
            draws[cells[2]], np.stack([draws[(a, "gold_increase", "pearson")] for a in accuracies])
        )[0]
        paper_set = [*mixes, *(["perfect"] if "perfect" in present else [])]
        for name, rms in (("paper_set", paper_set), ("mixes", mixes)):
            corr = point_table(props, runs, rms)
            out.deviations[f"deviation_d1_old_{name}"] = legacy.first_world_variance_predicts_proxy(
                corr
            )
            out.deviations[f"deviation_d2_old_{name}"] = legacy.first_world_variance_and_accuracy(
                corr
            )
    if final is not None and "perfect" in present:
        out.deviations["deviation_d3_old"] = legacy.first_world_perfect_slowest(final, mixes)
    if "gold" in present:
        out.deviations["deviation_d4_old"] = legacy.first_world_proxy_beats_gold(runs, mixes)

    # the controlled family
    members = sorted(rm for rm in family_rms if rm in present)  # order fixes the draws
    if len(members) >= 2:
        features = props.loc[members, ["reward_variance", "onpolicy_accuracy"]]
        seeds = _seeds(runs, "gold_increase", members)
        evidence = ev.rm_statistic(
            ev.coefficient_statistic(features, 1), seeds, n_boot, seed, min_distinct=4
        )
        out.add("variance_raises_increase_at_fixed_accuracy", evidence, checks)
        out.deviations["deviation_d7_old_surface"] = legacy.ungated(evidence)
    noisy, exact = family_pair
    if {noisy, exact} <= present:
        evidence = ev.paired(runs, noisy, exact)
        out.add("less_accurate_beats_more_accurate", evidence, checks)
        out.deviations["deviation_d7_old_family"] = legacy.ungated(evidence)
    return out


def point_table(props: pd.DataFrame, runs: pd.DataFrame, rms: Sequence[str]) -> pd.DataFrame:
    """Table 2's point values over `rms` (Pearson and Spearman of each property with the mean
    proxy and r_G increase), indexed by property."""
    means = runs[runs.rm.isin(rms)].groupby("rm")[["proxy_increase", "gold_increase"]].mean()
    rms = [r for r in rms if r in means.index]
    rows = {}
    for prop in props.columns:
        x = props.loc[rms, prop].to_numpy(dtype=float)
        rows[prop] = {
            f"{c.split('_')[0]}_{m}": ev.STATISTICS_BY_NAME[m](x, means.loc[rms, c])
            for c in ("proxy_increase", "gold_increase")
            for m in ("pearson", "spearman")
        }
    return pd.DataFrame(rows).T


def baselines_table(props, runs, rms, column: str = "gold_increase") -> pd.DataFrame:
    """Each Table 2 predictor beside the trivial ones over `rms`: Pearson and Spearman with the
    mean increase and the exact permutation p (the random ranking's distribution)."""
    seeds = _seeds(runs, column, rms)
    means = [seeds[r].mean() for r in seeds]
    rows = []
    for prop in props.columns:
        x = props.loc[list(seeds), prop].to_numpy(dtype=float)
        rows.append(
            {
                "predictor": prop,
                "pearson": ev.pearson(x, means),
                "spearman": ev.STATISTICS_BY_NAME["spearman"](x, means),
                "permutation_p": ev.permutation_test(x, means)
                if 3 <= len(x) <= 8
                else float("nan"),
                "n_rms": len(x),
            }
        )
    return pd.DataFrame(rows).set_index("predictor")


def table9(
    props: pd.DataFrame,
    standard: pd.DataFrame,
    alternative: pd.DataFrame,
    checks: Mapping,
    mixes: Sequence[str],
    n_boot: int,
    seed: int,
) -> Decided:
    """Table 9's claim over the mixes, on the seeds both normalisations ran."""
    out = Decided()
    evidence, table = ev.survival(props, standard, alternative, list(mixes), n_boot, seed)
    out.add("rankings_survive_normalization", evidence, checks)
    out.tables["survival"] = table
    out.metrics |= {
        "n_survival_statistics": len(table),
        "n_survival_kept": int(table.kept.sum()) if len(table) else 0,
        "n_survival_reversed": int(table.reversed.sum()) if len(table) else 0,
        "n_survival_sign_flipped": int(table.sign_flipped.sum()) if len(table) else 0,
    }
    return out


TRIVIAL = ("reward_variance", "onpolicy_accuracy_untied", "trained_here")


def section42(
    properties: pd.DataFrame,
    runs: pd.DataFrame,
    winners: pd.DataFrame,
    interaction: Mapping,
    checks: Mapping,
    n_boot: int,
    seed: int,
    trained_prefix: str = "rm_onpolicy_",
) -> Decided:
    """Section 4.2's claims. `properties`: policy, rm and the predictors (predicted_rank,
    variance_and_accuracy, reward_variance, onpolicy_accuracy_untied); `runs`: policy, rm, seed,
    gold_increase of the RLOO runs at their last evaluation; `winners`, `interaction`: from
    `lm.analysis.sec42` (best RM per policy against its runner-up; the ANOVA)."""
    out = Decided()
    cells = runs.groupby(["policy", "rm"]).seed.nunique()
    out.add(
        "best_rm_changes_across_policies",
        ev.interaction(
            list(winners.best_rm),
            list(winners.low),
            interaction.get("interaction_f", float("nan")),
            interaction.get("interaction_p", float("nan")),
            runs.policy.nunique(),
            int(cells.min()) if len(cells) else 0,
        ),
        checks,
    )
    out.deviations["deviation_d10_old"] = legacy.ungated(
        ev.interaction(
            list(winners.best_rm),
            list(winners.low),
            interaction.get("interaction_f", float("nan")),
            interaction.get("interaction_p", float("nan")),
            runs.policy.nunique(),
            0,
        )
    )
    props = properties.assign(
        report=-properties.predicted_rank.astype(float),
        trained_here=properties.rm.str.startswith(trained_prefix).astype(float),
    )
    scores = {
        name: {
            policy: group.set_index("rm")[name].astype(float).to_dict()
            for policy, group in props.groupby("policy", sort=False)
        }
        for name in ("report", "variance_and_accuracy", *TRIVIAL)
    }
    seeds = {
        policy: {rm: g.gold_increase.to_numpy(dtype=float) for rm, g in group.groupby("rm")}
        for policy, group in runs.groupby("policy", sort=False)
        if policy in scores["report"]
    }
    seeds = {
        p: {r: v for r, v in cells.items() if r in scores["report"][p]}
        for p, cells in seeds.items()
    }
    identical = _same_rankings(props, "report", "variance_and_accuracy")
    out.metrics["report_equals_variance_and_accuracy"] = identical
    for key, predictor in (
        ("report_ranking_predicts_rloo", "report"),
        ("variance_and_accuracy_orders_rms", "variance_and_accuracy"),
    ):
        evidence, numbers = ev.ranking(scores, seeds, predictor, TRIVIAL, n_boot, seed)
        if key == "variance_and_accuracy_orders_rms" and identical:
            evidence.detail += "; it ranks every policy's RMs as the report does, so it is the "
            evidence.detail += "same statistic, counted once"
        out.add(key, evidence, checks)
        for name, value in numbers.items():
            out.metrics[f"{key}_{name}"] = value
        if key == "report_ranking_predicts_rloo" and numbers:
            out.metrics["random_ranking_q95"] = numbers["random_q95"]
    return out


def _same_rankings(props: pd.DataFrame, a: str, b: str) -> bool:
    """Whether predictors a and b order every policy's RMs the same way."""
    for _, group in props.groupby("policy"):
        if not (group[a].rank(method="min") == group[b].rank(method="min")).all():
            return False
    return True


def scaling(effects: pd.DataFrame, checks: Mapping) -> Decided:
    """The reward-scaling consistency claim from per-seed scale effects (columns adam, sgd)."""
    out = Decided()
    evidence = ev.every_seed((effects["adam"].abs() < effects["sgd"].abs()).tolist())
    out.add("adam_undoes_uniform_scaling", evidence, checks)
    out.deviations["deviation_d11_old"] = legacy.ungated(evidence)
    return out


def matched_kl_level(curves: pd.DataFrame, rms: Sequence[str], ceiling: float) -> float:
    """The KL at which the 'at matched KL' claims read every run: `ceiling`, or the largest KL
    every run of `rms` reaches if that is smaller (a run read beyond its path would be NaN)."""
    runs = curves[curves.rm.isin(rms)]
    if runs.empty:
        return float("nan")
    reached = runs.groupby(["rm", "seed"]).kl.max().min()
    return float(min(ceiling, reached))


def at_kl(curves: pd.DataFrame, kl: float) -> pd.DataFrame:
    """Per run (rm, seed), the r_G increase where its KL path (running maximum, so monotone)
    first reaches `kl`, interpolated linearly; NaN if it never does (paper Figure 4, read at
    one KL). Columns rm, seed, gold_increase."""
    rows = []
    for (rm, seed), run in curves.sort_values("step").groupby(["rm", "seed"]):
        path = np.maximum.accumulate(run.kl.clip(lower=0).to_numpy())
        gain = run.gold_increase.to_numpy()
        value = float(np.interp(kl, path, gain)) if len(path) and path[-1] >= kl else np.nan
        rows.append({"rm": rm, "seed": seed, "gold_increase": value})
    return pd.DataFrame(rows, columns=["rm", "seed", "gold_increase"])
