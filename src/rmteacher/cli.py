"""The `rmteacher` command: run pipeline stages, manage parameters, and report how well reward
models would teach a policy."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rmteacher import interrupts, outcomes, pipeline, verify
from rmteacher.core import lifeline, runs
from rmteacher.core.params import ParamsError
from rmteacher.core.stage import repo_root
from rmteacher.pipeline import check_params_file

IGNORE_MEMORY_HELP = (
    "run even when a stage's estimated peak memory exceeds the memory available here "
    "(RMTEACHER_IGNORE_MEMORY=1 does the same, e.g. under dvc repro)"
)
# the subcommands that work on the project: they find its root (dvc.yaml) from any subfolder
PROJECT_COMMANDS = ("run", "check", "params", "profile", "stages", "pg-run", "outcomes", "verify")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmteacher", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="validate params and execute a stage's notebook (outside dvc repro: into a scratch "
        "folder runs/STAGE/...)",
    )
    run.add_argument("stage")
    run.add_argument("--params", help="params file (default: the project's params.yaml)")
    run.add_argument(
        "--set",
        dest="assignments",
        action="append",
        metavar="KEY=VALUE",
        help="set one key of the stage's group for this run (VALUE read as YAML; repeatable); "
        "the run writes under runs/STAGE/..., never DVC's outputs",
    )
    run.add_argument("--ignore-memory", action="store_true", help=IGNORE_MEMORY_HELP)
    check = sub.add_parser("check", help="validate every group of params.yaml")
    check.add_argument("--params", help="params file (default: the project's params.yaml)")
    check.add_argument("--ignore-memory", action="store_true", help=IGNORE_MEMORY_HELP)
    check.add_argument(
        "--deep",
        action="store_true",
        help="also run the checks that build seeded models (imports torch; a few seconds)",
    )
    check.add_argument(
        "--stamp",
        metavar="FILE",
        help="write a one-line stamp here when valid (the DVC stage every stage depends on)",
    )
    params = sub.add_parser(
        "params",
        help="write or check params.yaml and the notebooks' parameters cells against the defaults",
    )
    params.add_argument("--params", help="params file (default: the project's params.yaml)")
    mode = params.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    profile = sub.add_parser("profile", help="overlay profiles/NAME.yaml onto params.yaml")
    profile.add_argument("name")
    profile.add_argument("--params", help="params file (default: the project's params.yaml)")
    sub.add_parser("stages", help="list the pipeline's stages")
    unit = sub.add_parser(
        "pg-run",
        help="train one cached unit of a policy-gradient stage (what dvc.yaml's rloo_* matrix "
        "stages run; accelerate launch when num_processes > 1)",
    )
    unit.add_argument("stage", help="rloo or sec42_pg")
    unit.add_argument(
        "unit", help="rloo: main, family or noclip; sec42_pg: rloo or grpo (each one seed)"
    )
    unit.add_argument("--seed", type=int, required=True)
    unit.add_argument(
        "--rm",
        dest="rms",
        action="append",
        metavar="RM",
        help="train only the unit's runs on this RM (repeatable; a trial run, never DVC's output)",
    )
    unit.add_argument("--params", help="params file (default: the project's params.yaml)")
    unit.add_argument(
        "--out", help="write here instead of the unit's DVC output folder (a trial run)"
    )
    outcomes = sub.add_parser(
        "outcomes", help="print the outcome table computed from metrics/*.json"
    )
    outcomes.add_argument("--write", action="store_true", help="rewrite README.md's table")
    outcomes.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    outcomes.add_argument(
        "--headlines",
        metavar="DIR",
        help="write one headline JSON per claim here (the metrics `dvc metrics show` lists)",
    )
    verify = sub.add_parser(
        "verify", help="compare metrics/ with a git revision under stated tolerances"
    )
    verify.add_argument("--against", default="HEAD", help="git revision (default HEAD)")
    add_report_parser(sub)
    return parser


def add_report_parser(sub) -> None:
    report = sub.add_parser(
        "report",
        help="reward variance, on-policy accuracy and predicted teacher ranking of "
        "reward models on a policy's own samples",
        description="Sample responses from a policy, score them with each reward model (and a "
        "gold reward), normalise each globally, and rank the RMs as teachers (paper Section 4).",
    )
    report.add_argument(
        "--policy",
        required=True,
        metavar="PATH_OR_ID",
        help="causal LM directory with a chat-template tokenizer (or online, a Hub id)",
    )
    report.add_argument(
        "--reward-model",
        dest="reward_models",
        action="extend",
        nargs="+",
        required=True,
        metavar="[NAME=]SPEC",
        help="registered scorer (vader, length, afinn, textblob, "
        "minilm_sentiment), module:function, or a one-output sequence-"
        "classification model directory; repeatable",
    )
    report.add_argument("--gold", metavar="SPEC", help="ground-truth reward r_G (e.g. vader)")
    report.add_argument(
        "--prompts",
        required=True,
        metavar="FILE",
        help='one prompt per line (.txt) or JSONL with a "prompt" field',
    )
    report.add_argument("--samples", type=int, default=10, help="responses per prompt (>= 2)")
    report.add_argument(
        "--out", metavar="DIR", help="output directory (default: report/<policy path with / as _>)"
    )
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--max-new-tokens", type=int, default=24)
    report.add_argument("--temperature", type=float, default=1.0)


def run_report(args) -> int:
    """`rmteacher report`: check every input (one error line, exit 2), then sample, score, write
    the report files and print the table."""
    # pandas and seaborn (~2 s): loaded for this command only, so `rmteacher check` stays fast
    from rmteacher.report import (
        ReportInputError,
        check_out_dir,
        check_report_inputs,
        default_out_dir,
        evaluate_rewards_on_policy,
        format_report,
        name_reward_specs,
        read_prompts,
        write_report,
    )

    try:
        prompts = read_prompts(args.prompts)
        specs = name_reward_specs(args.reward_models)
        check_report_inputs(
            args.policy,
            specs,
            args.gold,
            prompts,
            args.samples,
            args.max_new_tokens,
            args.temperature,
        )
        out_dir = Path(args.out) if args.out else default_out_dir(args.policy)
        check_out_dir(out_dir)
    except ReportInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one coarse bar of our own is enough
    try:
        report = evaluate_rewards_on_policy(
            args.policy,
            specs,
            args.gold,
            prompts,
            args.samples,
            args.seed,
            args.max_new_tokens,
            args.temperature,
        )
        paths = write_report(report, out_dir)
    except ReportInputError as err:  # a plug-in reward failed its probe, before sampling
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, FloatingPointError, OSError) as err:
        print(
            f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            file=sys.stderr,
        )
        return 1
    print(format_report(report))
    print(f"\nwrote {len(paths)} files to {out_dir}")
    return 0


def run_outcomes(args) -> int:
    """Print, check or write the README's outcome table."""
    readme = Path("README.md")
    metrics = outcomes.read_metrics(Path("metrics"))
    if args.headlines:
        written = outcomes.write_headlines(Path(args.headlines))
        print(f"wrote {len(written)} headline metrics files to {args.headlines}")
    elif args.write:
        changed = outcomes.write(readme)
        print(
            "README.md outcome table and book/deviations.md "
            f"{'updated' if changed else 'already current'}"
        )
    elif args.check:
        try:
            current = outcomes.current_block(readme.read_text())
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if current != outcomes.block(metrics):
            print("README.md outcome table is stale: run `rmteacher outcomes --write`")
            return 1
        print("README.md outcome table matches metrics/")
    else:
        print(outcomes.table(metrics))
    return 0


