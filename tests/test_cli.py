"""The `rmteacher` command: params file, profiles, and stage runs that fail fast on bad input."""

import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rmteacher import pipeline
from rmteacher.core.params import ParamsError
from rmteacher.core.stage import parameters_cell
from rmteacher.pipeline import stage_registry

ROOT = Path(__file__).resolve().parents[1]


def rmteacher(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "rmteacher", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path):
    """A minimal copy of the project layout: dvc.yaml, params.yaml, profiles/, notebooks/, and
    the one committed artifact a theory stage reads (theory_best_of_n reads the construction
    theory_accuracy_speed saved)."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    construction = Path("artifacts", "theory_accuracy_speed")
    shutil.copytree(ROOT / construction, tmp_path / construction)
    return tmp_path


def test_committed_params_file_is_the_default_profile():
    assert pipeline.params_match_defaults(ROOT / "params.yaml")
    assert pipeline.render_defaults() == (ROOT / "params.yaml").read_text()


NOTEBOOK_FORBIDDEN = (
    "open(",
    "to_csv",
    "to_json",
    "Path(",
    "write_",
    "savefig",
    "mkdir",
    "from_mapping",
    "ParamsError",
    "raise ",
    "artifacts/",
    "metrics/",
    "plots/",
)


@pytest.mark.parametrize("stage", list(stage_registry()))
def test_notebooks_only_open_their_stage_run_it_draw_and_finish(stage):
    """The parameters cell is exactly what the stage's dataclass generates (`params` and every
    key, each None; so papermill knows every key and a new field cannot be forgotten), then the
    stage's own parameter class, at most 40 lines of code, and no validation, path building or
    file writing of the notebook's own. (It held `params = None` alone before papermill's `-p
    KEY VALUE` was supported.)"""
    cls = stage_registry()[stage]
    notebook = json.loads((ROOT / "notebooks" / f"{stage}.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assert "".join(tagged[0]["source"]) == parameters_cell(cls)
    namespace: dict = {}
    exec("".join(tagged[0]["source"]), namespace)
    keys = [f.name for f in dataclasses.fields(cls)]
    assert {k: v for k, v in namespace.items() if not k.startswith("__")} == dict.fromkeys(
        ["params", *keys]
    )
    code = [c for c in code if c is not tagged[0]]
    text = "\n".join("".join(c["source"]) for c in code)
    module = cls.__module__.rpartition(".")[2]
    assert f"open_stage({module}.{cls.__name__}, params)" in text
    assert f"{module}.run(stage.params" in text and "stage.finish(" in text
    assert not [word for word in NOTEBOOK_FORBIDDEN if word in text]
    assert sum(1 for line in text.splitlines() if line.strip()) <= 40


def test_bad_parameter_fails_before_compute_with_one_line(project):
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("gamma: 0.1\n", "gamma: -0.1\n", 1))
    result = rmteacher("run", "theory_escape_time", cwd=project)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: theory_escape_time.gamma: expected a float > 0 and < 2, got -0.1"
    ]
    assert not (project / "book").exists() and not (project / "metrics").exists()
    assert rmteacher("check", cwd=project).returncode == 2


def test_a_value_only_the_seeded_models_reject_stops_deep_check_and_run(project):
    """gamma = 0.85 is reachable in every tabular setup but not from the seeded MLP policy: the
    plain `check` (no torch) passes it and says so; `check --deep` (the params_check stage) and
    `run` stop with one line before any compute."""
    params = project / "params.yaml"
    text = params.read_text().replace("gamma: 0.1\n", "gamma: 0.85\n", 1)
    # this copy has no models/: a scorer stands in for the committed r_G so that only gamma fails
    params.write_text(text.replace("  gold: models/gold_rm\n", "  gold: vader\n"))
    plain = rmteacher("check", cwd=project)
    assert plain.returncode == 0 and "--deep also builds the seeded models" in plain.stdout
    expected = "error: theory_escape_time.gamma: gamma=0.85 is unreachable in the MLP rarity sweep"
    for argv in (["check", "--deep"], ["run", "theory_escape_time"]):
        result = rmteacher(*argv, cwd=project)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(expected), lines
    assert not (project / "book").exists() and not (project / "metrics").exists()


def test_unknown_stage_group_and_missing_file(project):
    params = project / "params.yaml"
    params.write_text(params.read_text() + "theory_typo:\n  seed: 1\n")
    result = rmteacher("check", cwd=project)
    assert result.returncode == 2 and "unknown group 'theory_typo'" in result.stderr
    result = rmteacher("run", "theory_nothing", cwd=project)
    assert result.returncode == 2 and "unknown stage 'theory_nothing'" in result.stderr
    result = rmteacher("check", "--params", "missing.yaml", cwd=project)
    assert result.returncode == 2 and "no such params file" in result.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["main", "--seed", "9"], "rloo: params.yaml plans no main unit with seed 9"),
        (["noclip", "--rm", "rm_onpolicy_50", "--seed", "0"], "rloo: the noclip unit with seed 0"),
        (["beta0", "--seed", "0"], "rloo: unknown unit 'beta0'"),
        (["mian", "--seed", "0"], "rloo: unknown unit 'mian'"),
    ],
)
def test_a_unit_params_yaml_does_not_plan_is_one_line_before_compute(project, argv, message):
    result = rmteacher("pg-run", "rloo", *argv, cwd=project)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}")
    assert not (
        project / "artifacts" / "rloo_runs"
    ).exists()  # the fixture holds one theory artifact


def test_a_section_4_2_unit_without_its_inputs_is_one_line_before_compute(project):
    """sec42_pg's units: an unknown unit is a params error (exit 2); a planned one whose
    upstream output is missing names the stage to run (exit 1); nothing is written."""
    for argv, code, message in [
        (["grpo_group", "--seed", "0"], 2, "sec42_pg: unknown unit 'grpo_group'"),
        (["rloo", "--seed", "0"], 1, "run the sec42_eval stage first"),
    ]:
        result = rmteacher("pg-run", "sec42_pg", *argv, cwd=project)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == code and len(lines) == 1, lines
        assert lines[0].startswith("error: ") and message in lines[0], lines
    assert not (project / "artifacts" / "sec42_pg_runs").exists()


def test_profile_overlay_keeps_comments_and_restores_defaults(project):
    params = project / "params.yaml"
    changes = pipeline.apply_profile("tiny", params)
    assert any(c.startswith("theory_best_of_n.max_n: 16 -> 8") for c in changes)
    text = params.read_text()
    assert "# largest N" in text and "max_n: 8" in text
    assert not pipeline.params_match_defaults(params)
    pipeline.apply_profile("default", params)
    assert pipeline.params_match_defaults(params)


@pytest.mark.parametrize("profile", sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml")))
def test_every_profile_applies_and_passes_the_deep_check(project, profile, monkeypatch):
    """What `rmteacher profile NAME && rmteacher check --deep` does on any machine (the gpu
    profile included: nothing in it needs a GPU to validate). The paper profile names Hub ids
    (Pythia, ArmoRM, UltraFeedback, AlpacaFarm), so it is checked as a user with internet
    checks it; nothing is fetched."""
    if profile == "paper":
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    params = project / "params.yaml"
    assert pipeline.apply_profile(profile, params)
    pipeline.check_params_file(params, deep=True)


def test_the_paper_profile_offline_is_one_line_naming_what_it_would_fetch(project, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    params = project / "params.yaml"
    before = params.read_text()
    with pytest.raises(ParamsError, match=r"^lm_sft.base_policy: 'EleutherAI/pythia-2.8b' is not"):
        pipeline.apply_profile("paper", params)
    assert params.read_text() == before


def test_a_params_file_outside_any_project_is_one_line(tmp_path):
    outside = tmp_path / "params.yaml"
    outside.write_text((ROOT / "params.yaml").read_text())
    result = rmteacher("profile", "tiny", "--params", str(outside), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no project (dvc.yaml) at or above {tmp_path} or here: profiles/ is not found"
    ]


def test_invalid_profile_leaves_params_untouched(project):
    params = project / "params.yaml"
    before = params.read_text()
    (project / "profiles" / "broken.yaml").write_text("theory_best_of_n:\n  max_n: -3\n")
    with pytest.raises(ParamsError, match="max_n"):
        pipeline.apply_profile("broken", params)
    (project / "profiles" / "typo.yaml").write_text("theory_best_of_nn:\n  max_n: 3\n")
    with pytest.raises(ParamsError, match="unknown stage 'theory_best_of_nn'"):
        pipeline.apply_profile("typo", params)
    with pytest.raises(ParamsError, match="available: broken, gpu, paper, tiny, typo, default"):
        pipeline.apply_profile("nope", params)
    assert params.read_text() == before


def test_executed_notebook_carries_no_timestamps_progress_or_widget_state(tmp_path):
    """tidy_executed keeps what the book reads (glued records, tables) and drops run-specific
    bytes: timestamps, durations, absolute paths, the random id of the injected cell, progress
    widgets and stderr progress lines."""
    path = tmp_path / "book" / "executed" / "s.ipynb"
    path.parent.mkdir(parents=True)
    record = {"application/papermill.record/text/plain": "0.5"}
    nb = {
        "metadata": {
            "widgets": {"state": {}},
            "papermill": {
                "start_time": "2026-01-01T00:00:00",
                "duration": 3.0,
                "environment_variables": {"HOME": "/root"},
                "input_path": str(tmp_path / "notebooks" / "s.ipynb"),
                "parameters": {"params": {"seed": 0}},
            },
        },
        "cells": [
            {
                "id": "a1b2c3",
                "cell_type": "code",
                "metadata": {"tags": ["injected-parameters"], "execution": {"x": "t"}},
                "outputs": [],
                "source": "params = {}",
            },
            {
                "id": "keep",
                "cell_type": "code",
                "metadata": {"papermill": {"status": "completed", "duration": 1.0}},
                "source": "run()",
                "outputs": [
                    {"output_type": "display_data", "data": {pipeline.WIDGET_MIME: {}}},
                    {"output_type": "stream", "name": "stderr", "text": "50%|##| 1/2 [3.1it/s]"},
                    {"output_type": "stream", "name": "stderr", "text": "UserWarning: kept\n"},
                    {"output_type": "display_data", "data": record, "metadata": {}},
                ],
            },
        ],
    }
    path.write_text(json.dumps(nb))
    pipeline.tidy_executed(path, tmp_path)
    tidy = json.loads(path.read_text())
    assert tidy["metadata"]["papermill"] == {
        "input_path": "notebooks/s.ipynb",
        "parameters": {"params": {"seed": 0}},
    }
    assert "widgets" not in tidy["metadata"]
    injected, kept = tidy["cells"]
    assert injected["id"] == "injected-parameters" and "execution" not in injected["metadata"]
    assert "remove-cell" in injected["metadata"]["tags"]  # papermill's plumbing: not in the book
    assert kept["metadata"]["papermill"] == {"status": "completed"}
    assert [out.get("text") or out["data"] for out in kept["outputs"]] == [
        "UserWarning: kept\n",
        record,
    ]


def test_a_stage_rerun_with_the_same_seed_writes_the_same_bytes(project):
    """The executed notebook, metrics and figures of a theory stage are identical on a rerun,
    and the kernel runs without the TCP transport warning. (Run by hand, each run writes its own
    scratch folder, so the two folders are compared.)"""
    outputs = [
        "book/executed/theory_best_of_n.ipynb",
        "metrics/theory_best_of_n.json",
        "book/figures/theory_best_of_n",
    ]

    def snapshot():
        before = set((project / "runs" / "theory_best_of_n").glob("*"))
        result = rmteacher("run", "theory_best_of_n", cwd=project)
        assert result.returncode == 0, result.stderr
        assert "without encryption" not in result.stderr
        (folder,) = set((project / "runs" / "theory_best_of_n").glob("*")) - before
        files = sorted(p for out in outputs for p in [folder / out, *(folder / out).glob("*")])
        return {p.relative_to(folder): p.read_bytes() for p in files if p.is_file()}

    first = snapshot()
    assert len(first) >= 3
    assert snapshot() == first
    assert not (project / "metrics").exists() and not (project / "book").exists()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("vaderr", "rm_train.gold: 'vaderr' is neither a registered scorer (afinn, length,"),
        ("some-org/some-rm", "Hugging Face Hub ids cannot be fetched offline"),
        ("{empty_dir}", "has no config.json, so it is not a saved model"),
        ("no_such_module_xyz:score", "rm_train.gold: cannot import reward"),
    ],
)
def test_bad_reward_spec_is_one_line_before_compute(project, spec, message, monkeypatch):
    """A reward spec in params.yaml that names nothing usable stops `check` and `run` with one
    line (no traceback) and leaves no output behind."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (project / "empty").mkdir()
    spec = spec.format(empty_dir=project / "empty")
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  gold: models/gold_rm\n", f"  gold: {spec}\n"))
    for argv in (["check"], ["run", "rm_train"]):
        result = rmteacher(*argv, cwd=project)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (project / "book").exists() and not (project / "metrics").exists()


