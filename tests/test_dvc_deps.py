"""dvc.yaml lists, for every notebook stage, exactly the library files its notebook runs
(rmteacher.depgraph follows every import), so an edit reruns exactly the stages whose code
changed: editing the Section 4.2 analysis must not retrain the reward models, and no stage may
miss a module it uses."""

import importlib.util
from pathlib import Path

from rmteacher.depgraph import imported_modules, module_closure, stage_code_files

ROOT = Path(__file__).resolve().parents[1]


def load_sync_script():
    spec = importlib.util.spec_from_file_location("sync", ROOT / "scripts" / "sync_stage_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dvc_yaml_deps_match_the_import_graph():
    assert load_sync_script().synced_text(ROOT) == (ROOT / "dvc.yaml").read_text(), (
        "dvc.yaml deps are out of date: run python scripts/sync_stage_deps.py"
    )


def test_import_graph_follows_lazy_and_relative_imports(tmp_path):
    package = tmp_path / "src" / "rmteacher"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("def f():\n    from .b import g\n    return g()\n")
    (package / "sub" / "b.py").write_text("from rmteacher.c import h\ng = h\n")
    (package / "c.py").write_text("import numpy\nh = 1\n")
    (package / "unused.py").write_text("")
    roots = imported_modules("from rmteacher.sub.a import f", "rmteacher", tmp_path / "src")
    files = {p.relative_to(tmp_path).as_posix() for p in module_closure(roots, tmp_path / "src")}
    assert files == {
        "src/rmteacher/__init__.py",
        "src/rmteacher/sub/__init__.py",
        "src/rmteacher/sub/a.py",
        "src/rmteacher/sub/b.py",
        "src/rmteacher/c.py",
    }


def test_report_stage_does_not_depend_on_training_code():
    files = stage_code_files("sec41_report", ROOT)
    assert "src/rmteacher/lm/analysis.py" in files
    assert "src/rmteacher/lm/reward_training.py" not in files
    assert "src/rmteacher/lm/analysis.py" not in stage_code_files("lm_sft", ROOT)