def run_verify(args) -> int:
    """Exit 0 when every metric reproduced the revision's within tolerance, 1 when not."""
    root = repo_root()
    inside = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True
    )
    if inside.returncode != 0:
        print(
            f"error: verify: {root} is not in a git repository (nothing to compare with)",
            file=sys.stderr,
        )
        return 2
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{args.against}^{{commit}}"],
        cwd=root,
        capture_output=True,
    )
    if known.returncode != 0:
        print(f"error: verify --against: no git revision '{args.against}'", file=sys.stderr)
        return 2
    differences, problems, compared = verify.verify(root, args.against)
    print(verify.report(differences, compared, args.against, problems))
    return 2 if problems else (1 if differences else 0)


def run_pg_unit(args) -> int:
    """`rmteacher pg-run`: bad params in one line (exit 2), a missing upstream output in one line
    (exit 1), Ctrl-C or SIGTERM in one line (exit 130; a unit writes its files only at the end)."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    what = f"{args.stage} {args.unit} unit" + (f" on {', '.join(args.rms)}" if args.rms else "")
    if args.out is None and not os.environ.get("DVC_STAGE"):  # by hand: never DVC's outputs
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        unit = Path(f"{args.stage}_{args.unit}", f"seed_{args.seed}", stamp)
        args.out = str(runs.RUNS / unit)
        print(f"{what}: not run by DVC, so it writes under {args.out}/ (DVC's outputs untouched)")
    lifeline.bind_to_parent()  # a unit never outlives its dvc either
    try:
        return pipeline.run_unit(
            args.stage, args.unit, args.seed, args.rms, args.params, out=args.out
        )
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"error: {what} with seed {args.seed} interrupted", file=sys.stderr)
        return 130


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Every subcommand: bad input is one line (exit 2), a failure one line (exit 1), Ctrl-C or
    SIGTERM at any moment one line (exit 130)."""

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop)  # SIGTERM stops like Ctrl-C, wherever it lands
    args = build_parser().parse_args(argv)
    try:
        with interrupts.redelivered_if_swallowed():  # a Ctrl-C in a weakref callback still stops
            return _dispatch(args)
    except BrokenPipeError:  # `rmteacher stages | head -1`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        what = f"stage '{args.stage}'" if args.command == "run" else f"rmteacher {args.command}"
        print(f"error: {what} interrupted before it started; nothing was written", file=sys.stderr)
        return 130


