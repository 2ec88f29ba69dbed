"""Did a rerun reproduce the committed results? `rmteacher verify` compares every number in
`metrics/` (the JSON metrics and the CSV tables) of the working tree with the same file at a git
revision (default HEAD), under a tolerance stated per kind of value:

* **exact**: counts, booleans, names and verdicts. A verdict (`claim_*`) that changes is always
  reported as a flipped verdict.
* **theory** (stages `theory_*`): exact computations, so only floating-point drift:
  |a - b| <= 1e-6 * max(|a|, |b|) + 1e-12.
* **language model, before policy gradient** (pretraining, r_G, SFT, RM training and evaluation,
  the Section 4.2 policies and their evaluation): sampling and training are seeded, so again only
  drift, which small models amplify a little: |a - b| <= 1e-3 * max(|a|, |b|) + 1e-3.
* **language model, policy gradient and the analyses of its runs**: RL amplifies drift in the
  last digits into run-level differences of the size of seed noise, so the tolerance comes from
  the run's own seed spread: half the width of the value's own interval when the stage reports
  one (`x_low`/`x_high` beside `x`, or `<claim>_low`/`_high` beside `<claim>_value`), else
  0.05 * max(|a|, |b|) + 0.02.

A metric present on one side only is reported as missing or new. A whole file missing on either
side, unreadable or unparseable is an `error:` line before the table (it cannot be compared, so
the run is `not verified`). The table lists every value outside its tolerance; the last line says
`reproduced`, `differs` or `not verified`.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rmteacher.core import paths

PRE_PG_STAGES = {
    "lm_pretrain",
    "lm_gold",
    "lm_sft",
    "rm_train",
    "rm_eval",
    "rm_table",
    "sec42_policies",
    "sec42_eval",
}
THEORY_TOL = (1e-6, 1e-12)
PRE_PG_TOL = (1e-3, 1e-3)
PG_TOL = (0.05, 0.02)


@dataclass(frozen=True)
class Difference:
    """One value outside its tolerance: where it is, both values, the tolerance and its kind."""

    source: str
    key: str
    committed: object
    current: object
    tolerance: float | None
    kind: str


def kind_of(source: str) -> str:
    """The tolerance class of a metrics file (`theory`, `pre_pg` or `pg`), by its stem."""
    stem = Path(source).stem
    if stem.startswith("theory_"):
        return "theory"
    return "pre_pg" if stem in PRE_PG_STAGES else "pg"


def _interval_half_width(values: dict, key: str) -> float | None:
    """Half the width of `key`'s own 95 % interval, if the same record carries one."""
    base = key[: -len("_value")] if key.endswith("_value") else key
    low, high = values.get(f"{base}_low"), values.get(f"{base}_high")
    if isinstance(low, int | float) and isinstance(high, int | float):
        if math.isfinite(low) and math.isfinite(high):
            return abs(high - low) / 2
    return None


def tolerance(kind: str, a: float, b: float, record: dict, key: str) -> float:
    """Largest |a - b| accepted for a float of this kind (see the module docstring)."""
    scale = max(abs(a), abs(b))
    if kind == "theory":
        return THEORY_TOL[0] * scale + THEORY_TOL[1]
    if kind == "pre_pg":
        return PRE_PG_TOL[0] * scale + PRE_PG_TOL[1]
    half = _interval_half_width(record, key)
    return half if half is not None else PG_TOL[0] * scale + PG_TOL[1]


def compare_records(
    source: str, committed: dict, current: dict, prefix: str = ""
) -> list[Difference]:
    """Differences between two flat {key: value} records of one metrics file."""
    kind = kind_of(source)
    out = []
    for key in sorted(set(committed) | set(current)):
        name = prefix + key
        if key not in current:
            out.append(Difference(source, name, committed[key], None, None, "missing"))
            continue
        if key not in committed:
            out.append(Difference(source, name, None, current[key], None, "new"))
            continue
        a, b = committed[key], current[key]
        if isinstance(a, float) or isinstance(b, float):
            if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
                if a != b:
                    out.append(Difference(source, name, a, b, 0.0, "exact"))
                continue
            if math.isnan(a) and math.isnan(b):
                continue
            tol = tolerance(kind, float(a), float(b), committed, key)
            if not abs(a - b) <= tol:
                out.append(Difference(source, name, a, b, tol, kind))
        elif a != b:
            verdict = key.startswith("claim_") and isinstance(a, str)
            out.append(Difference(source, name, a, b, 0.0, "verdict" if verdict else "exact"))
    return out


