"""The package's shape: imports only point down the layers, nothing imports in a cycle, the two
tracks never import each other, stage modules are cheap to import, and every stage's DVC deps
cover exactly the code it runs (so an edit reruns that stage and never the other track's)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# Lowest first. A module may import from its own layer or a lower one, never a higher one.
LAYERS = [
    ["rmteacher.core", "rmteacher.paper"],
    ["rmteacher.metrics", "rmteacher.rewards"],
    ["rmteacher.theory.exact", "rmteacher.lm.world", "rmteacher.lm.trainers"],
    ["rmteacher.theory.experiments", "rmteacher.lm.rm", "rmteacher.lm.pg", "rmteacher.lm.analysis"],
    ["rmteacher.report"],
    ["rmteacher.lm.experiments"],
    ["rmteacher.pipeline", "rmteacher.outcomes", "rmteacher.verify", "rmteacher.resources"],
    ["rmteacher.cli", "rmteacher.__main__"],
]
TRACKS = ("rmteacher.theory", "rmteacher.lm")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports_of(name: str, top_level: bool = False) -> set[str]:
    """rmteacher modules named by the import statements of module `name`: every one (lazy ones
    inside functions too), or with `top_level` only those that run when the module is imported."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c in MODULES and c != name}
    return found


def layer_of(name: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return index
    return None


def is_bare_package(name: str) -> bool:
    """A package __init__ that imports nothing (it only holds a docstring)."""
    return MODULES[name].name == "__init__.py" and not imports_of(name)


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if layer_of(m) is None and not is_bare_package(m)]
    assert not unplaced, f"add these modules to a layer: {unplaced}"


def test_imports_only_point_down_the_layers():
    upward = [
        f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
        for name in MODULES
        if not is_bare_package(name)
        for target in imports_of(name)
        if not is_bare_package(target) and layer_of(target) > layer_of(name)
    ]
    assert not upward, "\n".join(upward)


def test_the_two_tracks_never_import_each_other():
    crossing = [
        f"{name} imports {target}"
        for name in MODULES
        for target in imports_of(name)
        for own, other in (TRACKS, TRACKS[::-1])
        if name.startswith(own) and target.startswith(other)
    ]
    assert not crossing, "\n".join(crossing)


def test_no_import_cycles():
    graph = {name: imports_of(name) for name in MODULES}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for target in graph[node]:
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_stage_modules_import_no_heavy_library():
    """`rmteacher check` imports every stage module; torch and transformers load only in run."""
    code = (
        "import sys, rmteacher.pipeline as p; p.stage_registry(); "
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- DVC stage dependencies -------------------------------------------------------------------

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
# params_check only validates params.yaml; outcomes only reads metrics; the book only renders
LM_OR_THEORY = {s for s in STAGES if s not in ("book", "params_check", "outcomes")}


def is_unit(stage: str) -> bool:
    """A matrix stage of cached policy-gradient units, run by `rmteacher pg-run <stage> ...`."""
    return "matrix" in STAGES[stage]


def entry(stage: str) -> tuple[str, set[str]]:
    """(the stage's own experiment module, the modules its notebook or pg-run starts from)."""
    if is_unit(stage):
        module = f"rmteacher.lm.experiments.{STAGES[stage]['cmd'].split()[2]}"
        return module, {module}
    return f"experiments.{stage.removeprefix('theory_')}", notebook_imports(stage)


def closure(stage: str) -> set[str]:
    """Every rmteacher module the stage's notebook (or a unit's `pg-run`) can run: the modules it
    imports and all they import (lazy imports too), except that another stage's module (imported
    for its parameter class) only contributes what runs at its import."""
    own, start = entry(stage)
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen or name not in MODULES:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        other_stage = ".experiments." in name and not name.endswith(own)
        todo += imports_of(name, top_level=other_stage and name not in THEORY_HELPERS)
    return seen


# theory experiment modules whose functions other theory stages call (not just their params)
THEORY_HELPERS = {"rmteacher.theory.experiments.accuracy_speed"}


def notebook_imports(stage: str) -> set[str]:
    import json

    cells = json.loads((ROOT / "notebooks" / f"{stage}.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rmteacher"):
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return {n for n in names if n in MODULES}


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def stage_deps(stage: str) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in STAGES[stage].get("deps", [])]


@pytest.mark.parametrize("stage", sorted(LM_OR_THEORY))
def test_stage_deps_exist_and_cover_all_the_code_it_runs(stage):
    deps = stage_deps(stage)
    code_deps = [d for d in deps if d.startswith(("src/", "notebooks/"))]
    missing = [d for d in code_deps if not (ROOT / d).exists()]
    assert not missing, f"{stage}: deps that do not exist: {missing}"
    assert is_unit(stage) or f"notebooks/{stage}.ipynb" in deps
    runs = closure(stage)
    uncovered = [
        m
        for m in sorted(runs)
        if MODULES[m].name != "__init__.py" and not covered(MODULES[m], deps)
    ]
    assert not uncovered, f"{stage} runs code its deps do not list: {uncovered}"


@pytest.mark.parametrize(
    "edited, reruns, spared",
    [
        (
            "src/rmteacher/theory/experiments/escape_time.py",
            {"theory_escape_time"},
            {"theory_gradient_bound", "theory_accuracy_speed", "rloo", "lm_sft"},
        ),
        (
            "src/rmteacher/lm/pg/loop.py",
            {"rloo_main", "rloo_family", "sec42_pg", "alt_normalization", "reward_scaling"},
            {
                "lm_sft",
                "rm_train",
                "rm_eval",
                "sec41_report",
                *[s for s in STAGES if "theory" in s],
            },
        ),
        (
            "src/rmteacher/theory/exact/tabular.py",
            {s for s in STAGES if s.startswith("theory_")},
            {s for s in STAGES if not s.startswith("theory_") and s not in ("book", "outcomes")},
        ),
    ],
)
def test_an_edit_reruns_its_stages_and_spares_the_other_track(edited, reruns, spared):
    hit = {s for s in LM_OR_THEORY if covered(ROOT / edited, stage_deps(s))}
    assert reruns <= hit, f"{edited} should rerun {sorted(reruns - hit)}"
    assert not (spared & hit), f"{edited} should not rerun {sorted(spared & hit)}"
