"""The deviations record: every change of a claim's rule after results were seen, with its date,
commit, old rule, new rule, reason, and where each run writes what the old rule gives on that
run's data (`results`: (stage, metric, what it is), glued on the book's Deviations page).

From the registry's creation on, every rule carries a hash (`Claim.rule_hash`); the hashes as
registered are committed in `rule_hashes.json`. A rule whose hash is neither the registered one
nor the `new_hashes` of a deviation here fails `tests/verdicts/test_registry.py`: change a rule,
and you add its entry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

RULE_HASHES = Path(__file__).with_name("rule_hashes.json")
ISSUE17_COMMIT = "b9d3bc3 and fe58bd0 (branch i17, issue 17)"


@dataclass(frozen=True)
class Deviation:
    """One rule change. `claims`: the claims it changed; `results`: ((stage, metric, label),
    ...) the old rule's verdict on each run's data; `new_hashes`: {claim: rule hash} of the new
    rules (for changes made after the registry existed)."""

    id: str
    date: str
    commit: str
    claims: tuple[str, ...]
    old_rule: str
    new_rule: str
    why: str
    results: tuple[tuple[str, str, str], ...] = ()
    new_hashes: dict = field(default_factory=dict)
    added_checks: dict = field(default_factory=dict)  # {claim: checks the new rule added}


FIRST_RESULTS = (
    "The first world's default run (commit 192fa97, 2026-11-23) had decided this claim under "
    "the old rule; the change was not recorded when it was made and is recorded here by issue 17"
)

DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        id="D1",
        date="2026-12-02",
        commit="acf99d8",
        claims=("variance_predicts_proxy_increase",),
        old_rule="over every RM but r_G (the mixes and the perfect RM): Spearman of reward "
        "variance with the proxy increase $> 0.5$ and its Pearson at least the largest Pearson "
        "of an accuracy measure (on-policy, off-policy, their mean); point values",
        new_rule="over the mixes only: the seed-bootstrap $95\\,\\%$ interval of the Pearson "
        "correlation lies above $0$",
        why=f"{FIRST_RESULTS}. Under the old rule that run found the claim false (its Spearman "
        "fell short). The new rule moved Table 2's verdicts to the mixes, so that the perfect "
        "RM, whose low variance was constructed, cannot carry a correlation by itself, and "
        "dropped the Spearman threshold",
        results=(
            ("sec41_report", "deviation_d1_old_paper_set", "old rule, mixes and perfect RM"),
            ("sec41_report", "deviation_d1_old_mixes", "old rule, mixes only"),
        ),
    ),
    Deviation(
        id="D2",
        date="2026-12-02",
        commit="acf99d8",
        claims=("variance_and_accuracy_beats_accuracy",),
        old_rule="over every RM but r_G: Pearson of variance & accuracy with the r_G increase "
        "above the Pearson of every accuracy measure (on-policy, off-policy, their mean); point "
        "values",
        new_rule="over the mixes only: the seed-bootstrap $95\\,\\%$ interval of Pearson(variance "
        "& accuracy) minus the largest accuracy Pearson (untied on-policy accuracy added) lies "
        "above $0$",
        why=f"{FIRST_RESULTS}. A point comparison has no interval; the perfect RM, the most "
        "accurate and by construction the slowest, made every accuracy correlate negatively",
        results=(
            ("sec41_report", "deviation_d2_old_paper_set", "old rule, mixes and perfect RM"),
            ("sec41_report", "deviation_d2_old_mixes", "old rule, mixes only"),
        ),
    ),
    Deviation(
        id="D3",
        date="2026-12-02",
        commit="acf99d8",
        claims=("perfect_rm_teaches_slowest",),
        old_rule="the perfect RM's mean r_G increase at the last evaluation is below every mix "
        "RM's; point values",
        new_rule="every mix's seed-paired $95\\,\\%$ $t$-interval of the r_G increase (mix minus "
        "perfect RM) at the Table 2 epoch lies above $0$",
        why=f"{FIRST_RESULTS}. A comparison of means has no interval, and the last evaluation "
        "mixes speed with where the runs saturate",
        results=(("sec41_report", "deviation_d3_old", "old rule"),),
    ),
    Deviation(
        id="D4",
        date="2026-12-02",
        commit="acf99d8",
        claims=("proxy_beats_gold_early",),
        old_rule="the best mix RM's mean r_G increase at the early evaluation is above the r_G "
        "run's; point values",
        new_rule="one-sided seed-paired $t$-tests of mix minus r_G at the Table 2 epoch, "
        "Holm-corrected over the mixes: any significant at $5\\,\\%$",
        why=f"{FIRST_RESULTS}. Picking the best of several mixes by its point value favours "
        "the claim; the test corrects for the choice",
        results=(("sec41_report", "deviation_d4_old", "old rule"),),
    ),
    Deviation(
        id="D5",
        date="2026-12-02",
        commit="8f085a2",
        claims=("rankings_survive_normalization",),
        old_rule="the Pearson correlations of reward variance and of variance & accuracy with "
        "both increases have the same sign under both normalisations; point values; every RM "
        "but r_G",
        new_rule="all eight Pearson and Spearman statistics of reward variance and of variance "
        "& accuracy kept: the alternative's seed-bootstrap $95\\,\\%$ interval lies on the "
        "standard value's side of $0$; every RM but r_G",
        why=f"{FIRST_RESULTS} (it was true). A sign of a point value is no evidence; the new rule "
        "asks for intervals",
        results=(("alt_normalization", "deviation_d5_old", "old rule"),),
    ),
    Deviation(
        id="D6",
        date="2026-12-03",
        commit=ISSUE17_COMMIT,
        claims=(
            "variance_predicts_proxy_increase",
            "variance_predicts_gold_increase",
            "variance_and_accuracy_beats_accuracy",
        ),
        old_rule="the seed-bootstrap $95\\,\\%$ interval (each RM's seeds resampled, the RMs "
        "fixed) of the statistic lies above $0$; no manipulation check, no robustness gate, no "
        "minimum number of RMs or seeds",
        new_rule="the registered rule: two-level bootstrap over RMs and seeds (and, for a "
        "correlation, an exact permutation $p$ over the RMs below $0.05$); not testable when "
        "variance_span, pairs, own_accuracy (and gold_ties or offpolicy_trend) fail, with fewer "
        "than $4$ RMs or $2$ seeds; at most undecided unless the sign holds leaving any one RM "
        "out and under the other normalisation",
        why="A correlation over a handful of RMs has that many points whatever the seeds; the "
        "seed-only interval ignored it. In the default run the mixes' variances barely differ "
        "(the span check fails), one RM carries the correlations and the other normalisation "
        "reverses them (issue 17, items 1 to 5)",
        results=(
            ("sec41_report", "deviation_d6_old_proxy", "variance_predicts_proxy_increase"),
            ("sec41_report", "deviation_d6_old_gold", "variance_predicts_gold_increase"),
            ("sec41_report", "deviation_d6_old_combined", "variance_and_accuracy_beats_accuracy"),
        ),
    ),
    Deviation(
        id="D7",
        date="2026-12-03",
        commit=ISSUE17_COMMIT,
        claims=(
            "perfect_rm_teaches_slowest",
            "proxy_beats_gold_early",
            "variance_raises_increase_at_fixed_accuracy",
            "less_accurate_beats_more_accurate",
        ),
        old_rule="the same tests, read without manipulation checks or a minimum number of "
        "units (the family's variance coefficient without the leave-one-RM-out gate)",
        new_rule="the registered rules: each claim names the manipulation checks it needs "
        "(perfect_low_variance, perfect_accurate, gold_ties; gold_variance, gold_ties; "
        "family_accuracy, family_variance), paired claims need $3$ seeds, the family's "
        "coefficient $4$ RMs, $2$ seeds and the leave-one-RM-out gate. The readings at matched "
        "KL are new claims beside the per-epoch ones",
        why="A verdict must not stand on a failed manipulation check or on one seed (issue 17, "
        "item 4, item 5 and item 8)",
        results=(
            ("sec41_report", "deviation_d7_old_perfect", "perfect_rm_teaches_slowest"),
            ("sec41_report", "deviation_d7_old_proxy", "proxy_beats_gold_early"),
            (
                "sec41_report",
                "deviation_d7_old_surface",
                "variance_raises_increase_at_fixed_accuracy",
            ),
            ("sec41_report", "deviation_d7_old_family", "less_accurate_beats_more_accurate"),
        ),
    ),
    Deviation(
        id="D8",
        date="2026-12-03",
        commit=ISSUE17_COMMIT,
        claims=("rankings_survive_normalization",),
        old_rule="D5's new rule: over the mixes and the perfect RM, all standard seeds against "
        "the alternative's, seed-bootstrap intervals",
        new_rule="the registered rule: over the mixes only, on the seeds both normalisations "
        "ran, two-level bootstrap intervals; not testable when variance_span fails, with fewer "
        "than $4$ RMs or $2$ seeds",
        why="With the perfect RM in the set its constructed variance carries every statistic; "
        "over the mixes alone the default run's statistics change sign (issue 17, item 3)",
        results=(("alt_normalization", "deviation_d8_old", "old rule"),),
    ),
    Deviation(
        id="D9",
        date="2026-12-03",
        commit=ISSUE17_COMMIT,
        claims=("report_ranking_predicts_rloo", "variance_and_accuracy_orders_rms"),
        old_rule="the mean over policies of the Spearman correlation with the realised ranking, "
        "with the mean of the per-policy seed-bootstrap bounds as its interval, above $0$",
        new_rule="the registered rule: the mean Spearman minus the best trivial predictor's "
        "(variance alone, untied accuracy alone, the trained-on-this-world's-preferences "
        "indicator), with a two-level bootstrap interval over RMs and seeds, above $0$, and "
        "above a random ranking's $95$th percentile; variance & accuracy counted once with the "
        "report while they rank every policy's RMs identically",
        why="A mean of bounds is not an interval, a binary indicator nearly matched the report, "
        "and the two predictors were one statistic counted twice (issue 17, item 7)",
        results=(
            ("sec42_report", "deviation_d9_old_report", "report_ranking_predicts_rloo"),
            ("sec42_report", "deviation_d9_old_combined", "variance_and_accuracy_orders_rms"),
        ),
    ),
    Deviation(
        id="D10",
        date="2026-12-03",
        commit=ISSUE17_COMMIT,
        claims=("best_rm_changes_across_policies",),
        old_rule="the same test without a manipulation check or minimum numbers of policies and "
        "seeds",
        new_rule="the registered rule: not testable when sec42_variance_differs fails, with "
        "fewer than $2$ policies or $2$ seeds per cell",
        why="A verdict must not stand on a failed manipulation check (issue 17, item 5: the "
        "tiny run's check was computed and ignored)",
        results=(("sec42_report", "deviation_d10_old", "old rule"),),
    ),
    Deviation(
        id="D11",
        date="2026-12-03",
        commit=ISSUE17_COMMIT,
        claims=("adam_undoes_uniform_scaling",),
        old_rule="the same per-seed rule with any number of seeds",
        new_rule="the registered rule: at least $2$ seeds",
        why="One seed agreeing with itself is no evidence (issue 17, item 4)",
        results=(("reward_scaling", "deviation_d11_old", "old rule"),),
    ),
)

ISSUE19_CHECKS = {
    "variance_predicts_proxy_increase": ("onpolicy_accuracy",),
    "variance_predicts_gold_increase": ("onpolicy_accuracy",),
    "variance_and_accuracy_beats_accuracy": ("onpolicy_accuracy",),
    "variance_raises_increase_at_fixed_accuracy": ("family_variance_span",),
    "less_accurate_beats_more_accurate": ("family_variance_span",),
    "best_rm_changes_across_policies": ("sec42_ordering_flip",),
}
ISSUE19_STAGES = {
    "best_rm_changes_across_policies": "sec42_report",
}

DEVIATIONS += (
    Deviation(
        id="D12",
        date="2026-12-03",
        commit="the merge of branches i17 and i19 (issues 17 and 19) on main",
        claims=tuple(ISSUE19_CHECKS),
        old_rule="the rules registered by issue 17, gated on the manipulation checks that "
        "existed then",
        new_rule="the same rules, each also gated on the check issue 19 added for what it "
        "manipulates: every mix's on-policy untied accuracy (Table 2's claims), the family's "
        "variance span at fixed accuracy (the family's claims), an ordering flip of a pair of RMs' "
        "variances across policies (the best RM across policies)",
        why="Issue 19 added these checks before the run that decides the claims, after the "
        "previous run's results were seen; a claim whose manipulation fails must read not "
        "testable, so each claim is gated on the check of its own manipulation",
        results=tuple(
            (ISSUE19_STAGES.get(key, "sec41_report"), f"deviation_d12_old_{key}", key)
            for key in ISSUE19_CHECKS
        ),
        new_hashes={
            "variance_predicts_proxy_increase": "f19168e40d35",
            "variance_predicts_gold_increase": "c9c1f4fb5405",
            "variance_and_accuracy_beats_accuracy": "e9a428caf589",
            "variance_raises_increase_at_fixed_accuracy": "76095fbde03e",
            "less_accurate_beats_more_accurate": "d823b4bac3e7",
            "best_rm_changes_across_policies": "6228099ea068",
        },
        added_checks=ISSUE19_CHECKS,
    ),
)

BY_ID = {d.id: d for d in DEVIATIONS}


def registered_hashes() -> dict[str, str]:
    """{claim: rule hash as registered} (the committed `rule_hashes.json`)."""
    return json.loads(RULE_HASHES.read_text())


def unrecorded_changes(claims) -> list[str]:
    """Claims whose current rule hash is neither the registered one nor the new hash of a
    deviation for that claim, each with the entry it needs."""
    registered = registered_hashes()
    problems = []
    for claim in claims:
        allowed = {registered.get(claim.key)} | {
            d.new_hashes.get(claim.key) for d in DEVIATIONS if claim.key in d.new_hashes
        }
        if claim.key not in registered:
            problems.append(
                f"{claim.key}: not registered; add it to {RULE_HASHES.name} with hash "
                f"{claim.rule_hash()} (a new claim, fixed today)"
            )
        elif claim.rule_hash() not in allowed:
            problems.append(
                f"{claim.key}: rule changed (hash {claim.rule_hash()}) without a deviation; add "
                f"a Deviation with new_hashes={{'{claim.key}': '{claim.rule_hash()}'}}"
            )
    return problems
