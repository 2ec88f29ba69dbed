"""What the DVC remote holds for the committed run, and how long a fresh clone takes to pull it
(a benchmark, not a test).

Inventory (no cache needed): every DVC-cached output of `dvc.lock` with its size and file count,
as DVC recorded them, grouped into the rows of the README table "What the remote holds".

Round trip (needs a complete checkout: the committed run's outputs in `.dvc/cache`): `dvc push`
of this checkout's committed `dvc.lock` to a fresh local directory remote (its size on disk is
the published cache), `git clone` of HEAD, `dvc remote modify --local storage url DIR` as the
README tells a user, then timed `dvc pull` and `make book`, then `dvc status`, which must be
clean. `--remote URL` pulls from an existing remote instead (no push; size not measured).

Usage: python benchmarks/remote_roundtrip.py [--inventory] [--remote URL] [--write-readme]
  --inventory      only the inventory (from dvc.lock; no push, clone or pull)
  --write-readme   rewrite the README's generated blocks: the inventory always, the measured
                   block only after a round trip
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REMOTE_NAME = "storage"  # the project's remote in .dvc/config
INVENTORY_BLOCK = "remote-inventory"
MEASURED_BLOCK = "remote-roundtrip"
COMMAND = "python benchmarks/remote_roundtrip.py --write-readme"

# One README row per cached output folder (the policy-gradient units share one row): the path
# shown and what it holds. A cached output without a row stops the script, so a new one is
# described before the table is regenerated.
ROWS = {
    "artifacts/lm_sft": (
        "`artifacts/lm_sft/`",
        "`policy/`: the initial policy (SFT of the base LM; a causal-LM folder with tokenizer and "
        "chat template, `rmteacher report --policy`); `world.json`: the prompt splits",
    ),
    "artifacts/rm_train": (
        "`artifacts/rm_train/`",
        "`rm_onpolicy_<percent>/`: the Section 4.1 Bradley-Terry RMs, one per on-policy mix "
        "(sequence-classification folders, `rmteacher report --reward-model`); "
        "`candidates_test.jsonl`: held-out preference pairs labelled by r_G; `manifest.json`",
    ),
    "artifacts/rm_eval": (
        "`artifacts/rm_eval/`",
        "`rewards_<rm>.npy`: raw [prompts, samples] rewards of every RM and of r_G (`gold`) on "
        "the initial policy's samples (`samples.json`); `normalization.json`; Table 1 with "
        "every column (`rm_table.csv`); `checks.csv`; `suite.json` (controls and family)",
    ),
    "artifacts/rloo_lr": ("`artifacts/rloo_lr/`", "`choice.json`: the learning rate chosen"),
    "artifacts/rloo_runs": (
        "`artifacts/rloo_runs/<unit>/seed_<s>/`",
        "one folder per Section 4.1 cached unit (one seed of a group of runs, trained as one "
        "ensemble): evaluations (`curves.csv`), per-step logs (`train_logs.csv`), samples "
        "(`samples.csv`)",
    ),
    "artifacts/rloo": (
        "`artifacts/rloo/`",
        "the runs above joined: `curves.csv`, `train_logs.csv`, `samples.csv` (what "
        "sec41_report and alt_normalization read)",
    ),
    "artifacts/alt_normalization": (
        "`artifacts/alt_normalization/`",
        "`increases.csv`: every run's increases under both normalisations (what sec41_report's "
        "other-normalisation gate reads)",
    ),
    "artifacts/sec42_policies": (
        "`artifacts/sec42_policies/`",
        "`<policy>/`: the extra initial policies of Section 4.2 (causal-LM folders)",
    ),
    "artifacts/sec42_eval": (
        "`artifacts/sec42_eval/`",
        "`<policy>/rewards_<rm>.npy`, `normalization.json`, `samples.json`: every RM on each "
        "policy's own samples; `policy_rm_eval.csv`; `report_example/` (an `rmteacher report` "
        "output)",
    ),
    "artifacts/sec42_pg_runs": (
        "`artifacts/sec42_pg_runs/<unit>/seed_<s>/`",
        "one folder per Section 4.2 cached unit (`rloo`: every policy x RM at one seed; "
        "`grpo`: the GRPO variants): `curves.csv`, `train_logs.csv`",
    ),
    "artifacts/sec42_pg": (
        "`artifacts/sec42_pg/`",
        "`curves.csv`, `train_logs.csv`: every Section 4.2 run (RLOO, GRPO, GRPO with group "
        "scaling)",
    ),
}


@dataclass(frozen=True)
class CachedOutput:
    """One DVC-cached output as dvc.lock records it."""

    stage: str
    path: str
    size: int
    nfiles: int


def cached_outputs(root: Path = ROOT) -> list[CachedOutput]:
    """Every output DVC caches (so `dvc push` uploads and `dvc pull` restores it), with the size
    and file count dvc.lock holds for it; read through DVC itself, so `cache: false` outputs and
    dvcignored files are left out exactly as DVC leaves them out."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        found = [
            CachedOutput(
                out.stage.name,
                Path(out.fs_path).relative_to(Path(repo.root_dir).resolve()).as_posix(),
                int(out.meta.size or 0),
                int(out.meta.nfiles or 1),
            )
            for out in repo.index.outs
            if out.use_cache and out.hash_info
        ]
    return sorted(found, key=lambda o: o.path)


