"""Time the pipeline on this machine and print a markdown table (a benchmark, not a test).

Runs in temporary copies of the repository so the workspace is untouched: every stage of the
default and tiny profiles (the committed base LM is reused, as on a fresh clone), a no-op
`dvc repro`, the book build, and each profile end to end. `--pretrain` also times
`dvc unfreeze lm_pretrain && dvc repro lm_pretrain` (about half an hour on 2 cores).
`--log FILE` only tabulates the
stage times of an existing `dvc repro` / `make repro` log (no run).
Usage: python benchmarks/pipeline_timing.py [--profiles default tiny] [--log FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {
    "theory notebooks, total": "<= 60 s (default profile)",
    "no-op dvc repro": "<= 5 s",
    "book build": "<= 60 s",
    "tiny profile end to end": "<= 300 s",
    "Section 4.1 stages, total": "<= 2100 s (default profile, base LM and r_G present)",
    "Section 4.2 and variant stages, total": "<= 1800 s (default profile)",
    "all stages, total": "<= 3600 s (default profile)",
    "stage lm_pretrain (forced)": "<= 1800 s",
}
SEC41 = ("lm_sft", "rm_train", "rm_eval", "rloo_lr", "rloo_main", "rloo_family", "rloo_noclip")
SEC41 += ("rloo", "sec41_report")
SEC42 = ("sec42_policies", "sec42_eval", "sec42_pg_rloo", "sec42_pg_grpo", "sec42_pg")
SEC42 += ("sec42_report",)
VARIANTS = ("alt_normalization", "reward_scaling")


def base(stage: str) -> str:
    """A matrix stage's name without its item (rloo_main@3 -> rloo_main)."""
    return stage.split("@")[0]


GROUPS = {
    "theory notebooks, total": lambda stage: stage.startswith("theory_"),
    "Section 4.1 stages, total": lambda stage: base(stage) in SEC41,
    "Section 4.2 stages, total": lambda stage: base(stage) in SEC42,
    "variant stages, total": lambda stage: base(stage) in VARIANTS,
    "Section 4.2 and variant stages, total": lambda stage: base(stage) in SEC42 + VARIANTS,
    "all stages, total": lambda stage: True,
}


def copy_repo(dest: Path) -> None:
    names = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    ).stdout.split()
    for name in names:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes((ROOT / name).read_bytes())


def timed(cmd: str, cwd: Path, env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, shell=True, text=True, capture_output=True)
    if out.returncode:
        sys.exit(f"benchmark command failed: {cmd}\n{out.stderr[-2000:]}")
    return time.perf_counter() - start, out.stdout


def stage_rows(profile: str, log: str) -> list[tuple[str, str, float]]:
    """One row per `stage X: done in T s` line of a repro log, then the per-group totals."""
    times = {s: float(t) for s, t in re.findall(r"stage (\w+): done in ([\d.]+) s", log)}
    rows = [(profile, f"stage {stage}", seconds) for stage, seconds in times.items()]
    for name, member in GROUPS.items():
        picked = [seconds for stage, seconds in times.items() if member(stage)]
        if picked:
            rows.append((profile, name, sum(picked)))
    return rows


def profile_rows(profile: str, env: dict, pretrain: bool) -> list[tuple[str, str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        copy_repo(repo)
        venv = Path(sys.prefix)
        total, log = timed(
            f"make -o {venv}/.installed repro PROFILE={profile} VENV={venv}", repo, env
        )
        rows = stage_rows(profile, log)
        rows.append((profile, "book build", timed("dvc repro -f book", repo, env)[0]))
        rows.append((profile, "no-op dvc repro", timed("dvc repro", repo, env)[0]))
        rows.append((profile, f"{profile} profile end to end", total))
        if pretrain:
            seconds = timed("dvc repro -f -s lm_pretrain", repo, env)[0]
            rows.append((profile, "stage lm_pretrain (forced)", seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["default", "tiny"])
    parser.add_argument("--pretrain", action="store_true", help="also time base-LM pretraining")
    parser.add_argument("--log", type=Path, help="tabulate this repro log instead of running")
    args = parser.parse_args()
    if args.log:
        print_table(stage_rows(args.profiles[0], args.log.read_text()))
        return
    env = dict(
        os.environ, PATH=f"{Path(sys.prefix) / 'bin'}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1"
    )
    rows = [
        row
        for profile in args.profiles
        for row in profile_rows(profile, env, args.pretrain and profile == args.profiles[0])
    ]
    print_table(rows)


def print_table(rows: list[tuple[str, str, float]]) -> None:
    print(f"| profile | what | wall time (s) | goal |\n|---|---|---|---|  ({os.cpu_count()} CPUs)")
    for profile, name, seconds in rows:
        print(f"| {profile} | {name} | {seconds:.1f} | {GOALS.get(name, '')} |")


if __name__ == "__main__":
    main()
