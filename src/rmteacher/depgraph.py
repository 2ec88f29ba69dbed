"""Which library files a pipeline stage really runs: the rmteacher modules its notebook imports,
followed through every import statement of those modules (lazy ones inside functions too).
`scripts/sync_stage_deps.py` writes these lists into dvc.yaml and a test keeps them in sync, so
an edit reruns exactly the stages whose code changed."""

from __future__ import annotations

import ast
import json
from pathlib import Path

RUNNER_FILES = ("src/rmteacher/params.py", "src/rmteacher/outputs.py", "src/rmteacher/pipeline.py")


def module_file(name: str, src: Path) -> Path | None:
    """The file of module `name` under `src`, or None if it is not one of ours."""
    base = src / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(source: str, package: str, src: Path) -> set[str]:
    """rmteacher modules named by any import statement in `source`, resolved from `package`."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(parent + ([module] if module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.startswith("rmteacher") and module_file(n, src)}


def module_closure(roots: set[str], src: Path) -> set[Path]:
    """Files of every rmteacher module reachable from `roots`, package __init__ files included."""
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        path = module_file(name, src)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        package = name if path.name == "__init__.py" else ".".join(parts[:-1])
        todo.extend(imported_modules(path.read_text(), package, src))
    return seen


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def stage_code_files(stage: str, root: Path) -> list[str]:
    """Repository-relative paths of the library files stage `stage` runs: its notebook's import
    closure plus the runner (`rmteacher run` validates params and executes the notebook)."""
    src = root / "src"
    roots = imported_modules(notebook_code(root / "notebooks" / f"{stage}.ipynb"), "rmteacher", src)
    files = {str(p.relative_to(root)) for p in module_closure(roots, src)}
    return sorted(files | set(RUNNER_FILES))