def test_after_an_interrupt_the_kernel_teardown_logs_nothing(caplog):
    """What nbclient (through papermill's logger) and asyncio log while an interrupted kernel is
    torn down is dropped; before the interrupt, and in the next stage, those loggers speak."""
    loggers = [logging.getLogger(name) for name in pipeline.TEARDOWN_LOGGERS]
    for logger in loggers:
        logger.addFilter(pipeline._not_after_interrupt)
    try:
        pipeline._INTERRUPTED.clear()
        with caplog.at_level(logging.ERROR):
            loggers[0].error("a kernel death with no interrupt")
            with pytest.raises(KeyboardInterrupt):
                pipeline._interrupt(signal.SIGTERM, None)
            for logger in loggers:
                logger.error("Kernel died while waiting for execute reply.")
        assert [record.getMessage() for record in caplog.records] == [
            "a kernel death with no interrupt"
        ]
    finally:
        pipeline._INTERRUPTED.clear()
        for logger in loggers:
            logger.removeFilter(pipeline._not_after_interrupt)


class StageProcess:
    """`rmteacher run STAGE` in the background with fast progress lines, its stderr read as it
    comes (progress lines apart)."""

    def __init__(self, project, *args, stage="theory_escape_time", argv_prefix=()):
        env = dict(os.environ, RMTEACHER_PROGRESS_INTERVAL="0.2")
        argv = [*argv_prefix, sys.executable, "-m", "rmteacher", "run", stage, *args]
        self.stage, self.project = stage, project
        self.process = subprocess.Popen(
            argv, cwd=project, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, test, timeout=90):
        deadline = time.monotonic() + timeout
        while not test() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert test(), f"timed out; stderr so far: {self.lines[-5:]}"

    def progress_says(self, words):
        return lambda: any(words in line for line in self.lines if line.startswith("["))

    def scratch_metrics(self):
        return list(self.project.glob(f"runs/{self.stage}/*/metrics/{self.stage}.json"))

    def finish(self):
        self.process.wait(timeout=90)
        self.reader.join(timeout=30)  # EOF: the kernel, too, let go of stderr
        return [line for line in self.lines if not re.match(r"^\[\w+ \d+m\d+s\] ", line)]


