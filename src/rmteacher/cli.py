"""The `rmteacher` command: run pipeline stages, manage parameters, and report how well reward
models would teach a policy."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from rmteacher import outcomes, pipeline, verify
from rmteacher.core.params import ParamsError
from rmteacher.core.stage import repo_root
from rmteacher.pipeline import check_params_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmteacher", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="validate params and execute a stage's notebook")
    run.add_argument("stage")
    run.add_argument("--params", default="params.yaml")
    check = sub.add_parser("check", help="validate every group of params.yaml")
    check.add_argument("--params", default="params.yaml")
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
    params = sub.add_parser("params", help="write or check params.yaml against the defaults")
    params.add_argument("--params", default="params.yaml")
    mode = params.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    profile = sub.add_parser("profile", help="overlay profiles/NAME.yaml onto params.yaml")
    profile.add_argument("name")
    profile.add_argument("--params", default="params.yaml")
    sub.add_parser("stages", help="list the pipeline's stages")
    unit = sub.add_parser(
        "pg-run",
        help="train one cached unit of a policy-gradient stage (what dvc.yaml's rloo_* matrix "
        "stages run; accelerate launch when num_processes > 1)",
    )
    unit.add_argument("stage", help="rloo")
    unit.add_argument("unit", help="main, beta0, noclip (one RM and seed) or family (one seed)")
    unit.add_argument("--seed", type=int, required=True)
    unit.add_argument("--rm", help="the RM of a main, beta0 or noclip unit")
    unit.add_argument("--params", default="params.yaml")
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
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{args.against}^{{commit}}"],
        cwd=root,
        capture_output=True,
    )
    if known.returncode != 0:
        print(f"error: verify --against: no git revision '{args.against}'", file=sys.stderr)
        return 2
    differences, compared = verify.verify(root, args.against)
    print(verify.report(differences, compared, args.against))
    return 0 if not differences else 1


def run_pg_unit(args) -> int:
    """`rmteacher pg-run`: bad params in one line (exit 2), a missing upstream output in one line
    (exit 1), Ctrl-C or SIGTERM in one line (exit 130; a unit writes its files only at the end)."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    what = f"{args.stage} {args.unit} unit" + (f" of {args.rm}" if args.rm else "")
    try:
        return pipeline.run_unit(
            args.stage, args.unit, args.seed, args.rm, args.params, out=args.out
        )
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"error: {what} with seed {args.seed} interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "report":
        return run_report(args)
    if args.command == "verify":
        return run_verify(args)
    if args.command == "outcomes":
        return run_outcomes(args)
    try:
        if args.command == "run":
            seconds = pipeline.run_stage(args.stage, args.params)
            print(f"stage {args.stage}: done in {seconds:.1f} s")
        elif args.command == "check":
            check_params_file(args.params, deep=args.deep)
            # (this line is also the params_check stamp, an output every stage depends on)
            line = f"{args.params}: all {len(pipeline.stage_names())} stage groups are valid"
            if args.stamp:
                Path(args.stamp).parent.mkdir(parents=True, exist_ok=True)
                Path(args.stamp).write_text(line + "\n")
            print(line if args.deep else f"{line} (--deep also builds the seeded models)")
        elif args.command == "params" and args.write:
            print(f"wrote {pipeline.write_params(args.params)}")
        elif args.command == "params":
            if not pipeline.params_match_defaults(args.params):
                print(f"{args.params} differs from the defaults", file=sys.stderr)
                return 1
            print(f"{args.params} matches the defaults")
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
