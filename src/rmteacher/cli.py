"""The `rmteacher` command: run pipeline stages and manage parameters."""

from __future__ import annotations

import argparse
import sys

from rmteacher.params import ParamsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmteacher", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="validate params and execute a stage's notebook")
    run.add_argument("stage")
    run.add_argument("--params", default="params.yaml")
    check = sub.add_parser("check", help="validate every group of params.yaml")
    check.add_argument("--params", default="params.yaml")
    params = sub.add_parser("params", help="write or check params.yaml against the defaults")
    params.add_argument("--params", default="params.yaml")
    mode = params.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    profile = sub.add_parser("profile", help="overlay profiles/NAME.yaml onto params.yaml")
    profile.add_argument("name")
    profile.add_argument("--params", default="params.yaml")
    sub.add_parser("stages", help="list the pipeline's stages")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rmteacher import pipeline
    from rmteacher.params import check_params_file

    try:
        if args.command == "run":
            seconds = pipeline.run_stage(args.stage, args.params)
            print(f"stage {args.stage}: done in {seconds:.1f} s")
        elif args.command == "check":
            check_params_file(args.params)
            print(f"{args.params}: all {len(pipeline.stage_names())} stage groups are valid")
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
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except pipeline.StageFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
