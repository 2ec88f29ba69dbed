"""The README and the book name real things: every repository path in a code span exists, and
every `file.py::test_name` they cite is a test in that file."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "book").rglob("*.md"))]
DOCS = [d for d in DOCS if "_build" not in d.parts and "_vendor" not in d.parts]
# where a path written relative to a package (e.g. `lm/pg/loop.py`) is looked up
BASES = [
    ROOT,
    ROOT / "src" / "rmteacher",
    ROOT / "src" / "rmteacher" / "theory",
    ROOT / "src" / "rmteacher" / "lm",
]
TOP_DIRS = ("src/", "tests/", "notebooks/", "scripts/", "benchmarks/", "profiles/", "examples/")
SUFFIXES = (".py", ".ipynb", ".yaml", ".yml", ".md", ".txt", ".sh")
GENERATED = ("executed/", "figures/", "_build", "artifacts/", "metrics/", "plots/", "report/")
SPAN = re.compile(r"`([^`\s]+)`")


def mentioned_paths(text: str):
    for span in SPAN.findall(text):
        path, _, test = span.partition("::")
        looks_like_path = "/" in path and (path.startswith(TOP_DIRS) or path.endswith(SUFFIXES))
        generated = path.startswith("../") or any(d in path for d in GENERATED)
        if looks_like_path and not generated and not any(c in path for c in "<>*{}$"):
            yield path.rstrip("/"), test


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_paths_named_in_the_docs_exist(doc):
    missing = []
    for path, test in mentioned_paths(doc.read_text()):
        found = [base / path for base in BASES if (base / path).exists()]
        if not found:
            missing.append(path)
        elif test and not any(
            f.is_file() and re.search(rf"def {re.escape(test)}\(", f.read_text()) for f in found
        ):
            missing.append(f"{path}::{test}")
    assert not missing, f"{doc.relative_to(ROOT)} names what does not exist: {missing}"
