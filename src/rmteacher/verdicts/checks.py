"""Manipulation checks by name, read from the metrics of the stage that measures them before any
policy gradient. `rm_eval` computes ten against thresholds in its params (`check_<name>`:
pass or fail, `check_<name>_value`); a few more are read here from the numbers `rm_eval` and
`sec42_eval` report, with the requirement stated in the check itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """A manipulation check: its `name`, the `stage` whose metrics hold it, `what` it asks, and
    `passed(metrics)` (True / False, or None when the metrics lack what it reads)."""

    name: str
    stage: str
    what: str
    passed: Callable[[Mapping], bool | None]
    value: Callable[[Mapping], float | None]


def _stage_check(name: str) -> Callable[[Mapping], bool | None]:
    def passed(metrics: Mapping) -> bool | None:
        value = metrics.get(f"check_{name}")
        return None if value is None else bool(value)

    return passed


def _stage_value(name: str) -> Callable[[Mapping], float | None]:
    return lambda metrics: metrics.get(f"check_{name}_value")


RM_EVAL_CHECKS = {
    "gold_variance": "r_G's reward variance under the initial policy lies in rm_eval's range",
    "gold_ties": "r_G ties few on-policy sample pairs",
    "pairs": "every mix has the same number of preference pairs, at least rm_eval's minimum",
    "own_accuracy": "every mix learned its own training distribution (held-out untied accuracy)",
    "variance_span": "the mixes' reward variances differ (largest / smallest at least the "
    "threshold)",
    "offpolicy_trend": "off-policy share orders the mixes' off-policy accuracy (Spearman at "
    "least the threshold)",
    "family_accuracy": "compression leaves the family's accuracy unchanged",
    "family_variance": "rank noise leaves the family's reward variance nearly unchanged",
    "onpolicy_accuracy": "every mix ranks the initial policy's own samples better than chance "
    "(lowest on-policy untied accuracy at least the threshold)",
    "family_variance_span": "the family's prompt scales move reward variance at fixed accuracy "
    "(largest / smallest at one rank-noise level at least the threshold)",
}

# Section 4.2's named checks, written by sec42_eval as `check_<name>` with `_value`.
SEC42_EVAL_CHECKS = {
    "ordering_flip": "two RMs' reward-variance order flips between two policies by more than "
    "the threshold times its paired-bootstrap noise (value: the strongest flip)",
}


def _mix_variances(metrics: Mapping) -> list[float]:
    pattern = re.compile(r"^rm_onpolicy_\d+_reward_variance$")
    return [v for k, v in metrics.items() if pattern.match(k) and v is not None]


def _perfect_low_variance(metrics: Mapping) -> bool | None:
    mixes, perfect = _mix_variances(metrics), metrics.get("perfect_reward_variance")
    if not mixes or perfect is None:
        return None
    return bool(perfect < min(mixes))


def _perfect_variance_ratio(metrics: Mapping) -> float | None:
    mixes, perfect = _mix_variances(metrics), metrics.get("perfect_reward_variance")
    return None if not mixes or perfect is None else float(perfect / min(mixes))


def _perfect_accurate(metrics: Mapping) -> bool | None:
    values = [metrics.get(f"perfect_{c}") for c in ("onpolicy_accuracy", "offpolicy_accuracy")]
    return None if None in values else bool(min(values) == 1.0)


def _variance_differs(metrics: Mapping) -> bool | None:
    differs, total = metrics.get("rms_whose_variance_differs"), metrics.get("n_reward_models")
    return None if differs is None or not total else bool(differs >= total / 2)


def _variance_differs_share(metrics: Mapping) -> float | None:
    differs, total = metrics.get("rms_whose_variance_differs"), metrics.get("n_reward_models")
    return None if differs is None or not total else float(differs / total)


CHECKS: dict[str, Check] = {
    **{
        name: Check(name, "rm_eval", what, _stage_check(name), _stage_value(name))
        for name, what in RM_EVAL_CHECKS.items()
    },
    "perfect_low_variance": Check(
        "perfect_low_variance",
        "rm_eval",
        "the perfect RM's reward variance lies below every mix's (value: its ratio to the "
        "smallest)",
        _perfect_low_variance,
        _perfect_variance_ratio,
    ),
    "perfect_accurate": Check(
        "perfect_accurate",
        "rm_eval",
        "the perfect RM's on- and off-policy accuracy (tie rule) are 1",
        _perfect_accurate,
        lambda m: m.get("perfect_onpolicy_accuracy"),
    ),
    **{
        f"sec42_{name}": Check(
            f"sec42_{name}", "sec42_eval", what, _stage_check(name), _stage_value(name)
        )
        for name, what in SEC42_EVAL_CHECKS.items()
    },
    "sec42_variance_differs": Check(
        "sec42_variance_differs",
        "sec42_eval",
        "at least half of the RMs' reward variances differ across policies by more than their "
        "noise (value: the share that do)",
        _variance_differs,
        _variance_differs_share,
    ),
}


def evaluate(metrics_by_stage: Mapping[str, Mapping]) -> dict[str, bool | None]:
    """{check name: passed} from each checking stage's metrics (None where it did not run)."""
    return {
        name: (
            check.passed(metrics_by_stage[check.stage]) if check.stage in metrics_by_stage else None
        )
        for name, check in CHECKS.items()
    }


def table(metrics_by_stage: Mapping[str, Mapping], claims) -> list[dict]:
    """One row per check: name, stage, what, value, passed, and the claims that need it."""
    results = evaluate(metrics_by_stage)
    rows = []
    for name, check in CHECKS.items():
        metrics = metrics_by_stage.get(check.stage, {})
        rows.append(
            {
                "check": name,
                "stage": check.stage,
                "what": check.what,
                "value": check.value(metrics) if metrics else None,
                "passed": results[name],
                "claims": ", ".join(c.key for c in claims if name in c.checks),
            }
        )
    return rows
