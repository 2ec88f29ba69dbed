"""The package's shape: imports only point down the floors (and, inside the language-model
track, down its sub-layers), nothing imports in a cycle, the two tracks never import each other,
no stage module imports another stage module or reads another stage's params, parameter modules
are cheap to import, the README's layout table lists the floors in this order, and every stage's
DVC deps and params are exactly the code it runs and the settings it takes."""

import ast
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# The floors, lowest first (issue 18): a module may import from its own floor or a lower one,
# never a higher one. README.md's layout table lists them in this order.
FLOORS = [
    ["rmteacher.core", "rmteacher.paper", "rmteacher.models"],
    ["rmteacher.metrics", "rmteacher.rewards", "rmteacher.verdicts"],
    ["rmteacher.theory", "rmteacher.lm"],
    ["rmteacher.report"],
    ["rmteacher.stages"],
    [
        "rmteacher.pipeline",
        "rmteacher.outcomes",
        "rmteacher.verify",
        "rmteacher.resources",
        "rmteacher.interrupts",
    ],
    ["rmteacher.cli", "rmteacher.__main__"],
]
# Finer layers, lowest first: inside the floors, the language-model track's world (corpus,
# sampling, SFT) sits below its reward models, policy gradient and analyses.
LAYERS = [
    ["rmteacher.core", "rmteacher.paper", "rmteacher.models"],
    ["rmteacher.metrics", "rmteacher.rewards", "rmteacher.verdicts"],
    ["rmteacher.theory.exact", "rmteacher.lm.world", "rmteacher.lm.trainers"],
    ["rmteacher.theory", "rmteacher.lm.rm", "rmteacher.lm.pg", "rmteacher.lm.analysis"],
    ["rmteacher.report"],
    ["rmteacher.stages"],
    [
        "rmteacher.pipeline",
        "rmteacher.outcomes",
        "rmteacher.verify",
        "rmteacher.resources",
        "rmteacher.interrupts",
    ],
    ["rmteacher.cli", "rmteacher.__main__"],
]
TRACKS = (("rmteacher.theory", "rmteacher.stages.theory"), ("rmteacher.lm", "rmteacher.stages.lm"))


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


