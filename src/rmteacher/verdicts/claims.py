"""The claims registry: every claim the companion decides, declared once, with its rule.

The README's outcome table, `metrics/outcomes/`, the book's verdict boxes, the findings page and
the Deviations page are all generated from `CLAIMS` (and `rmteacher.verdicts.deviations`). A rule
is fixed before the run that decides it; its hash is committed in `rule_hashes.json`, and a
change needs a deviation entry (a test fails otherwise).

Numbers in rule texts are written as math (`$0.05$`) because they are constants of the rule, not
results of a run."""

from __future__ import annotations

import hashlib

from rmteacher.verdicts.rules import EVERY, EXACT, INTERVAL, TEST, Claim

REGISTERED = "2026-12-03"
BEFORE = "before any run of the rule"
AFTER = "after results were seen, by issue 17: exploratory until a rerun decides it"
REVISED = "revised after results were seen: see the Deviations page"

TABLE2_CHECKS = ("variance_span", "pairs", "own_accuracy", "onpolicy_accuracy")
TABLE2_GATES = ("leave_one_rm_out", "other_normalisation")
TWO_LEVEL = (
    "two-level bootstrap $95\\,\\%$ interval (RMs drawn with replacement, then each drawn RM's "
    "seeds; draws with fewer than $3$ distinct RMs undefined)"
)
PAIRED = "seed-paired $95\\,\\%$ $t$-interval"


