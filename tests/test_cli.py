"""The `rmteacher` command: params file, profiles, and stage runs that fail fast on bad input."""

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rmteacher import pipeline
from rmteacher.core.params import ParamsError
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
    """A minimal copy of the project layout: dvc.yaml, params.yaml, profiles/, notebooks/."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
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
    """One papermill parameter (`params`), the stage's own parameter class, at most 40 lines of
    code, and no validation, path building or file writing of the notebook's own."""
    cls = stage_registry()[stage]
    notebook = json.loads((ROOT / "notebooks" / f"{stage}.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    namespace: dict = {}
    exec("".join(tagged[0]["source"]), namespace)
    assert {k: v for k, v in namespace.items() if not k.startswith("__")} == {"params": None}
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
        (["main", "--rm", "gold", "--seed", "9"], "rloo: params.yaml plans no main run of 'gold'"),
        (["main", "--seed", "0"], "rloo: a main unit needs an RM"),
        (["family", "--rm", "gold", "--seed", "0"], "rloo: a family unit takes no RM"),
        (["mian", "--rm", "gold", "--seed", "0"], "rloo: unknown unit 'mian'"),
    ],
)
def test_a_unit_params_yaml_does_not_plan_is_one_line_before_compute(project, argv, message):
    result = rmteacher("pg-run", "rloo", *argv, cwd=project)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}")
    assert not (project / "artifacts").exists()


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
    and the kernel runs without the TCP transport warning."""
    outputs = [
        "book/executed/theory_best_of_n.ipynb",
        "metrics/theory_best_of_n.json",
        "book/figures/theory_best_of_n",
    ]

    def snapshot():
        result = rmteacher("run", "theory_best_of_n", cwd=project)
        assert result.returncode == 0, result.stderr
        assert "without encryption" not in result.stderr
        files = sorted(p for out in outputs for p in [project / out, *(project / out).glob("*")])
        return {p: p.read_bytes() for p in files if p.is_file()}

    first = snapshot()
    assert len(first) >= 3
    assert snapshot() == first


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


def _kernels_of(pid: int) -> list[str]:
    """Command lines of running kernels whose connection file names the IPC sockets of `pid`."""
    found = []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    for line in ps.splitlines():
        if "ipykernel_launcher" not in line or "-f " not in line:
            continue
        connection = Path(line.split("-f ", 1)[1].split()[0])
        try:
            if f"rmteacher-kernel-{pid}" in connection.read_text():
                found.append(line)
        except OSError:  # removed by the time it is read: that kernel is gone
            continue
    return found


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


@pytest.mark.parametrize(
    "signum, after_seconds",
    [(signal.SIGINT, 0.3), (signal.SIGINT, 2.0), (signal.SIGTERM, 3.0)],
    ids=["ctrl-c-while-the-kernel-starts", "ctrl-c-mid-cell", "sigterm-mid-cell"],
)
def test_an_interrupted_stage_stops_its_kernel_and_leaves_nothing_that_looks_done(
    project, signum, after_seconds
):
    """Ctrl-C or SIGTERM, while the kernel starts or mid-cell: one line (nothing from the
    kernel, even after its parent exits), exit 130, no executed notebook or metrics file, and no
    kernel of this run left running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rmteacher", "run", "theory_escape_time"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    executed = project / "book" / "executed" / "theory_escape_time.ipynb"
    deadline = time.monotonic() + 60
    while not executed.exists() and time.monotonic() < deadline:  # papermill has begun
        time.sleep(0.05)
    time.sleep(after_seconds)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)  # EOF: the kernel, too, let go of stderr
    assert process.returncode == 130
    assert stderr.strip().splitlines() == [
        "error: stage 'theory_escape_time' interrupted; its executed notebook and metrics "
        "were removed"
    ]
    assert not executed.exists()
    assert not (project / "metrics" / "theory_escape_time.json").exists()
    assert _kernels_of(process.pid) == []