def layer_of(name: str, layers=None) -> int | None:
    for index, prefixes in enumerate(layers or LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return index
    return None


def is_bare_package(name: str) -> bool:
    """A package __init__ that imports nothing (it only holds a docstring)."""
    return MODULES[name].name == "__init__.py" and not imports_of(name)


def floor_of(name: str) -> int | None:
    return layer_of(name, FLOORS)


def test_every_module_has_a_floor_and_a_layer():
    unplaced = [
        m
        for m in MODULES
        if (layer_of(m) is None or floor_of(m) is None) and not is_bare_package(m)
    ]
    assert not unplaced, f"add these modules to a floor and a layer: {unplaced}"


def test_imports_only_point_down_the_floors():
    upward = [
        f"{name} (floor {floor_of(name)}) imports {target} (floor {floor_of(target)})"
        for name in MODULES
        if not is_bare_package(name)
        for target in imports_of(name)
        if not is_bare_package(target) and floor_of(target) > floor_of(name)
    ]
    assert not upward, "\n".join(upward)


def test_the_readme_layout_table_lists_the_floors_in_order():
    """README.md's Layout table has one row per floor, lowest first, naming its packages."""
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- floors:start -->")[1].split("<!-- floors:end -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    named = [
        sorted("rmteacher." + n.strip("`/").removesuffix(".py").replace("/", ".")
               for n in re.findall(r"`([\w/.]+)`", row.split("|")[2]))
        for row in rows[1:]
    ]  # fmt: skip
    assert named == [sorted(floor) for floor in FLOORS]


STAGE_MODULE = re.compile(r"rmteacher\.stages\.(theory|lm)\.(?!params\b)\w+$")


def is_stage_module(name: str) -> bool:
    """One module per DVC stage: src/rmteacher/stages/<track>/<stage>.py."""
    return bool(STAGE_MODULE.match(name))


def test_no_stage_module_imports_another_stage_module():
    """Stages exchange data through declared DVC outputs only; a stage module imports no other
    stage module and no other stage's parameter module."""
    found = [
        f"{name} imports {target}"
        for name in MODULES
        if name.startswith("rmteacher.stages.")
        for target in imports_of(name)
        if target.startswith("rmteacher.stages.")
        and not is_bare_package(target)
        and target.rsplit(".", 1)[1] != name.rsplit(".", 1)[1]
    ]
    assert not found, "\n".join(found)


def test_no_stage_reads_another_stage_s_params():
    """A stage receives everything it uses through its own params object (its group and the
    shared settings it takes) or a declared artifact: no stage or library module reads a params
    group itself (only core.params, the pipeline and the CLI do)."""
    readers = [
        f"{name}: {call}"
        for name in MODULES
        if name.startswith(("rmteacher.stages.", "rmteacher.lm.", "rmteacher.theory."))
        for call in re.findall(r"\w+\.(?:from_file|from_groups)\(|load_params_file\(",
                               MODULES[name].read_text())
    ]  # fmt: skip
    assert not readers, "\n".join(readers)


# issue 17 replaces these verdict modules; their imports are left as they are until then
LOCAL_IMPORTS_EXEMPT = {"rmteacher.lm.analysis.sec42", "rmteacher.verify"}


def test_function_local_imports_say_why():
    """Imports sit at the top of a module; one inside a function is there for a measured cost
    (torch and friends kept out of `rmteacher check`, a scorer's optional package) and says so
    in a comment on its line or the line above."""
    silent = []
    for name, path in MODULES.items():
        if name in LOCAL_IMPORTS_EXEMPT:
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
                if found and not any(
                    "#" in lines[n.lineno - 1] or lines[n.lineno - 2].strip().startswith("#")
                    for n in found
                ):
                    silent.append(f"{name}.{node.name} (line {found[0].lineno})")
    assert not silent, "local imports without a reason: " + ", ".join(silent)


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


def test_parameter_modules_import_no_heavy_library():
    """`rmteacher check` imports every stage's parameter module; torch and transformers load only
    with the stage modules (`run`)."""
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


def entry(stage: str) -> set[str]:
    """The modules a stage's notebook (or a unit's `pg-run`) starts from."""
    if is_unit(stage):
        return {f"rmteacher.stages.lm.{STAGES[stage]['cmd'].split()[2]}"}
    return notebook_imports(stage)


def closure(stage: str) -> set[str]:
    """Every rmteacher module the stage's notebook (or a unit's `pg-run`) can run: the modules it
    imports and all they import, lazy imports too (no stage module imports another)."""
    seen, todo = set(), list(entry(stage))
    while todo:
        name = todo.pop()
        if name in seen or name not in MODULES:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imports_of(name)
    return seen


def notebook_imports(stage: str) -> set[str]:
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
            "src/rmteacher/stages/theory/escape_time.py",
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


# --- DVC stage params -------------------------------------------------------------------------


def declared_params(stage: str) -> set[str]:
    """The stage's params in dvc.yaml, a whole group spelled out as its keys."""
    from rmteacher.core.params import SHARED_GROUPS
    from rmteacher.pipeline import stage_registry

    groups = {**stage_registry(), **SHARED_GROUPS}
    keys = set()
    for entry in STAGES[stage].get("params", []):
        if entry in groups:
            keys |= {f"{entry}.{f.name}" for f in dataclasses.fields(groups[entry])
                     if "group" not in f.metadata}  # fmt: skip
        else:
            keys.add(entry)
    return keys


def received_params(stage: str) -> set[str]:
    """What a notebook stage's params object holds: its own group and the shared keys it takes."""
    from rmteacher.pipeline import stage_registry

    cls = stage_registry()[stage]
    shared = cls.shared_keys()
    return {f"{shared.get(f.name, stage)}.{f.name}" for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("stage", sorted(s for s in LM_OR_THEORY if not is_unit(s)))
def test_a_stage_s_params_are_exactly_the_settings_its_params_object_receives(stage):
    """A stage's params in dvc.yaml are its own group and the shared settings it takes (no other
    stage's group), so a change of any setting it uses reruns it and nothing else does."""
    assert declared_params(stage) == received_params(stage)


UNITS = [(STAGES[s]["cmd"].split()[2], s) for s in STAGES if is_unit(s)]  # (stage, matrix stage)


def perturbed(value):
    """Another valid value of a setting: a number doubled plus one, one more seed, a list of
    names without its last (or only) entry."""
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return (*value, max(value, default=0) + 1)
    if isinstance(value, tuple):
        return value[:-1]
    return value * 2 + 1


def unit_settings(stage: str, unit: str, params) -> object:
    """Everything a seed-0 unit of this kind trains with (its stage's `unit_setup`)."""
    from rmteacher.stages.lm import rloo, sec42_pg

    prompts = [f"prompt {i}" for i in range(4096)]
    generation = {"max_new_tokens": 8, "temperature": 1.0}
    if stage == "rloo":
        specs = [s for s in rloo.run_specs(params, ["fam_n0_c1"]) if rloo.unit_key(s) == (unit, 0)]
        return rloo.unit_setup(params, specs, prompts, generation)
    specs = [s for s in sec42_pg.run_specs(params, ["sft", "sft_quotes"])
             if (s["unit"], s["seed"]) == (unit, 0)]  # fmt: skip
    return sec42_pg.unit_setup(params, specs, prompts, generation)


@pytest.mark.parametrize("stage, name", UNITS)
def test_a_unit_s_params_are_exactly_the_settings_that_change_its_runs(stage, name):
    """Change each setting its stage's params object receives, on its own: the unit's runs
    (their RMs, plans, loop configurations, kept samples and threads) change exactly for the
    keys its matrix stage declares (plus pg.num_processes for rloo's units, which decides how a
    unit is launched). So rloo_noclip does not declare pg.max_grad_norm, sec42_pg_grpo not
    pg.beta, and no unit the list of seeds it is one of (adding a seed creates only that seed's
    units)."""
    from rmteacher.pipeline import stage_registry

    unit = name.removeprefix(f"{stage}_")
    # every Section 4.2 variant, so that the GRPO unit exists (the default run trains RLOO alone)
    variants = {"variants": ("rloo", "grpo", "grpo_group"), "grpo_seeds": (0, 1, 2)}
    base = stage_registry()[stage](learning_rate=1e-3, **(variants if stage == "sec42_pg" else {}))
    changed = {"pg.num_processes"} if stage == "rloo" else set()
    for key in received_params(stage) - {"pg.num_processes"}:  # its group, its pg settings
        field = key.split(".")[1]
        other = dataclasses.replace(base, **{field: perturbed(getattr(base, field))})
        if unit_settings(stage, unit, other) != unit_settings(stage, unit, base):
            changed.add(key)
    assert declared_params(name) == changed