def _enter_project(args) -> None:
    """Resolve a given --params against the current directory, then work from the project
    root found at or above it (ParamsError when there is none)."""

    given = getattr(args, "params", None)
    if given is not None:
        args.params = str(Path(given).resolve())
    if args.command == "profile" and given is not None:
        return  # the params file decides the project (see pipeline.apply_profile)
    try:
        root = repo_root()
    except FileNotFoundError:
        raise ParamsError(
            f"no rmteacher project here: no dvc.yaml at or above {Path.cwd()}; run it inside "
            "the repository"
        ) from None
    os.chdir(root)
    if hasattr(args, "params") and given is None:
        args.params = "params.yaml"


def _dispatch(args) -> int:
    if args.command == "report":
        return run_report(args)
    try:
        if args.command in PROJECT_COMMANDS:
            _enter_project(args)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "verify":
        return run_verify(args)
    if args.command == "outcomes":
        return run_outcomes(args)
    try:
        if args.command == "run":
            lifeline.bind_to_parent()  # a stage never outlives its dvc
            overrides = pipeline.parse_assignments(args.assignments)
            seconds, folder = pipeline.run_stage(
                args.stage, args.params, overrides=overrides, ignore_memory=args.ignore_memory
            )
            where = (
                f"; outputs under {runs_where(folder)} (DVC's outputs untouched)" if folder else ""
            )
            print(f"stage {args.stage}: done in {seconds:.1f} s{where}")
        elif args.command == "check":
            groups = check_params_file(args.params, deep=args.deep)
            for warning in pipeline.check_resources(groups, ignore_memory=args.ignore_memory):
                print(warning, file=sys.stderr)
            # (the line below is also the params_check stamp, an output every stage depends on)
            line = f"{args.params}: all {len(pipeline.stage_names())} stage groups are valid"
            if args.stamp:
                Path(args.stamp).parent.mkdir(parents=True, exist_ok=True)
                Path(args.stamp).write_text(line + "\n")
            print(line if args.deep else f"{line} (--deep also builds the seeded models)")
        elif args.command == "params" and args.write:
            print(f"wrote {pipeline.write_params(args.params)}")
            written = pipeline.write_parameters_cells()
            print(f"parameters cells: {len(written)} notebook(s) rewritten")
        elif args.command == "params":
            stale = pipeline.stale_parameters_cells()
            if not pipeline.params_match_defaults(args.params) or stale:
                what = [args.params] if not pipeline.params_match_defaults(args.params) else []
                print(
                    f"{', '.join(what + stale)} differ(s) from the defaults; run "
                    "`rmteacher params --write`",
                    file=sys.stderr,
                )
                return 1
            print(f"{args.params} and every notebook's parameters cell match the defaults")
        elif args.command == "profile":
            changes = pipeline.apply_profile(args.name, args.params)
            print(
                f"profile '{args.name}' applied to {args.params}: {len(changes)} value(s) changed"
            )
            for line in changes:
                print(f"  {line}")
        elif args.command == "stages":
            print("\n".join(pipeline.stage_names()))
        elif args.command == "pg-run":
            return run_pg_unit(args)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except pipeline.StageFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except pipeline.StageInterrupted as err:
        print(f"error: {err}", file=sys.stderr)
        return 130
    return 0


def runs_where(folder: Path) -> str:

    return runs.describe(folder, Path.cwd())