def _interrupt_at(stage: StageProcess, moment: str, signum) -> None:
    """Send `signum` at `moment` of the stage's life."""
    pid = stage.process.pid
    if moment == "0.5 s (imports)":
        time.sleep(0.5)
    elif moment == "deep check":
        stage.wait_for(stage.progress_says("checking the params"))
    elif moment == "kernel start":
        stage.wait_for(stage.progress_says("starting the kernel"))
    elif moment == "a cell":
        stage.wait_for(stage.progress_says("(result = escape_time.run(stage.params))"))
    elif moment == "teardown (after the metrics)":  # freeze it there, so it cannot finish first
        stage.wait_for(stage.scratch_metrics)
        os.kill(pid, signal.SIGSTOP)
        os.kill(pid, signum)
        os.kill(pid, signal.SIGCONT)
        return
    os.kill(pid, signum)


MOMENTS = [
    "0.5 s (imports)",
    "deep check",
    "kernel start",
    "a cell",
    "teardown (after the metrics)",
]


@pytest.mark.parametrize(
    "moment, signum",
    [(m, signal.SIGINT) for m in MOMENTS] + [("a cell", signal.SIGTERM)],
    ids=[f"ctrl-c-{m.split(' (')[0].replace(' ', '-')}" for m in MOMENTS] + ["sigterm-a-cell"],
)
def test_an_interrupt_at_any_moment_is_one_line_exit_130_and_leaves_nothing(
    project, moment, signum, kernels_of
):
    """Ctrl-C or SIGTERM at any moment of a stage's life - while Python imports, in the deep
    check, while the kernel starts, in a cell, after the last cell wrote its metrics: one line
    (nothing from the kernel, even after its parent exits), exit 130, no process of the run
    left, and nothing written that looks done (no scratch folder, no executed notebook, no
    metrics)."""
    stage = StageProcess(project)
    _interrupt_at(stage, moment, signum)
    errors = stage.finish()
    assert stage.process.returncode == 130, errors
    assert len(errors) == 1, errors
    assert re.match(
        r"^error: (stage 'theory_escape_time' interrupted|rmteacher interrupted)", errors[0]
    ), errors
    assert kernels_of(stage.process.pid) == []
    assert not list(project.glob("runs/theory_escape_time/*"))
    assert not (project / "book").exists() and not (project / "metrics").exists()


