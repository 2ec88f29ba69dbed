"""Where a stage run writes: DVC's outputs only when DVC runs the stage, else a scratch folder.

DVC (3.x, `dvc/stage/run.py`) sets `DVC_STAGE` (the stage's name) and `DVC_ROOT` (the
repository root) in the environment of every stage command it runs, and the kernel a stage
starts inherits them. Any other run - papermill or Jupyter by hand, `rmteacher run` from a shell,
`rmteacher run --set` - writes under `runs/<stage>/<time>-<hash>/` (git- and DVC-ignored): a
view of the repository in which every path is a link to the real one except the stage's own
outputs (from dvc.yaml), so the stage reads its upstream artifacts and params.yaml as usual and
its writes stay in the scratch folder. The folder's `params.yaml` is a real file holding the
group the run used, so the folder says what produced it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from rmteacher.core import paths

RUNS = Path("runs")
MARKER = ".rmteacher-run.json"  # a scratch folder's root holds this file
# never linked into a scratch folder: version control, DVC's own state, other scratch runs
NOT_LINKED = {".git", ".dvc", "dvc.lock", "runs", ".tiny", ".venv", ".pytest_cache"}


def under_dvc(stage: str, root: Path) -> bool:
    """Whether DVC is running `stage` of the repository at `root` right now."""
    dvc_root = os.environ.get("DVC_ROOT")
    if os.environ.get("DVC_STAGE") != stage or not dvc_root:
        return False
    return Path(dvc_root).resolve() == Path(root).resolve()


def is_scratch(root: Path) -> bool:
    """Whether `root` is a scratch folder (its run writes there, whoever runs it)."""
    return (Path(root) / MARKER).is_file()


def writes_in_place(stage: str, root: Path) -> bool:
    """DVC runs the stage, or the run is already inside a scratch folder."""
    return is_scratch(root) or under_dvc(stage, root)


def conventional_outputs(stage: str) -> list[str]:
    """What a stage writes by the project's conventions (core.paths), for a stage that dvc.yaml
    does not declare."""
    return [
        (paths.EXECUTED / f"{stage}.ipynb").as_posix(),
        (paths.FIGURES / stage).as_posix(),
        (paths.METRICS / f"{stage}.json").as_posix(),
        (paths.PLOTS / stage).as_posix(),
        (paths.ARTIFACTS / stage).as_posix(),
    ]


def stage_paths(root: Path, stage: str, kind: str = "outs") -> list[str]:
    """The stage's `outs` (metrics and plots included) or `deps` as dvc.yaml declares them,
    relative to `root`. A plain entry is read from dvc.yaml directly; a templated or generated
    one (`${...}`, `foreach`, `matrix`) through DVC's own parser; a stage dvc.yaml does not
    declare gets the conventional outputs and no deps."""
    stages = (YAML(typ="safe", pure=True).load((root / "dvc.yaml").read_text()) or {}).get(
        "stages", {}
    )
    definition = stages.get(stage) or {}
    keys = ("outs", "metrics", "plots") if kind == "outs" else ("deps",)
    found = []
    for key in keys:
        for entry in definition.get(key) or []:
            found.append(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    if stage in stages and not any("${" in path for path in found):
        return found
    try:
        from dvc.repo import Repo  # ~1 s: only for templated (matrix) stages

        with Repo(str(root)) as repo:
            (resolved,) = repo.stage.collect(stage)
            items = resolved.outs if kind == "outs" else resolved.deps
            return [item.def_path for item in items]
    except Exception:  # no DVC repository, or no such stage: the project's conventions
        return conventional_outputs(stage) if kind == "outs" else []


def params_hash(group: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(group, sort_keys=True).encode()).hexdigest()[:8]


def make_scratch(root: Path, stage: str, group: Mapping[str, Any], data: Mapping[str, Any]):
    """Create runs/<stage>/<time>-<hash of the group>/ under `root`: links to everything of the
    repository but the stage's outputs, and a params.yaml whose `stage` group is `group` (the
    other groups as in `data`). Returns the folder."""
    root = Path(root).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    folder = root / RUNS / stage / f"{stamp}-{params_hash(group)}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = folder.with_name(f"{stamp}-{params_hash(group)}-{suffix}")
    folder.mkdir(parents=True)
    try:
        outs = [Path(p) for p in stage_paths(root, stage, "outs")]
        owned = {Path("params.yaml"), *outs}
        real_dirs = {parent for out in owned for parent in out.parents if parent != Path(".")}
        _link_tree(root, folder, Path("."), owned, real_dirs)
        for directory in real_dirs:  # an output's parent that the repository lacks so far
            (folder / directory).mkdir(parents=True, exist_ok=True)
        _write_params(folder / "params.yaml", {**data, stage: dict(group)})
        (folder / MARKER).write_text(
            json.dumps({"stage": stage, "repository": str(root), "params": dict(group)}, indent=1)
        )
    except BaseException:  # Ctrl-C or an error half-way: no half-made folder stays
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _link_tree(root: Path, folder: Path, relative: Path, owned: set, real_dirs: set) -> None:
    for entry in sorted((root / relative).iterdir()):
        path = relative / entry.name
        if relative == Path(".") and entry.name in NOT_LINKED:
            continue
        if path in owned:
            continue
        if path in real_dirs:
            (folder / path).mkdir(exist_ok=True)
            _link_tree(root, folder, path, owned, real_dirs)
        else:
            (folder / path).symlink_to(entry)


def _write_params(path: Path, data: Mapping[str, Any]) -> None:
    yaml = YAML()
    yaml.default_flow_style = None
    with path.open("w") as stream:
        yaml.dump({k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}, stream)


def describe(folder: Path, root: Path) -> str:
    """The folder relative to the repository it belongs to (for messages)."""
    try:
        return str(Path(folder).resolve().relative_to(Path(root).resolve())) + "/"
    except ValueError:
        return str(folder) + "/"
