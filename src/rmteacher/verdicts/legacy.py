"""The rules as they were before each recorded deviation, kept so that every run can say what
the old rule gives on today's data (the Deviations page glues these). Each function takes the
statistics its rule read and returns the verdict it would have given; nothing here decides a
claim any more."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rmteacher.verdicts.rules import (
    NOT_REPRODUCED,
    REPRODUCED,
    UNDECIDED,
    Evidence,
    interval_outcome,
)

FIRST_WORLD_ACCURACIES = ("onpolicy_accuracy", "offpolicy_accuracy", "accuracy_mean")
ACCURACIES = (
    "onpolicy_accuracy",
    "onpolicy_accuracy_untied",
    "offpolicy_accuracy",
    "accuracy_mean",
)


def holds(value: bool) -> str:
    """A point rule's verdict (the first world's rules gave true / false)."""
    return REPRODUCED if value else NOT_REPRODUCED


def first_world_variance_predicts_proxy(corr: pd.DataFrame) -> str:
    """D1's old rule: Spearman(variance, proxy increase) > 0.5 and Pearson at least the largest
    Pearson of an accuracy measure (on-policy, off-policy, their mean), point values. `corr`:
    Table 2 as `correlation_table` gives it, over the RM set the rule is applied to."""
    accuracies = [a for a in FIRST_WORLD_ACCURACIES if a in corr.index]
    return holds(
        corr.loc["reward_variance", "proxy_spearman"] > 0.5
        and corr.loc["reward_variance", "proxy_pearson"]
        >= corr.loc[accuracies, "proxy_pearson"].max()
    )


def first_world_variance_and_accuracy(corr: pd.DataFrame) -> str:
    """D2's old rule: Pearson(variance & acc., r_G increase) above every accuracy measure's."""
    accuracies = [a for a in FIRST_WORLD_ACCURACIES if a in corr.index]
    return holds(
        corr.loc["variance_and_accuracy", "gold_pearson"]
        > corr.loc[accuracies, "gold_pearson"].max()
    )


def first_world_perfect_slowest(final: pd.DataFrame, mixes: Sequence[str]) -> str:
    """D3's old rule: the perfect RM's mean r_G increase at the last evaluation is below every
    mix's. `final`: one row per run (rm, gold_increase) at its last evaluation."""
    means = final.groupby("rm").gold_increase.mean()
    return holds(means["perfect"] < means[list(mixes)].min())


def first_world_proxy_beats_gold(early: pd.DataFrame, mixes: Sequence[str]) -> str:
    """D4's old rule: the best mix's mean r_G increase at the early point is above r_G's own."""
    means = early.groupby("rm").gold_increase.mean()
    return holds(means[list(mixes)].max() > means["gold"])


def first_world_survival(standard: pd.DataFrame, alternative: pd.DataFrame) -> str:
    """D5's old rule: the Pearson correlations of reward variance and of variance & accuracy
    with both increases have the same sign under both normalisations (point values)."""
    same = [
        np.sign(standard.loc[p, c]) == np.sign(alternative.loc[p, c])
        for p in ("reward_variance", "variance_and_accuracy")
        for c in ("proxy_pearson", "gold_pearson")
    ]
    return holds(all(same))


def seed_bootstrap_correlation(draws: np.ndarray) -> tuple[str, float, float]:
    """D6's old rule for a correlation: the 95 % interval of seed-only bootstrap draws (each
    RM's seeds resampled, the RMs fixed) lies above 0."""
    draws = np.asarray(draws, dtype=float)
    if not np.isfinite(draws).any():
        return UNDECIDED, float("nan"), float("nan")
    low, high = np.nanquantile(draws, [0.025, 0.975])
    return interval_outcome(low, high), float(low), float(high)


def seed_bootstrap_difference(combined: np.ndarray, accuracies: np.ndarray):
    """D6's old rule for 'variance & accuracy beats accuracy': the seed-only bootstrap interval
    of corr(variance & acc.) - max over accuracies of corr(accuracy) lies above 0.
    `accuracies`: [measures, draws]."""
    accuracies = np.asarray(accuracies, dtype=float)
    best = np.full(accuracies.shape[1], np.nan)
    defined = np.isfinite(accuracies).any(axis=0)
    best[defined] = np.nanmax(accuracies[:, defined], axis=0)
    return seed_bootstrap_correlation(combined - best)


def ungated(evidence: Evidence | None) -> str:
    """D7, D10, D11: the same test, read without manipulation checks, unit minimums or gates
    (an undefined interval read as undecided)."""
    return UNDECIDED if evidence is None else evidence.outcome


def kept_survival(
    signs: pd.DataFrame, properties: Sequence[str] = ("reward_variance", "variance_and_accuracy")
) -> str:
    """D5's new rule, D8's old one: every statistic of `properties` kept (seed-bootstrap
    interval on the standard value's side): reproduced; any reversed: not reproduced."""
    rows = signs[signs.property.isin(properties)]
    if rows.empty:
        return UNDECIDED
    if rows.reversed.any():
        return NOT_REPRODUCED
    return REPRODUCED if rows.kept.all() else UNDECIDED


def mean_of_bounds(per_policy: pd.DataFrame) -> tuple[str, float, float, float]:
    """D9's old rule: the mean over policies of the per-policy seed-bootstrap bounds of a
    Spearman correlation lies above 0. `per_policy`: spearman, low, high per policy."""
    if per_policy.empty:
        return UNDECIDED, float("nan"), float("nan"), float("nan")
    low, high = float(per_policy.low.mean()), float(per_policy.high.mean())
    return interval_outcome(low, high), float(per_policy.spearman.mean()), low, high
