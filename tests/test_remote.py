"""The README's remote and experiment sections tell the truth: the table of what the DVC remote
holds is the one dvc.lock gives, `.dvcignore` keeps out only what no stage depends on, every
documented experiment names the stages it runs, and on a fresh clone without the cache the
no-cache experiments run exactly those stages. (The push / clone / pull round trip runs on the
tiny pipeline in tests/test_pipeline.py.)"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)


def load_roundtrip():
    spec = importlib.util.spec_from_file_location(
        "remote_roundtrip", ROOT / "benchmarks" / "remote_roundtrip.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_readme_lists_what_the_remote_holds_as_dvc_lock_records_it():
    """The README table is generated from dvc.lock's cached outputs (every one has a described
    row, else the generator stops): after a rerun, regenerate it with
    `python benchmarks/remote_roundtrip.py --inventory --write-readme`."""
    roundtrip = load_roundtrip()
    outputs = roundtrip.cached_outputs(ROOT)
    assert {o.stage for o in outputs} >= {"lm_sft", "rm_train", "rm_eval", "rloo", "sec42_eval"}
    shown = roundtrip.readme_block((ROOT / "README.md").read_text(), roundtrip.INVENTORY_BLOCK)
    assert shown == roundtrip.inventory_markdown(outputs), "stale: regenerate the README table"
    assert "cache: false" not in shown and "book/_build" not in shown


def test_dvcignore_hides_no_declared_dependency():
    """A dvcignored path is invisible to DVC: as a dependency it would never rerun its stage.
    So no anchored entry is, or holds, a stage's declared dependency; one inside a cached output
    names a single file (what that output leaves out), never a pattern."""
    from dvc.repo import Repo

    entries = [  # the anchored ones (the others keep bytecode out of code deps)
        line.strip().removeprefix("/").rstrip("/")
        for line in (ROOT / ".dvcignore").read_text().splitlines()
        if line.startswith("/")
    ]
    assert entries
    with Repo(str(ROOT)) as repo:
        root = Path(repo.root_dir).resolve()
        deps = {Path(d.fs_path).relative_to(root).as_posix() for d in repo.index.deps}
        cached = {
            Path(o.fs_path).relative_to(root).as_posix() for o in repo.index.outs if o.use_cache
        }
        for entry in entries:
            assert not any(d == entry or d.startswith(entry + "/") for d in deps), entry
            if any(entry.startswith(out + "/") for out in cached):
                assert not any(c in entry for c in "*?["), f"name one file: {entry}"
                assert repo.dvcignore.is_ignored_file(str(root / entry)), entry


def test_dvc_bookkeeping_inside_a_folder_dependency_is_dvcignored():
    """DVC writes a .gitignore beside every output it caches (one line per output, in the order
    the stages ran). Where that lands inside another stage's folder dependency (the joins read
    their units' folders), it would make the join's hash depend on git bookkeeping and run order:
    each such .gitignore is dvcignored, for every stage, including the matrix stages' units."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        root = Path(repo.root_dir).resolve()
        deps = {Path(d.fs_path).relative_to(root).as_posix() for d in repo.index.deps}
        outs = [Path(o.fs_path).relative_to(root) for o in repo.index.outs if o.use_cache]
        written = {(out.parent / ".gitignore").as_posix() for out in outs if out.parent != Path()}
        inside = sorted(g for g in written if any(g.startswith(d + "/") for d in deps))
        assert any("_runs/" in g for g in inside)  # the units' folders are among them
        shown = [g for g in inside if not repo.dvcignore.is_ignored_file(str(root / g))]
        assert not shown, f"add to .dvcignore: {shown}"


def test_every_experiment_in_the_readme_names_the_stages_it_runs(readme_experiments):
    """Every `dvc exp run` line of a README code block sits in an experiments block (so a test
    runs it) after a `# runs:` list of existing stages."""
    from dvc.repo import Repo

    text = readme_experiments.text
    fenced = [block.split("\n", 1)[1] for block in text.split("```")[1::2] if "\n" in block]
    in_code = [
        line for block in fenced for line in block.splitlines() if line.startswith("dvc exp run")
    ]
    kinds = {kind for kind, _ in readme_experiments.blocks()}
    assert kinds == {"no-cache", "pulled"}
    documented = [command for kind in kinds for command, _ in readme_experiments.commands(kind)]
    assert len(documented) == len(in_code) >= 4  # none outside an experiments block
    with Repo(str(ROOT)) as repo:
        stages = {stage.name for stage in repo.index.stages}
    for kind in kinds:
        for command, named in readme_experiments.commands(kind):
            overrides, targets, _ = readme_experiments.parse(command)
            assert overrides and named >= {"params_check", *targets} and named <= stages, command


@pytest.mark.slow
def test_readme_experiments_run_their_stages_on_a_clone_without_the_cache(
    readme_experiments, tmp_path
):
    """On a fresh clone (this checkout's files in a new repository, no DVC cache), each
    no-cache experiment of the README, as `dvc exp run --dry`, would run exactly the stages the
    README names; `make pull` stops with one line while the remote's URL is the placeholder."""
    names = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    clone = tmp_path / "clone"
    for name in names:
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes((ROOT / name).read_bytes())
    env = dict(
        os.environ,
        PATH=f"{VENV / 'bin'}:{os.environ['PATH']}",
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        DVC_NO_ANALYTICS="1",
    )
    subprocess.run(
        "git init -q && git add -A && git commit -qm clone",
        cwd=clone,
        env=env,
        shell=True,
        check=True,
    )
    assert not (clone / "artifacts" / "lm_sft").exists()  # no cached output here
    commands = readme_experiments.commands("no-cache")
    assert commands
    for command, named in commands:
        assert readme_experiments.would_run(clone, command, env, pulled=False) == named, command
    pull = subprocess.run(
        ["make", "-o", str(VENV / ".installed"), "pull", f"VENV={VENV}"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert pull.returncode != 0
    assert pull.stderr.count("error:") == 1 and "dvc remote modify --local storage" in pull.stderr