def test_a_kernel_killed_from_outside_is_one_line_and_leaves_nothing(project, kernel_pids):
    """The system killing the kernel (what the OOM killer does): one line saying the kernel died,
    exit 1, no half-written executed notebook or scratch folder."""
    stage = StageProcess(project)
    stage.wait_for(stage.progress_says("(result = escape_time.run(stage.params))"))
    kernels = kernel_pids(stage.process.pid)
    assert kernels
    for pid in kernels:
        os.kill(pid, signal.SIGKILL)
    errors = stage.finish()
    assert stage.process.returncode == 1, errors
    assert len(errors) == 1 and "its kernel died" in errors[0], errors
    assert not list(project.glob("runs/theory_escape_time/*"))


def test_a_stage_whose_parent_is_killed_stops_with_its_kernel(project, kernels_of):
    """SIGKILL to the process that started `rmteacher run` (no handler sees it): the stage gets
    the parent-death signal, shuts its kernel down and removes its half-written scratch folder
    within a few seconds. (tests/test_pipeline.py does the same to a real `dvc repro`.)"""
    parent = "import subprocess, sys; subprocess.run(sys.argv[1:])"
    stage = StageProcess(project, argv_prefix=(sys.executable, "-c", parent))
    stage.wait_for(stage.progress_says("(result = escape_time.run(stage.params))"))
    children = subprocess.run(
        ["pgrep", "-P", str(stage.process.pid)], capture_output=True, text=True
    ).stdout.split()
    (child,) = map(int, children)
    os.kill(stage.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()
    stage.finish()
    assert any("stopped: its parent process" in line for line in stage.lines), stage.lines[-3:]
    assert kernels_of(child) == []
    assert not list(project.glob("runs/theory_escape_time/*"))


def test_run_set_changes_a_value_for_one_run_in_a_scratch_folder(project, glued):
    """`rmteacher run STAGE --set KEY=VALUE`: the value is validated like params.yaml's, the run
    writes its own folder (the executed notebook glues the new value, the metric moves) and says
    where; params.yaml and DVC's outputs stay as they are."""
    before = (project / "params.yaml").read_text()
    result = rmteacher(
        "run", "theory_best_of_n", "--set", "max_n=3", "--set", "n_mc=200", cwd=project
    )
    assert result.returncode == 0, result.stderr
    (folder,) = (project / "runs" / "theory_best_of_n").iterdir()
    assert f"outputs under runs/theory_best_of_n/{folder.name}/" in result.stdout
    executed = (folder / "book" / "executed" / "theory_best_of_n.ipynb").read_text()
    assert (
        '"text/plain": "3"' in executed.split('"param_max_n"')[0][-400:]
        or '"param_max_n"' in executed
    )
    metrics = json.loads((folder / "metrics" / "theory_best_of_n.json").read_text())
    committed = json.loads((ROOT / "metrics" / "theory_best_of_n.json").read_text())
    assert metrics["bon_gold_at_max_n_accurate"] != committed["bon_gold_at_max_n_accurate"]
    assert "max_n: 3" in (folder / "params.yaml").read_text()
    assert (project / "params.yaml").read_text() == before
    assert not (project / "metrics").exists() and not (project / "book").exists()


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("max_nn=3", "theory_best_of_n: unknown parameter 'max_nn' (did you mean 'max_n'?)"),
        ("max_n=-3", "theory_best_of_n.max_n: expected an integer >= 1 and <= 4096, got -3"),
        ("noise=[1", "--set noise: not a YAML value"),
        ("max_n", "--set: expected KEY=VALUE, got 'max_n'"),
    ],
)
def test_run_set_with_a_bad_key_or_value_is_one_line_before_compute(project, assignment, message):
    result = rmteacher("run", "theory_best_of_n", "--set", assignment, cwd=project)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}")
    assert not (project / "runs").exists()