def row_of(path: str) -> str:
    """The ROWS key whose folder holds `path` (the longest that matches)."""
    matches = [key for key in ROWS if path == key or path.startswith(key + "/")]
    if not matches:
        raise SystemExit(
            f"error: cached output {path} has no row in benchmarks/remote_roundtrip.py ROWS: "
            "describe it there"
        )
    return max(matches, key=len)


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def inventory_markdown(outputs: list[CachedOutput]) -> str:
    """The README table: one row per ROWS entry that dvc.lock has outputs for, then the total."""
    grouped: dict[str, list[CachedOutput]] = {}
    for out in outputs:
        grouped.setdefault(row_of(out.path), []).append(out)
    lines = ["| path | size | files | what |", "|---|---:|---:|---|"]
    for key in ROWS:
        if key not in grouped:
            continue
        shown, what = ROWS[key]
        outs = grouped[key]
        units = f" ({len(outs)} cached units)" if len(outs) > 1 else ""
        size, files = sum(o.size for o in outs), sum(o.nfiles for o in outs)
        lines.append(f"| {shown} | {megabytes(size)} | {files} | {what}{units} |")
    total = sum(o.size for o in outputs)
    files = sum(o.nfiles for o in outputs)
    lines.append(f"| **all {len(outputs)} cached outputs** | **{megabytes(total)}** | {files} | |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the generated block `name` (between its start and end markers) set to
    `body`; one error line if the README lacks the markers."""
    pattern = re.compile(rf"(<!-- {name}:start[^>]*-->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"error: README.md has no <!-- {name}:start ... --> block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text, count=1)


def readme_block(text: str, name: str) -> str:
    """The body of the generated block `name` in `text`."""
    match = re.search(rf"<!-- {name}:start[^>]*-->\n(.*?)\n?<!-- {name}:end -->", text, re.S)
    if not match:
        raise SystemExit(f"error: README.md has no <!-- {name}:start ... --> block")
    return match.group(1).rstrip("\n")


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if result.returncode != 0:
        output = result.stdout[-2000:] + result.stderr[-2000:]
        raise SystemExit(f"error: {' '.join(cmd)} failed in {cwd}:\n{output}")
    return result


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    run(cmd, cwd, env)
    return time.perf_counter() - start


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


@dataclass
class RoundTrip:
    """What one push / clone / pull measured."""

    remote: str
    remote_bytes: int | None
    remote_files: int | None
    pushed: int | None
    pull_s: float
    book_s: float
    status_clean: bool


def round_trip(root: Path, remote_url: str | None, env: dict) -> RoundTrip:
    """Push this checkout's committed run to a local directory remote (unless `remote_url`
    names an existing one), clone HEAD, point the clone at the remote as the README says, and
    time `dvc pull` and `make book`; `dvc status` must then be clean."""
    from dvc.repo import Repo

    dirty = run(
        ["git", "status", "--porcelain", "--", "dvc.yaml", "dvc.lock", "params.yaml", ".dvcignore"],
        root,
        env,
    ).stdout.strip()
    if dirty:
        raise SystemExit(f"error: commit the pipeline files first (the clone reads HEAD):\n{dirty}")
    with tempfile.TemporaryDirectory(prefix="rmteacher-remote-") as scratch:
        scratch = Path(scratch)
        pushed = remote_bytes = remote_files = None
        if remote_url is None:
            remote_dir = scratch / "remote"
            config = {
                "core": {"remote": "roundtrip"},
                "remote": {"roundtrip": {"url": str(remote_dir)}},
            }
            with Repo(str(root), config=config) as repo:
                pushed = repo.push()
            remote_bytes, remote_files = folder_size(remote_dir)
            remote_url = str(remote_dir)
        clone = scratch / "clone"
        run(["git", "clone", "--quiet", str(root), str(clone)], scratch, env)
        run(["dvc", "remote", "modify", "--local", REMOTE_NAME, "url", remote_url], clone, env)
        pull_s = timed(["dvc", "pull"], clone, env)
        venv = Path(sys.prefix)
        book = ["make", "-o", str(venv / ".installed"), "book", f"VENV={venv}"]
        book_s = timed(book, clone, env)
        status = run(["dvc", "status"], clone, env).stdout
    return RoundTrip(
        remote=remote_url,
        remote_bytes=remote_bytes,
        remote_files=remote_files,
        pushed=pushed,
        pull_s=pull_s,
        book_s=book_s,
        status_clean="Data and pipelines are up to date" in status,
    )


def measured_markdown(trip: RoundTrip, outputs: list[CachedOutput]) -> str:
    """The README's measured block: what the round trip found, on which machine, for which
    dvc.lock (its cached outputs' total, so a reader sees whether it matches the table above)."""
    day = datetime.date.today().isoformat()
    machine = f"{os.cpu_count()} CPU cores, {platform.system()}"
    lock_total = megabytes(sum(o.size for o in outputs))
    status = "clean" if trip.status_clean else "**not clean**"
    return (
        f"Measured {day} ({machine}) by `{COMMAND}` on a complete checkout whose dvc.lock lists "
        f"{lock_total} of cached outputs: `dvc push` to a local directory remote stored "
        f"**{megabytes(trip.remote_bytes or 0)} in {trip.remote_files} files**; on a fresh "
        f"`git clone`, `dvc pull` took **{trip.pull_s:.0f} s** and `make book` "
        f"**{trip.book_s:.0f} s**, after which `dvc status` was {status}. A hosted remote adds "
        "the download time of that size."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", action="store_true", help="only the dvc.lock inventory")
    parser.add_argument("--remote", help="pull from this existing remote URL (no push)")
    parser.add_argument("--write-readme", action="store_true", help="rewrite the README blocks")
    args = parser.parse_args(argv)
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env['PATH']}"
    outputs = cached_outputs()
    table = inventory_markdown(outputs)
    print(table)
    text = replace_block(README.read_text(), INVENTORY_BLOCK, table)
    if not args.inventory:
        trip = round_trip(ROOT, args.remote, env)
        print()
        print("| measure | value |\n|---|---|")
        print(f"| remote | {trip.remote if args.remote else 'local directory (temporary)'} |")
        if trip.remote_bytes is not None:
            print(f"| objects pushed | {trip.pushed} |")
            print(f"| remote size | {megabytes(trip.remote_bytes)} in {trip.remote_files} files |")
        print(f"| `dvc pull` on a fresh clone | {trip.pull_s:.1f} s |")
        print(f"| `make book` on that clone | {trip.book_s:.1f} s |")
        print(f"| `dvc status` afterwards | {'clean' if trip.status_clean else 'NOT clean'} |")
        if not trip.status_clean:
            raise SystemExit("error: dvc status was not clean after the pull; README not written")
        if args.remote is None:
            text = replace_block(text, MEASURED_BLOCK, measured_markdown(trip, outputs))
    if args.write_readme:
        README.write_text(text)
        print(f"\nwrote {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
