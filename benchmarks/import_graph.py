"""The package's import graph in numbers: stage-to-stage edges, imports that run up the floors,
package cycles, function-local imports and stages reading another stage's parameter group.

    python benchmarks/import_graph.py [SRC]     # default: this checkout's src/

Floors, lowest first (issue 18): core and paper; metrics and rewards; theory and lm; report;
the stage modules; pipeline, outcomes, verify; cli. A stage module is one module per DVC stage
(`stages/<track>/<stage>.py`, before the move `theory/experiments/<stage>.py` and
`lm/experiments/<stage>.py`); their parameter modules and package files are not stages. The old
layout is mapped onto the same floors, so a checkout before and after the move compare.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

FLOORS = [
    ("core", ["rmteacher.core", "rmteacher.paper"]),
    ("metrics, rewards", ["rmteacher.metrics", "rmteacher.rewards"]),
    ("theory, lm", ["rmteacher.theory", "rmteacher.lm"]),
    ("report", ["rmteacher.report"]),
    ("stages", ["rmteacher.stages"]),
    ("pipeline", ["rmteacher.pipeline", "rmteacher.outcomes", "rmteacher.verify"]),
    ("cli", ["rmteacher.cli", "rmteacher.__main__"]),
]
OLD_STAGE_PACKAGES = ("rmteacher.theory.experiments", "rmteacher.lm.experiments")
OLD_HELPERS = {"rmteacher.theory.experiments.common", "rmteacher.theory.experiments.rarity"}


def module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_stage(name: str) -> bool:
    """One module per DVC stage (not a package file, parameter module or helper)."""
    parts = name.split(".")
    if name.startswith("rmteacher.stages."):
        return len(parts) == 4 and parts[3] != "params"
    return name.startswith(OLD_STAGE_PACKAGES) and len(parts) == 4 and name not in OLD_HELPERS


def floor(name: str) -> int | None:
    if is_stage(name) or name in OLD_STAGE_PACKAGES or name.startswith("rmteacher.stages"):
        return 4
    for index, (_, prefixes) in enumerate(FLOORS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return index
    return None


def package(name: str) -> str:
    """The floor unit a cycle is counted between (core, lm, report, stages, ...): a top-level
    folder, with the old layout's stage modules counted as `stages`."""
    if is_stage(name) or name.startswith(OLD_STAGE_PACKAGES) and name not in OLD_HELPERS:
        return "stages"
    return name.split(".")[1] if "." in name else name


def folder(name: str) -> str:
    """The top-level folder (or module) of the package a module sits in: lm, report, ..."""
    return name.split(".")[1] if "." in name else name


class Imports(ast.NodeVisitor):
    """Every rmteacher import of one module: (target, function-local?, type-checking only?)."""

    def __init__(self, name: str, is_package: bool, modules: set[str]):
        self.package = name if is_package else name.rpartition(".")[0]
        self.modules, self.depth, self.type_only = modules, 0, False
        self.found: list[tuple[str, bool, bool]] = []

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node):
        checking = ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        self.type_only, before = checking or self.type_only, self.type_only
        for child in node.body:
            self.visit(child)
        self.type_only = before
        for child in node.orelse:
            self.visit(child)

    def _add(self, candidates):
        targets = {c for c in candidates if c in self.modules}
        # `from package import module` names the module; otherwise the package itself
        best = {t for t in targets if not any(o != t and o.startswith(t + ".") for o in targets)}
        for target in sorted(best):
            self.found.append((target, self.depth > 0, self.type_only))

    def visit_Import(self, node):
        for alias in node.names:
            self._add([alias.name])

    def visit_ImportFrom(self, node):
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
        if base.startswith("rmteacher"):
            self._add([base] + [f"{base}.{a.name}" for a in node.names])


def analyse(src: Path) -> dict:
    files = {module_name(src, p): p for p in sorted(src.rglob("*.py"))}
    modules = set(files)
    edges: dict[str, list[tuple[str, bool, bool]]] = {}
    for name, path in files.items():
        visitor = Imports(name, path.name == "__init__.py", modules)
        visitor.visit(ast.parse(path.read_text()))
        edges[name] = visitor.found
    runtime = [
        (a, b, local) for a, found in edges.items() for b, local, typed in found if not typed
    ]
    stage_edges = sorted({(a, b) for a, b, _ in runtime if is_stage(a) and is_stage(b) and a != b})
    upward = sorted(
        {
            (a, b)
            for a, b, _ in runtime
            if floor(a) is not None and floor(b) is not None and floor(b) > floor(a)
        }
    )
    cycles = {}
    for label, unit in (("floors", package), ("folders", folder)):
        graph = defaultdict(set)
        for a, b, _ in runtime:
            if unit(a) != unit(b):
                graph[unit(a)].add(unit(b))
        cycles[label] = strongly_connected(graph)
    reads = other_stage_reads(files)
    return {
        "modules": len(modules),
        "stage modules": sum(is_stage(m) for m in modules),
        "internal imports": len(runtime),
        "function-local imports": sum(local for _, _, local in runtime),
        "stage-to-stage edges": stage_edges,
        "upward edges": upward,
        "cycles between floors": cycles["floors"],
        "cycles between top-level folders": cycles["folders"],
        "reads of another stage's group": reads,
    }


def strongly_connected(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Groups of packages that import each other, directly or through others."""
    nodes = sorted(set(graph) | {b for targets in graph.values() for b in targets})
    reach = {n: set(graph.get(n, ())) for n in nodes}
    changed = True
    while changed:
        changed = False
        for n in nodes:
            new = set().union(*(reach[m] for m in reach[n])) - reach[n]
            if new:
                reach[n] |= new
                changed = True
    groups = {tuple(sorted({n} | {m for m in reach[n] if n in reach[m]})) for n in nodes}
    return sorted(g for g in groups if len(g) > 1)


def other_stage_reads(files: dict[str, Path]) -> list[str]:
    """`SomeParams.from_file()` calls in stage modules whose class is not the module's own."""
    found = []
    for name, path in files.items():
        if not is_stage(name):
            continue
        tree = ast.parse(path.read_text())
        own = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "from_file"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id not in own
            ):
                found.append(f"{name}: {node.func.value.id}.from_file() (line {node.lineno})")
    return found


def main(src: Path) -> None:
    result = analyse(src)
    print(f"import graph of {src}")
    print("| measure | count |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {len(value) if isinstance(value, list) else value} |")
    for key, value in result.items():
        if isinstance(value, list) and value:
            print(f"\n{key}:")
            for item in value:
                print("  " + (" -> ".join(item) if isinstance(item, tuple) else item))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "src")