def papermill(project, *args):
    return subprocess.run(
        [sys.executable, "-m", "papermill", "notebooks/theory_best_of_n.ipynb", "out.ipynb",
         "--no-progress-bar", *args],
        cwd=project, text=True, capture_output=True, timeout=300,
    )  # fmt: skip


def test_papermill_p_sets_one_key_and_keeps_the_others(project, glued):
    """`papermill NB OUT -p KEY VALUE`, papermill's own convention: the stage runs with that
    value (the glued parameter and a metric change), every other key keeps params.yaml's value,
    nothing is written into DVC's outputs, and the notebook says where it wrote."""
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  n_random_rms: 50\n", "  n_random_rms: 7\n"))
    result = papermill(project, "-p", "max_n", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Passed unknown parameter" not in result.stderr
    out = project / "out.ipynb"
    assert glued(out, "param_max_n") == "3"
    assert glued(out, "param_n_random_rms") == "7"  # params.yaml's, not the default 50
    committed = json.loads((ROOT / "metrics" / "theory_best_of_n.json").read_text())
    (folder,) = (project / "runs" / "theory_best_of_n").iterdir()
    metrics = json.loads((folder / "metrics" / "theory_best_of_n.json").read_text())
    assert metrics["bon_n_rms_compared"] == 9 != committed["bon_n_rms_compared"]
    assert f"writes under runs/theory_best_of_n/{folder.name}/" in out.read_text()
    assert not (project / "metrics").exists() and not (project / "book").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["-p", "max_nn", "3"], "'max_nn' is not a parameter of this stage (nearest: 'max_n')"),
        (["-p", "nosie", "0.1"], "'nosie' is not a parameter of this stage (nearest: 'noise')"),
        (["-p", "max_n", "0"], "theory_best_of_n.max_n: expected an integer >= 1"),
        (["-y", "n_random_rms: many"], "theory_best_of_n.n_random_rms: expected an integer"),
    ],
    ids=["unknown-name", "unknown-name-2", "bad-value", "bad-yaml-value"],
)
def test_papermill_with_an_unknown_name_or_a_bad_value_stops_with_one_line(project, args, message):
    """Never ignored: the run stops in the parameters' cell, and the error the notebook and
    papermill show is one line (no frames), before any compute or scratch folder."""
    result = papermill(project, *args)
    assert result.returncode != 0
    nb = json.loads((project / "out.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    (error,) = errors
    assert error["ename"] == "ParamsError" and message in error["evalue"]
    assert error["traceback"] == [f"ParamsError: {error['evalue']}"]
    assert not (project / "runs").exists()


def test_pg_run_by_hand_writes_a_scratch_folder_not_the_unit_s_dvc_output(project, monkeypatch):
    """`rmteacher pg-run` outside DVC (no --out) trains into runs/, never into the unit's DVC
    output folder; under DVC (DVC_STAGE set) it writes the unit's folder."""
    from rmteacher import cli
    from rmteacher.core import lifeline

    seen = []
    monkeypatch.setattr(pipeline, "run_unit", lambda *args, out=None: seen.append(out) or 0)
    monkeypatch.setattr(lifeline, "bind_to_parent", lambda: None)  # not on pytest's process
    monkeypatch.chdir(project)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert cli.main(["pg-run", "rloo", "main", "--seed", "0"]) == 0
        assert seen[-1].startswith("runs/rloo_main/seed_0/")
        monkeypatch.setenv("DVC_STAGE", "rloo_main@0")
        assert cli.main(["pg-run", "rloo", "main", "--seed", "0"]) == 0
        assert seen[-1] is None
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


SWALLOWED_INTERRUPT = """
import contextlib, signal, sys, time, weakref
from rmteacher import interrupts, pipeline

signal.signal(signal.SIGINT, pipeline._interrupt)


class Held:
    pass


def callback(ref):  # the signal lands while Python runs a weakref callback
    signal.raise_signal(signal.SIGINT)
    sum(range(1000))


guarded = sys.argv[1] == "guarded"
try:
    with interrupts.redelivered_if_swallowed() if guarded else contextlib.nullcontext():
        held = Held()
        ref = weakref.ref(held, callback)
        del held
        time.sleep(2)
        print("carried on")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("mode", ["guarded", "bare"])
def test_a_ctrl_c_python_swallows_in_a_weakref_callback_still_stops_the_command(mode):
    """Python cannot raise out of a weakref callback (the import system's module locks run one):
    it prints "Exception ignored" with a traceback and carries on. Under the guard every command
    runs in, that interrupt is delivered again and stops the command with no traceback; the bare
    run shows the hazard is real."""
    result = subprocess.run(
        [sys.executable, "-c", SWALLOWED_INTERRUPT, mode],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
    )
    if mode == "guarded":
        assert (result.stdout, result.stderr) == ("interrupted\n", ""), result
    else:
        assert result.stdout == "carried on\n" and "Exception ignored" in result.stderr, result


def test_an_interrupt_a_library_catches_and_drops_still_stops_the_stage(project, monkeypatch):
    """A Ctrl-C whose KeyboardInterrupt some library code catches and drops (a bare `except`)
    does not let the stage finish as if nothing happened: it ends as interrupted, and its signal
    handlers are restored."""

    def execute_under_a_bare_except(run, params, printer, channel):
        try:
            signal.raise_signal(signal.SIGINT)  # the stage's handler raises here
            time.sleep(1)
        except KeyboardInterrupt:
            pass  # what the library does with it
        return 1.0

    monkeypatch.setattr(pipeline, "_execute", execute_under_a_bare_except)
    monkeypatch.chdir(project)
    with pytest.raises(pipeline.StageInterrupted, match="stage 'theory_escape_time' interrupted"):
        pipeline.run_stage("theory_escape_time")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
