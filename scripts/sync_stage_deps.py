"""Rewrite the library-code deps of every notebook stage in dvc.yaml from what its notebook
really imports (rmteacher.depgraph), keeping every other dep and all comments.

    python scripts/sync_stage_deps.py          # rewrite dvc.yaml
    python scripts/sync_stage_deps.py --check  # exit 1 if it is out of date (tests do this too)

lm_pretrain is left alone on purpose: it lists only the code that shapes the committed base LM,
so that editing the runner or the sampler never retrains it by accident.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from ruamel.yaml import YAML

from rmteacher.depgraph import stage_code_files

ROOT = Path(__file__).resolve().parents[1]
NARROW_STAGES = {"lm_pretrain"}


def synced_text(root: Path = ROOT) -> str:
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    doc = yaml.load((root / "dvc.yaml").read_text())
    for name, stage in doc["stages"].items():
        if not str(stage["cmd"]).startswith("rmteacher run ") or name in NARROW_STAGES:
            continue
        deps = stage["deps"]
        others = [d for d in deps if not str(d).startswith("src/")]
        deps.clear()
        deps.extend(others + stage_code_files(name, root))
    stream = io.StringIO()
    yaml.dump(doc, stream)
    return stream.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = synced_text()
    current = (ROOT / "dvc.yaml").read_text()
    if args.check:
        if text != current:
            print(
                "dvc.yaml deps are out of date: run python scripts/sync_stage_deps.py",
                file=sys.stderr,
            )
            return 1
        return 0
    (ROOT / "dvc.yaml").write_text(text)
    print("dvc.yaml deps synced" if text != current else "dvc.yaml deps already in sync")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
