"""Inputs of a reward-model report, checked before any model is loaded: the prompt file, the reward
specs and their table names, the policy and the sampling settings. Every problem is one line."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from rmteacher.core.hf import check_policy_source
from rmteacher.rewards.registry import SCORERS, check_reward_spec, names_a_function

GOLD = "gold"  # the ground truth's row name, as in metrics/rm_table.csv
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ReportInputError(ValueError):
    """A bad report input, detected before sampling or scoring."""


def read_prompts(path: str | Path) -> list[str]:
    """Prompts x from a text file (one per line) or a JSONL file (a "prompt" field per line, for
    `.jsonl`/`.json` files); blank lines are skipped, order is kept."""
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"--prompts: no such file {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ReportInputError(f"--prompts: cannot read {path} ({type(err).__name__})") from None
    jsonl = path.suffix.lower() in (".jsonl", ".json")
    prompts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        prompts.append(_jsonl_prompt(line, path, number) if jsonl else line.strip())
    if not prompts:
        raise ReportInputError(f"--prompts: {path} contains no prompts")
    return prompts


def _jsonl_prompt(line: str, path: Path, number: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise ReportInputError(f"--prompts: {path}:{number} is not valid JSON") from None
    prompt = record.get("prompt") if isinstance(record, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise ReportInputError(f'--prompts: {path}:{number} has no non-empty "prompt" string')
    return prompt.strip()


def default_reward_name(spec: str) -> str:
    """Table name of a reward spec: the scorer name, the function of `module:function`, or the last
    path (or Hub id) component; characters unsafe in file names become '_'."""
    if spec in SCORERS:
        name = spec
    elif names_a_function(spec):
        name = spec.rpartition(":")[2]
    else:
        name = Path(spec).resolve().name if Path(spec).exists() else spec.rstrip("/")
        name = name.rpartition("/")[2]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "rm"


def name_reward_specs(args: Iterable[str], what: str = "--reward-model") -> dict[str, str]:
    """{name: spec} from command-line values `SPEC` or `NAME=SPEC` (an existing path is always a
    spec). Duplicate names, and the reserved name 'gold', are errors."""
    named: dict[str, str] = {}
    for arg in args:
        name, sep, spec = arg.partition("=")
        if not sep or Path(arg).exists() or not NAME_PATTERN.fullmatch(name):
            name, spec = default_reward_name(arg), arg
        if name == GOLD:
            raise ReportInputError(
                f"{what}: the name '{GOLD}' is reserved for --gold; rename it with NAME={arg}"
            )
        if name in named:
            raise ReportInputError(
                f"{what}: duplicate reward-model name '{name}' ({named[name]} "
                f"and {spec}); give distinct names with NAME=SPEC"
            )
        named[name] = spec
    if not named:
        raise ReportInputError(f"{what}: give at least one reward model")
    return named


def check_report_inputs(
    policy: str,
    reward_specs: dict[str, object],
    gold: object | None,
    prompts: list[str],
    n_samples: int,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
) -> None:
    """Raise ReportInputError (one line) on any input that would fail later; loads nothing.
    Rewards given as objects rather than spec strings (already loaded) are not checked."""
    if not isinstance(n_samples, int) or n_samples < 2:
        raise ReportInputError(
            f"--samples: expected an integer >= 2 (accuracy and reward variance "
            f"need two samples per prompt), got {n_samples}"
        )
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ReportInputError(f"--max-new-tokens: expected an integer >= 1, got {max_new_tokens}")
    if not temperature > 0:
        raise ReportInputError(f"--temperature: expected a float > 0, got {temperature}")
    if not prompts:
        raise ReportInputError("--prompts: no prompts given")
    if not reward_specs:
        raise ReportInputError("--reward-model: give at least one reward model")
    if gold is not None and GOLD in reward_specs:
        raise ReportInputError(f"--reward-model: the name '{GOLD}' is reserved for --gold")
    try:
        check_policy_source(policy, "--policy")
        for spec in reward_specs.values():
            if isinstance(spec, str):
                check_reward_spec(spec, "--reward-model")
        if isinstance(gold, str):
            check_reward_spec(gold, "--gold")
    except ValueError as err:
        raise ReportInputError(str(err)) from None


def check_out_dir(out_dir: str | Path) -> None:
    """Raise ReportInputError (one line) unless `out_dir` is, or can be created as, a writable
    directory; creates nothing, so a bad --out fails before any sampling."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportInputError(f"--out: {out_dir} exists and is not a directory")
    existing = out_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ReportInputError(f"--out: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ReportInputError(f"--out: {existing} is not writable")