def _theory(key, text, source, metric, evidence):
    return Claim(
        key=key,
        text=text,
        source=source,
        stage=key,
        statistic=metric,
        unit="exact computation",
        test="holds exactly (a computation, not a sample)",
        kind=EXACT,
        fixed=REGISTERED,
        registered=BEFORE,
        evidence=evidence,
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        key="theory_gradient_bound",
        text="the gradient norm stays below its variance bound",
        source="Theorem 1, Proposition 2",
        stage="theory_gradient_bound",
        statistic="largest gradient norm / its variance bound, tabular and autoregressive",
        unit="exact computation",
        test="both ratios at most $1$",
        kind=EXACT,
        fixed=REGISTERED,
        registered=BEFORE,
        evidence="largest gradient / bound: tabular {max_grad_to_bound_ratio_tabular:.3f}, "
        "autoregressive {max_grad_to_bound_ratio_autoregressive:.3f}",
    ),
    _theory(
        "theory_escape_time",
        "low reward variance means a slow escape; the rarity runs respect its lower bound",
        "Theorem 4",
        "rarity_bounds_hold_all",
        "log-log slope of t_gamma on variance: tabular "
        "{escape_time_slope_tabular:.2f}, autoregressive {escape_time_slope_autoregressive:.2f}",
    ),
    _theory(
        "theory_accuracy_speed",
        "the accurate RM is the slow teacher, within Theorem 5's bounds",
        "Theorems 2 and 5",
        "thm5_slow_bound_holds_all",
        "slow / fast time to gamma: {thm2_slow_over_fast_time_ratio:.1f}",
    ),
    _theory(
        "theory_policy_dependence",
        "the better RM depends on the policy",
        "Theorems 3 and 6",
        "thm3_ranking_flips",
        "slow / fast pairing time: {thm3_slow_over_fast:.1f}",
    ),
    _theory(
        "theory_best_of_n",
        "under Best-of-N the accurate RM is best (contrast with policy gradient)",
        "Proposition 1",
        "bon_accurate_rm_is_best",
        "r_G at the largest N: accurate RM {bon_gold_at_max_n_accurate:.3f}, "
        "best other {bon_gold_at_max_n_best_other:.3f}",
    ),
    # ---- Section 4.1: the perfect RM and r_G itself, per epoch (the paper's) and at matched KL
    Claim(
        key="perfect_rm_teaches_slowest",
        text="a perfectly accurate, low-variance RM raises r_G slower than every mix RM",
        source="Section 4.1, Figure 2",
        stage="sec41_report",
        statistic="seed-paired difference of r_G increases, each mix minus the perfect RM, at "
        "the Table 2 epoch; the value is the smallest",
        unit="seeds",
        test=f"every mix's {PAIRED} above $0$: reproduced; any below $0$: not reproduced",
        checks=("perfect_low_variance", "perfect_accurate", "gold_ties"),
        min_units=3,
        paper=True,
        pair="perfect_rm_teaches_slowest_at_kl",
        reading="per epoch",
        fixed=REGISTERED,
        registered=REVISED,
        evidence="closest mix minus perfect RM {value:.3f} [{low:.3f}, {high:.3f}], {n} seeds",
    ),
    Claim(
        key="perfect_rm_teaches_slowest_at_kl",
        text="a perfectly accurate, low-variance RM gains less r_G than every mix RM at the same "
        "KL from the initial policy",
        source="Section 4.1, read at matched KL as in Figure 4",
        stage="sec41_report",
        statistic="seed-paired difference of r_G increases, each mix minus the perfect RM, "
        "where each run's KL path first reaches the matched KL (sec41_report.matched_kl, or "
        "the largest KL every compared run reaches if smaller); the value is the smallest",
        unit="seeds",
        test=f"every mix's {PAIRED} above $0$: reproduced; any below $0$: not reproduced",
        checks=("perfect_low_variance", "perfect_accurate", "gold_ties"),
        min_units=3,
        paper=False,
        pair="perfect_rm_teaches_slowest",
        reading="at matched KL",
        fixed=REGISTERED,
        registered=AFTER,
        evidence="closest mix minus perfect RM at KL {perfect_rm_teaches_slowest_at_kl_kl:.2f}: "
        "{value:.3f} [{low:.3f}, {high:.3f}], {n} seeds",
    ),
    Claim(
        key="proxy_beats_gold_early",
        text="a less accurate RM raises r_G faster than training on r_G itself, early",
        source="Section 4.1, Figures 2 and 7",
        stage="sec41_report",
        statistic="seed-paired difference of r_G increases, each mix minus r_G, at the Table 2 "
        "epoch; the value is the largest",
        unit="seeds",
        test="one-sided paired $t$-tests, Holm-corrected over the mixes: any significant at "
        f"$5\\,\\%$: reproduced; every mix's {PAIRED} below $0$: not reproduced",
        kind=TEST,
        checks=("gold_variance", "gold_ties"),
        min_units=3,
        paper=True,
        pair="proxy_beats_gold_early_at_kl",
        reading="per epoch",
        fixed=REGISTERED,
        registered=REVISED,
        evidence="best mix minus r_G {value:.3f} [{low:.3f}, {high:.3f}], Holm p {p:.3g}, "
        "{n} seeds",
    ),
    Claim(
        key="proxy_beats_gold_early_at_kl",
        text="a less accurate RM gains more r_G than training on r_G itself at the same KL",
        source="Section 4.1, read at matched KL as in Figure 4",
        stage="sec41_report",
        statistic="seed-paired difference of r_G increases, each mix minus r_G, where each "
        "run's KL path first reaches the matched KL (as for perfect_rm_teaches_slowest_at_kl); "
        "the value is the largest",
        unit="seeds",
        test="one-sided paired $t$-tests, Holm-corrected over the mixes: any significant at "
        f"$5\\,\\%$: reproduced; every mix's {PAIRED} below $0$: not reproduced",
        kind=TEST,
        checks=("gold_variance", "gold_ties"),
        min_units=3,
        paper=False,
        pair="proxy_beats_gold_early",
        reading="at matched KL",
        fixed=REGISTERED,
        registered=AFTER,
        evidence="best mix minus r_G at KL {proxy_beats_gold_early_at_kl_kl:.2f}: {value:.3f} "
        "[{low:.3f}, {high:.3f}], Holm p {p:.3g}, {n} seeds",
    ),
    # ---- Table 2 over the mixes
    Claim(
        key="variance_predicts_proxy_increase",
        text="over the mixes, reward variance predicts the proxy increase",
        source="Table 2",
        stage="sec41_report",
        statistic="Pearson of reward variance with the mean (over seeds) proxy increase at the "
        "Table 2 epoch, over the mix RMs",
        unit="RMs",
        test=f"{TWO_LEVEL} above $0$ and exact one-sided permutation $p$ over the RMs below "
        "$0.05$: reproduced; interval below $0$: not reproduced",
        checks=TABLE2_CHECKS,
        gates=TABLE2_GATES,
        min_units=4,
        min_seeds=2,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="Pearson {value:.2f} [{low:.2f}, {high:.2f}], n = {n} RMs, permutation p {p:.3f}",
    ),
    Claim(
        key="variance_predicts_gold_increase",
        text="over the mixes, reward variance predicts the r_G increase",
        source="Table 2",
        stage="sec41_report",
        statistic="Pearson of reward variance with the mean (over seeds) r_G increase at the "
        "Table 2 epoch, over the mix RMs",
        unit="RMs",
        test=f"{TWO_LEVEL} above $0$ and exact one-sided permutation $p$ over the RMs below "
        "$0.05$: reproduced; interval below $0$: not reproduced",
        checks=(*TABLE2_CHECKS, "gold_ties"),
        gates=TABLE2_GATES,
        min_units=4,
        min_seeds=2,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="Pearson {value:.2f} [{low:.2f}, {high:.2f}], n = {n} RMs, permutation p {p:.3f}",
    ),
    Claim(
        key="variance_and_accuracy_beats_accuracy",
        text="over the mixes, variance & accuracy predicts the r_G increase better than any "
        "accuracy alone",
        source="Table 2",
        stage="sec41_report",
        statistic="Pearson(variance & accuracy, r_G increase) minus the largest Pearson of an "
        "accuracy measure (on-policy tie rule and untied, off-policy, their mean), over the "
        "mix RMs",
        unit="RMs",
        test=f"{TWO_LEVEL} of the difference above $0$: reproduced; below $0$: not reproduced",
        checks=("variance_span", "offpolicy_trend", "onpolicy_accuracy", "gold_ties"),
        gates=TABLE2_GATES,
        min_units=4,
        min_seeds=2,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="Pearson difference {value:.2f} [{low:.2f}, {high:.2f}], n = {n} RMs",
    ),
    # ---- the controlled family (beyond the paper)
    Claim(
        key="variance_raises_increase_at_fixed_accuracy",
        text="at fixed accuracy, more reward variance teaches faster (controlled family)",
        source="beyond the paper",
        stage="sec41_report",
        statistic="variance coefficient $b_v$ of the least-squares plane r_G increase "
        "$\\approx b_0 + b_v \\cdot$ variance $+ b_a \\cdot$ accuracy over the family's runs at "
        "the Table 2 epoch",
        unit="family RMs",
        test=f"{TWO_LEVEL} above $0$: reproduced; below $0$: not reproduced",
        checks=("family_accuracy", "family_variance", "family_variance_span"),
        gates=("leave_one_rm_out",),
        min_units=4,
        min_seeds=2,
        paper=False,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="variance coefficient {value:.2f} [{low:.2f}, {high:.2f}], n = {n} RMs",
    ),
    Claim(
        key="less_accurate_beats_more_accurate",
        text="accuracy alone does not order RMs: the noisiest uncompressed family member beats "
        "the perfectly accurate, most compressed one",
        source="beyond the paper",
        stage="sec41_report",
        statistic="seed-paired difference of r_G increases, noisiest uncompressed minus "
        "exact most compressed family member, at the Table 2 epoch",
        unit="seeds",
        test=f"{PAIRED} above $0$: reproduced; below $0$: not reproduced",
        checks=("family_accuracy", "family_variance", "family_variance_span"),
        min_units=3,
        paper=False,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="noisiest minus most compressed {value:.3f} [{low:.3f}, {high:.3f}], {n} seeds",
    ),
    Claim(
        key="rankings_survive_normalization",
        text="Table 2's variance statistics survive another normalisation",
        source="Table 9",
        stage="alt_normalization",
        statistic="the Table 2 statistics of reward variance and of variance & accuracy (proxy "
        "and r_G increase, Pearson and Spearman: eight in all) over the mix RMs, under both "
        "normalisations on the seeds both ran",
        unit="RMs",
        test=f"a statistic is kept when the alternative's {TWO_LEVEL} lies on the standard "
        "value's side of $0$, reversed when on the other side: all kept: reproduced; any "
        "reversed: not reproduced",
        kind=EVERY,
        checks=("variance_span",),
        min_units=4,
        min_seeds=2,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="kept {value:.0f} of {n_survival_statistics:d}, reversed "
        "{n_survival_reversed:d}, n = {n} RMs",
    ),
    # ---- Section 4.2
    Claim(
        key="best_rm_changes_across_policies",
        text="the best RM changes across policies",
        source="Section 4.2, Tables 10 to 12",
        stage="sec42_report",
        statistic="F of the policy x RM interaction in a two-way ANOVA of the RLOO r_G "
        "increases (seeds as replicates)",
        unit="policies",
        test="interaction $p < 0.05$ and the policies' best RMs differ: reproduced; one RM "
        "best for every policy and ahead of its runner-up on each (Welch $95\\,\\%$ interval "
        "above $0$): not reproduced",
        kind=TEST,
        checks=("sec42_variance_differs", "sec42_ordering_flip"),
        min_units=2,
        min_seeds=2,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="interaction F {value:.2f}, p {p:.3g}, {n} policies, "
        "{n_distinct_best_rms:d} distinct best RM(s)",
    ),
    Claim(
        key="report_ranking_predicts_rloo",
        text="`rmteacher report`'s ranking predicts RLOO's, better than any trivial predictor",
        source="beyond the paper, in the Section 4.2 setting",
        stage="sec42_report",
        statistic="mean over policies of Spearman(predicted ranking, mean realised r_G "
        "increase) over the policy's RMs, minus the same for the best trivial predictor "
        "(reward variance alone, untied on-policy accuracy alone, trained-on-this-world's-"
        "preferences indicator)",
        unit="RMs",
        test=f"{TWO_LEVEL.replace('RMs drawn', 'RMs drawn jointly for every policy')} of the "
        "difference above $0$ and the mean Spearman above the $95$th percentile of a random "
        "ranking's: reproduced; the difference's interval below $0$: not reproduced",
        min_units=4,
        min_seeds=2,
        paper=False,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="report minus best trivial predictor ({report_ranking_predicts_rloo_baseline:s})"
        " {value:.2f} [{low:.2f}, {high:.2f}]; mean Spearman "
        "{report_ranking_predicts_rloo_spearman:.2f} (random ranking's 95th percentile "
        "{random_ranking_q95:.2f}); n = {n} RMs; top-1 {report_top1_hits:d} of "
        "{n_policies:d} with {report_top1_distinct:d} distinct best RM(s)",
    ),
    Claim(
        key="variance_and_accuracy_orders_rms",
        text="variance & accuracy orders each policy's RMs, better than any trivial predictor",
        source="Section 4.2, with Table 2's combined measure",
        stage="sec42_report",
        statistic="as report_ranking_predicts_rloo, with variance & accuracy as the predictor",
        unit="RMs",
        test=f"{TWO_LEVEL.replace('RMs drawn', 'RMs drawn jointly for every policy')} of the "
        "difference above $0$ and the mean Spearman above the $95$th percentile of a random "
        "ranking's: reproduced; the difference's interval below $0$: not reproduced",
        min_units=4,
        min_seeds=2,
        duplicate_of="report_ranking_predicts_rloo",
        fixed=REGISTERED,
        registered=REVISED,
        evidence="minus best trivial predictor "
        "({variance_and_accuracy_orders_rms_baseline:s}) {value:.2f} [{low:.2f}, {high:.2f}]; "
        "mean Spearman {variance_and_accuracy_orders_rms_spearman:.2f}; n = {n} RMs",
    ),
    Claim(
        key="adam_undoes_uniform_scaling",
        text="Adam undoes a uniform reward scale, SGD does not (consistency check)",
        source="Section 5.1, remark",
        stage="reward_scaling",
        statistic="per seed, |proxy increase at the largest scale minus at the smallest|, Adam "
        "against SGD",
        unit="seeds",
        test="Adam's effect smaller than SGD's on every seed: reproduced; larger on every seed: "
        "not reproduced",
        kind=EVERY,
        min_units=2,
        paper=False,
        fixed=REGISTERED,
        registered=REVISED,
        evidence="scale effect Adam {adam_scale_effect:.3f}, SGD {sgd_scale_effect:.3f}; "
        "smaller on {value:.0f} of {n} seeds",
    ),
)

BY_KEY = {c.key: c for c in CLAIMS}
assert len(BY_KEY) == len(CLAIMS), "claim keys must be unique"
assert all(c.kind in (INTERVAL, TEST, EXACT, EVERY) for c in CLAIMS)


def claim(key: str) -> Claim:
    """The registered claim `key` (KeyError naming the registry otherwise)."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"claim '{key}' is not in rmteacher.verdicts.claims.CLAIMS") from None


def of_stage(stage: str) -> list[Claim]:
    return [c for c in CLAIMS if c.stage == stage]


def registry_hash() -> str:
    """Hash of every claim's key and rule: written into every run's outcomes."""
    text = "\n".join(f"{c.key}:{c.rule_hash()}" for c in CLAIMS)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
