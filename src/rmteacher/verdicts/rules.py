"""What a claim is, what evidence for it looks like, and how a verdict follows from both.

Five verdicts:

* **reproduced**: the claim's test passed, every manipulation check it needs passed, there are
  enough units for an interval, the interval is a real one (finite, nonzero width) and every
  robustness gate holds;
* **not reproduced**: the test decided against the claim;
* **undecided**: the test could not tell, or it passed but a robustness gate failed (or could not
  be evaluated), or its interval has zero width;
* **not testable**: a manipulation check the claim needs failed (the outcome test is then not
  interpreted, as in a Registered Report), or there are too few units for an interval (one seed,
  fewer RMs than the rule needs), or the interval is undefined;
* **not run**: the deciding stage has no verdict under this rule (it did not run, or it decided
  under an older rule: rerun it).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

REPRODUCED, NOT_REPRODUCED, UNDECIDED = "reproduced", "not reproduced", "undecided"
NOT_TESTABLE, NOT_RUN = "not testable", "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, UNDECIDED, NOT_TESTABLE, NOT_RUN)

# how each kind of test reads its evidence
INTERVAL = "interval"  # the interval decides (above 0 / below 0 / straddles)
TEST = "test"  # a p-value decides; no interval
EXACT = "exact"  # an exact computation holds or not (theory)
EVERY = "every unit"  # the same sign on every unit (seeds): no interval, no p


@dataclass(frozen=True)
class Claim:
    """One claim, declared once. The rule is everything that decides the verdict: `statistic`,
    `unit`, `test`, `checks`, `gates`, `min_units`, `min_seeds`, `alpha`, `level`, `kind`; its
    hash (`rule_hash`) is committed, and a change needs a deviation entry
    (`rmteacher.verdicts.deviations`). `text`, `source` and `evidence` only describe it.

    `unit`: what the interval resamples or the test permutes (RMs, seeds, policies x RMs);
    `min_units`: fewest units of analysis (e.g. RMs) for an interval; `min_seeds`: fewest seeds
    per unit; `checks`: manipulation checks by name (`rmteacher.verdicts.checks`); `gates`:
    robustness gates ('leave_one_rm_out', 'other_normalisation') that a 'reproduced' must
    survive; `paper`: whether this is the paper's claim (of a pair read per epoch and at matched
    KL, one is); `pair`: the other reading's key; `reading`: 'per epoch' or 'at matched KL';
    `duplicate_of`: a claim whose statistic this one equals while the stage says so (counted
    once); `fixed`: the date the rule was fixed; `registered`: before or after results were
    seen; `evidence`: format of the statistic for the outcome table, over the stage's metrics."""

    key: str
    text: str
    source: str
    stage: str
    statistic: str
    unit: str
    test: str
    kind: str = INTERVAL
    checks: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()
    min_units: int = 0
    min_seeds: int = 0
    alpha: float = 0.05
    level: float = 0.95
    paper: bool = True
    pair: str = ""
    reading: str = ""
    duplicate_of: str = ""
    fixed: str = ""
    registered: str = ""
    evidence: str = ""

    def rule(self) -> dict:
        """The fields that decide the verdict (what `rule_hash` covers)."""
        return {
            "statistic": self.statistic,
            "unit": self.unit,
            "test": self.test,
            "kind": self.kind,
            "checks": list(self.checks),
            "gates": list(self.gates),
            "min_units": self.min_units,
            "min_seeds": self.min_seeds,
            "alpha": self.alpha,
            "level": self.level,
        }

    def rule_hash(self) -> str:
        """First 12 hex digits of the SHA-256 of the rule (canonical JSON)."""
        text = json.dumps(self.rule(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Evidence:
    """What a claim's test found. `value` and its interval (`low`, `high`; NaN for a TEST-kind
    claim); `n`: units of analysis; `seeds`: fewest seeds of any unit; `p`: the test's p-value
    where it has one; `outcome`: the test's own verdict (REPRODUCED / NOT_REPRODUCED /
    UNDECIDED) before checks and gates; `gates`: {gate: True (holds) / False (fails) / None
    (could not be evaluated)}; `gate_detail`: {gate: one phrase with its numbers}; `detail`:
    one phrase on the test's numbers (for the reason sentence)."""

    value: float
    low: float = float("nan")
    high: float = float("nan")
    n: int = 0
    seeds: int = 0
    p: float = float("nan")
    outcome: str = UNDECIDED
    gates: dict = field(default_factory=dict)
    gate_detail: dict = field(default_factory=dict)
    detail: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Verdict:
    """A claim's verdict with what it rests on; `metrics()` is the flat form the stages write
    (`claim_<key>`, `_value`, `_low`, `_high`, `_n`, `_seeds`, `_p`, `_checks_failed`,
    `_gates_failed`, `_rule_hash`) and `reason` the one sentence the book and README show."""

    key: str
    verdict: str
    value: float
    low: float
    high: float
    n: int
    seeds: int
    p: float
    unit: str
    checks: dict
    gates: dict
    reason: str
    rule_hash: str
    gate_detail: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def metrics(self) -> dict:
        """The flat metrics (numbers of `extra` as `claim_<key>_<name>`)."""
        k = f"claim_{self.key}"
        extra = {
            f"{k}_{name}": (_num(v) if not isinstance(v, str) else v)
            for name, v in self.extra.items()
            if isinstance(v, int | float | str)
        }
        return extra | {
            k: self.verdict,
            f"{k}_value": _num(self.value),
            f"{k}_low": _num(self.low),
            f"{k}_high": _num(self.high),
            f"{k}_n": int(self.n),
            f"{k}_seeds": int(self.seeds),
            f"{k}_p": _num(self.p),
            f"{k}_checks_failed": ",".join(c for c, ok in self.checks.items() if ok is False),
            f"{k}_gates_failed": ",".join(g for g, ok in self.gates.items() if ok is not True),
            f"{k}_rule_hash": self.rule_hash,
        }

    def texts(self) -> dict:
        """Glue-ready sentences for the book's verdict box: `_reason`, `_checks`, `_gates`."""
        k = f"claim_{self.key}"
        return {
            f"{k}_reason": self.reason,
            f"{k}_checks": checks_text(self.checks),
            f"{k}_gates": gates_text(self.gates, self.gate_detail),
        }

    def as_dict(self) -> dict:
        return asdict(self)


def _num(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return value


def finite(*values) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def interval_outcome(low: float, high: float) -> str:
    """REPRODUCED if the interval lies above 0, NOT_REPRODUCED if below, else UNDECIDED (an
    undefined interval is UNDECIDED here; `decide` makes it NOT_TESTABLE)."""
    if not finite(low, high):
        return UNDECIDED
    return REPRODUCED if low > 0 else NOT_REPRODUCED if high < 0 else UNDECIDED


def count_text(n: int, unit: str) -> str:
    """'only one seed', '3 RMs', 'only one policy'."""
    if n != 1:
        return f"{n} {unit}"
    singular = (
        unit[:-3] + "y" if unit.endswith("ies") else unit[:-1] if unit.endswith("s") else unit
    )
    return f"only one {singular}"


def checks_text(checks: Mapping[str, bool | None]) -> str:
    if not checks:
        return "none needed"
    word = {True: "passes", False: "fails", None: "not run"}
    return "; ".join(f"{name} {word[ok]}" for name, ok in checks.items())


GATE_NAMES = {
    "leave_one_rm_out": "leave one RM out",
    "other_normalisation": "other normalisation",
}


def gates_text(gates: Mapping[str, bool | None], detail: Mapping[str, str] | None = None) -> str:
    if not gates:
        return "none apply"
    word = {True: "holds", False: "fails", None: "not evaluated"}
    detail = detail or {}
    parts = []
    for name, ok in gates.items():
        extra = f" ({detail[name]})" if detail.get(name) else ""
        parts.append(f"{GATE_NAMES.get(name, name)} {word[ok]}{extra}")
    return "; ".join(parts)


def decide(claim: Claim, evidence: Evidence | None, checks: Mapping[str, bool | None]) -> Verdict:
    """The verdict of `claim` from its `evidence` and the results of the manipulation checks
    (by name; a check missing from `checks` counts as not run). Order: checks, then units, then
    the interval, then the test, then the gates (see the module docstring)."""
    needed = {name: checks.get(name) for name in claim.checks}
    if evidence is None:
        evidence = Evidence(float("nan"))
    gates = {g: evidence.gates.get(g) for g in claim.gates}

    def verdict(v: str, reason: str) -> Verdict:
        return Verdict(
            claim.key,
            v,
            evidence.value,
            evidence.low,
            evidence.high,
            evidence.n,
            evidence.seeds,
            evidence.p,
            claim.unit,
            needed,
            gates,
            reason,
            claim.rule_hash(),
            {g: evidence.gate_detail.get(g, "") for g in claim.gates},
            dict(evidence.extra),
        )

    failed = [name for name, ok in needed.items() if ok is False]
    missing = [name for name, ok in needed.items() if ok is None]
    if failed:
        return verdict(
            NOT_TESTABLE,
            f"the manipulation check{'s' if len(failed) > 1 else ''} "
            f"{', '.join(failed)} failed, so the outcome is not interpreted",
        )
    if missing:
        return verdict(NOT_TESTABLE, f"the manipulation check {', '.join(missing)} did not run")
    if claim.kind != EXACT and evidence.n < claim.min_units:
        return verdict(
            NOT_TESTABLE,
            f"{count_text(evidence.n, claim.unit)} where the rule needs at least "
            f"{claim.min_units} for an interval",
        )
    if claim.kind != EXACT and evidence.seeds < claim.min_seeds:
        seeds = count_text(evidence.seeds, "seeds")
        return verdict(
            NOT_TESTABLE,
            f"{seeds} per unit where the rule needs at least {claim.min_seeds}",
        )
    if claim.kind == INTERVAL and not finite(evidence.low, evidence.high):
        return verdict(NOT_TESTABLE, "the interval is undefined (NaN)")
    if claim.kind == TEST and not finite(evidence.p):
        return verdict(NOT_TESTABLE, "the test's p-value is undefined")
    if claim.kind == INTERVAL and evidence.high - evidence.low <= 0:
        return verdict(UNDECIDED, "the interval has zero width, which is no evidence")
    outcome = evidence.outcome
    detail = f" ({evidence.detail})" if evidence.detail else ""
    if outcome == REPRODUCED:
        broken = [g for g, ok in gates.items() if ok is not True]
        if broken:
            words = [
                f"{GATE_NAMES.get(g, g)} {'fails' if gates[g] is False else 'not evaluated'}"
                + (f" ({evidence.gate_detail[g]})" if evidence.gate_detail.get(g) else "")
                for g in broken
            ]
            return verdict(
                UNDECIDED,
                f"the test passes{detail} but the robustness gate {'; '.join(words)}",
            )
        return verdict(REPRODUCED, f"the test passes{detail}")
    if outcome == NOT_REPRODUCED:
        return verdict(NOT_REPRODUCED, f"the test decides against the claim{detail}")
    return verdict(UNDECIDED, f"the test cannot tell{detail}")