def _csv_records(text: str) -> dict[str, dict]:
    """A metrics CSV as {row key: {column: value}}, the row key built from its text columns."""
    import pandas as pd

    frame = pd.read_csv(io.StringIO(text))
    numeric = pd.api.types.is_numeric_dtype
    text_columns = [c for c in frame.columns if not numeric(frame[c]) and frame[c].dtype != bool]
    records = {}
    for _, row in frame.iterrows():
        key = "/".join(str(row[c]) for c in text_columns) or str(row.name)
        records[key] = {
            c: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
            for c, v in row.items()
            if c not in text_columns
        }
    return records


def compare_file(source: str, committed_text: str, current_text: str) -> list[Difference]:
    """Differences between two versions of one metrics file (JSON or CSV)."""
    if source.endswith(".json"):
        return compare_records(source, json.loads(committed_text), json.loads(current_text))
    old, new = _csv_records(committed_text), _csv_records(current_text)
    out = []
    for row in sorted(set(old) | set(new)):
        if row not in new or row not in old:
            kind = "missing" if row not in new else "new"
            out.append(Difference(source, row, old.get(row), new.get(row), None, kind))
            continue
        out.extend(compare_records(source, old[row], new[row], prefix=f"{row}: "))
    return out


def committed_text(root: Path, relative: str, revision: str) -> str | None:
    """The file at `revision`, or None if it is not tracked there."""
    result = subprocess.run(
        ["git", "show", f"{revision}:{relative}"], cwd=root, capture_output=True, text=True
    )
    return result.stdout if result.returncode == 0 else None


def committed_files(root: Path, revision: str) -> list[str]:
    """The metrics files (top level of metrics/, JSON and CSV) tracked at `revision`."""
    result = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{revision}:{paths.METRICS.as_posix()}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    names = result.stdout.split() if result.returncode == 0 else []
    return [f"{paths.METRICS.as_posix()}/{n}" for n in names if n.endswith((".json", ".csv"))]


def _parse_problem(relative: str, text: str) -> str | None:
    """Why a metrics file's text cannot be compared, or None when it parses."""
    try:
        if relative.endswith(".json"):
            if not isinstance(json.loads(text), dict):
                return "not a JSON object of metrics"
        else:
            _csv_records(text)
    except json.JSONDecodeError as err:
        return f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    except Exception as err:  # pandas' parser errors have no common base class
        return f"not a readable CSV table ({type(err).__name__}: {str(err).splitlines()[0]})"
    return None


def verify(root: Path, revision: str = "HEAD") -> tuple[list[Difference], list[str], int]:
    """(differences, problems, number of files compared) between metrics/ now and at
    `revision`. A problem is one line about a whole file: missing on either side, unreadable or
    unparseable; such a file is not compared value by value."""
    here = sorted((root / paths.METRICS).glob("*.json")) + sorted(
        (root / paths.METRICS).glob("*.csv")
    )
    present = {path.relative_to(root).as_posix(): path for path in here}
    committed = set(committed_files(root, revision))
    differences, problems, compared = [], [], 0
    for relative in sorted(committed - set(present)):
        problems.append(
            f"{relative}: missing here but committed at {revision} (a stage that was "
            "interrupted, failed or never ran?)"
        )
    for relative, path in present.items():
        if relative not in committed:
            problems.append(
                f"{relative}: not in {revision}, so there is nothing to compare it with"
            )
            continue
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{relative}: unreadable ({type(err).__name__})")
            continue
        old = committed_text(root, relative, revision) or ""
        bad = _parse_problem(relative, text)
        if bad is None and _parse_problem(relative, old) is not None:
            bad = f"the version at {revision} is {_parse_problem(relative, old)}"
        if bad is not None:
            problems.append(f"{relative}: {bad}")
            continue
        compared += 1
        differences.extend(compare_file(relative, old, text))
    return differences, problems, compared


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "—" if value is None else str(value)


def report(
    differences: list[Difference],
    compared: int,
    revision: str,
    problems: list[str] | tuple = (),
) -> str:
    """The file problems (one line each), the table of values outside tolerance and the final
    line: `reproduced` only when every file was compared and every value is within tolerance."""
    lines = [f"error: {problem}" for problem in problems]
    flipped = [d for d in differences if d.kind == "verdict"]
    if differences:
        lines.append("| file | value | committed | now | tolerance | kind |")
        lines.append("|---|---|---|---|---|---|")
        for d in sorted(differences, key=lambda d: (d.kind != "verdict", d.source, d.key)):
            tol = "—" if d.tolerance is None else f"{d.tolerance:.3g}"
            lines.append(
                f"| {d.source} | {d.key} | {_show(d.committed)} | {_show(d.current)} | {tol} "
                f"| {d.kind} |"
            )
    verdict = "not verified" if problems else ("differs" if differences else "reproduced")
    lines.append(
        f"{verdict}: {compared} metrics files compared with {revision}; "
        + (f"{len(problems)} file(s) missing or unreadable; " if problems else "")
        + f"{len(differences)} value(s) outside tolerance, {len(flipped)} verdict(s) flipped"
    )
    return "\n".join(lines)
