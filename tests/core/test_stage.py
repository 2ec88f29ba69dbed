"""A stage as its notebook sees it: `open_stage` validates the injected group (or reads
params.yaml's), and `finish` writes plain-JSON metrics and plot data and glues every metric."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmteacher.core import stage as stage_module  # its glue is myst_nb's, bound at import
from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.core.stage import (
    STAGE_LOG_ENV,
    GluedText,
    Stage,
    notebook_overrides,
    open_stage,
    parameters_cell,
    plain,
)


@dataclass(frozen=True)
class ToyParams(StageParams):
    """A stage for these tests only."""

    STAGE = "toy_stage_for_tests"
    seed: int = param(0, "seed", ge=0)
    scales: tuple[float, ...] = param((1.0, 2.0), "scales", gt=0)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A project whose toy stage DVC is running (the environment DVC gives a stage command), so
    open_stage writes in place."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("toy_stage_for_tests:\n  seed: 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_STAGE", ToyParams.STAGE)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def by_hand(repo, monkeypatch):
    """The same project, the notebook run by hand (papermill or Jupyter): no DVC environment."""
    monkeypatch.delenv("DVC_STAGE")
    monkeypatch.delenv("DVC_ROOT")
    (repo / "metrics").mkdir()
    (repo / "metrics" / "toy_stage_for_tests.json").write_text('{"committed": 1}\n')
    return repo


def test_open_stage_validates_the_injected_group(repo):
    stage = open_stage(ToyParams, {"seed": 3, "scales": [0.5]})
    assert isinstance(stage, Stage)
    assert stage.params == ToyParams(seed=3, scales=(0.5,))
    assert stage.outputs.metrics_path == repo / "metrics" / "toy_stage_for_tests.json"
    with pytest.raises(ParamsError, match="toy_stage_for_tests.seed: expected an integer >= 0"):
        open_stage(ToyParams, {"seed": -1})


def test_open_stage_by_hand_reads_params_yaml(repo):
    assert open_stage(ToyParams).params.seed == 7


@pytest.mark.parametrize(
    "env",
    [{}, {"DVC_STAGE": "another_stage"}, {"DVC_STAGE": ToyParams.STAGE, "DVC_ROOT": "/elsewhere"}],
    ids=["no-dvc", "dvc-runs-another-stage", "dvc-runs-another-repository"],
)
def test_a_run_dvc_does_not_make_writes_a_scratch_folder_and_says_where(
    by_hand, monkeypatch, capsys, env
):
    """Papermill or Jupyter by hand (or DVC running something else): the stage's writes go to
    runs/<stage>/<time>-<hash>/, which holds a params.yaml of the group it ran with and links to
    the rest of the project; DVC's outputs keep their bytes; the run says where it wrote."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stage = open_stage(ToyParams, None, namespace={"seed": 5})
    stage.finish({"x": 1.0})
    (folder,) = (by_hand / "runs" / ToyParams.STAGE).iterdir()
    assert Path.cwd() == folder and stage.outputs.root == folder
    assert json.loads((folder / "metrics" / "toy_stage_for_tests.json").read_text()) == {"x": 1.0}
    assert (by_hand / "metrics" / "toy_stage_for_tests.json").read_text() == '{"committed": 1}\n'
    assert "seed: 5" in (folder / "params.yaml").read_text()
    assert (folder / "dvc.yaml").resolve() == by_hand / "dvc.yaml"
    said = capsys.readouterr().out
    assert f"writes under runs/{ToyParams.STAGE}/{folder.name}/" in said


@pytest.mark.parametrize(
    "namespace, assigned, injected, expected",
    [
        ({"seed": 5, "scales": None}, {"seed", "scales", "params"}, set(), {"seed": 5}),
        ({"seed": 0}, {"seed", "params"}, {"seed"}, {"seed": 0}),  # injected, equal to default
        ({"scales": "[0.5, 4]"}, {"scales"}, {"scales"}, {"scales": [0.5, 4]}),
        ({"seed": None, "scales": None}, {"seed", "scales"}, set(), {}),
    ],
    ids=["edited-cell", "injected-default-value", "injected-text-list", "nothing-set"],
)
def test_notebook_overrides_take_every_injected_name_and_every_edited_key(
    namespace, assigned, injected, expected
):
    assert notebook_overrides(ToyParams, namespace, assigned, injected) == expected


@pytest.mark.parametrize("name, nearest", [("sed", "seed"), ("scale", "scales"), ("x", "seed")])
def test_an_injected_name_that_is_no_key_is_one_line_naming_the_nearest_key(name, nearest):
    with pytest.raises(ParamsError) as caught:
        notebook_overrides(ToyParams, {name: 1}, {name, "params"}, {name})
    message = str(caught.value)
    assert f"'{name}' is not a parameter of this stage (nearest: '{nearest}')" in message
    assert "\n" not in message and caught.value._render_traceback_() == [f"ParamsError: {message}"]


def test_the_parameters_cell_lists_every_key_of_the_dataclass_at_none():
    """What `rmteacher params --write` writes into a stage notebook: papermill's parser sees
    every key (so `-p KEY VALUE` is no 'unknown parameter'), each None, the default in a comment."""
    from papermill.translators import PythonTranslator

    source = parameters_cell(ToyParams)
    namespace: dict = {}
    exec(source, namespace)
    assert {k: v for k, v in namespace.items() if not k.startswith("__")} == {
        "params": None,
        "seed": None,
        "scales": None,
    }
    inspected = {p.name: p for p in PythonTranslator.inspect({"source": source})}
    assert set(inspected) == {"params", "seed", "scales"}
    assert inspected["scales"].inferred_type_name == "list[float]"
    assert "default [1.0, 2.0]" in inspected["scales"].help


def test_finish_writes_plain_sorted_metrics_and_plot_data(repo, capsys):
    stage = open_stage(ToyParams, {})
    metrics = {"b_count": np.int64(4), "a_value": np.float64(0.25), "nan": float("nan")}
    shown = stage.finish(metrics, plots={"curve": pd.DataFrame({"x": [1, 2], "y": [3.0, 4.5]})})
    text = (repo / "metrics" / "toy_stage_for_tests.json").read_text()
    assert json.loads(text) == {"a_value": 0.25, "b_count": 4, "nan": None}
    assert list(json.loads(text)) == ["a_value", "b_count", "nan"]
    assert (
        repo / "plots" / "toy_stage_for_tests" / "curve.csv"
    ).read_text() == "x,y\n1,3.0\n2,4.5\n"
    assert shown.frame.loc["b_count", "value"] == 4  # the edited table keeps its frame


def test_glue_records_each_metric_for_the_book(repo, monkeypatch):
    """myst_nb.glue is called once per metric, extra glue value and parameter, with plain
    values (a list parameter as text)."""
    glued = {}

    monkeypatch.setattr(
        stage_module, "myst_glue", lambda name, value, display=True: glued.update({name: value})
    )
    stage = open_stage(ToyParams, {})
    stage.finish({"x": np.float32(0.5), "verdict": True}, glue_values={"verdict": "yes"})
    # text is glued as GluedText, whose plain-text form has no repr quotes (compare as text)
    as_text = {k: str(v) if isinstance(v, GluedText) else v for k, v in glued.items()}
    assert as_text == {"x": 0.5, "verdict": "yes", "param_seed": 0, "param_scales": "1, 2"}
    assert type(glued["x"]) is float
    assert repr(glued["verdict"]) == "yes"


def test_finish_glues_each_statistic_with_its_interval_as_text(repo, monkeypatch):
    """`X_ci` for every X with X_low and X_high (and `claim_value` style triples): the interval
    in brackets, or the value alone when the interval is undefined."""
    glued = {}
    monkeypatch.setattr(  # core.stage binds myst_nb's glue at import
        stage_module, "myst_glue", lambda name, value, display=True: glued.update({name: value})
    )
    metrics = {
        "claim_a": "undecided",
        "claim_a_value": 0.5,
        "claim_a_low": float("nan"),
        "claim_a_high": None,
        "slope": 0.68,
        "slope_low": 0.22,
        "slope_high": 0.93,
        "alone": 1.0,
    }
    open_stage(ToyParams, {}).finish(metrics)
    assert repr(glued["claim_a_ci"]) == "0.500"
    assert repr(glued["slope_ci"]) == "0.680 [0.220, 0.930]"
    assert "alone_ci" not in glued


def test_plain_refuses_what_json_cannot_hold():
    assert plain({"a": (np.int32(1), np.inf)}) == {"a": [1, None]}
    with pytest.raises(TypeError, match="metric value.k is not JSON-serializable"):
        plain({"k": object()})


def test_a_glue_name_used_twice_is_an_error(repo, monkeypatch):
    """A table glued under a metric's name would leave the book quoting one of the two."""
    monkeypatch.setattr(stage_module, "myst_glue", lambda name, value, display=True: None)
    stage = open_stage(ToyParams, {})
    stage.table("matched", pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="glue name 'matched' is used twice"):
        stage.finish({"matched": 1.0})


def test_undefined_numbers_are_glued_as_nan(repo, monkeypatch):
    """An interval from one seed is undefined: it is glued as NaN (prints "nan" under any float
    format), not None (which no float format accepts)."""
    glued = {}

    monkeypatch.setattr(
        stage_module, "myst_glue", lambda name, value, display=True: glued.update({name: value})
    )
    open_stage(ToyParams, {}).finish({"low": float("nan"), "high": None})
    assert np.isnan(glued["low"]) and np.isnan(glued["high"])
    assert f"{glued['low']:.3f}" == "nan"


def test_under_rmteacher_run_warnings_and_library_logs_go_to_the_stage_log(repo):
    """With STAGE_LOG_ENV set (as `rmteacher run` sets it for the kernel), open_stage sends the
    process's stderr to the stage's log: a warning, and a library's stderr log handler made
    before the stage opened, write there and not to the notebook (a fresh process, because
    pytest intercepts warnings)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import logging, sys, warnings
        from dataclasses import dataclass
        from rmteacher.core.params import StageParams
        from rmteacher.core.stage import open_stage

        @dataclass(frozen=True)
        class LogParams(StageParams):
            "A stage for this test only."
            STAGE = "log_stage_for_tests"

        library = logging.getLogger("some_library")
        library.addHandler(logging.StreamHandler())  # bound to sys.stderr now
        open_stage(LogParams, {})
        warnings.warn("a FutureWarning from a library", FutureWarning)
        library.warning("LOAD REPORT: score.weight MISSING")
        """
    )
    env = {  # as DVC runs the stage (else the run, and its log, go to a scratch folder)
        **os.environ,
        STAGE_LOG_ENV: "artifacts/logs/log_stage_for_tests.log",
        "DVC_STAGE": "log_stage_for_tests",
        "DVC_ROOT": str(repo),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    log = (repo / "artifacts" / "logs" / "log_stage_for_tests.log").read_text()
    assert "FutureWarning: a FutureWarning from a library" in log and "LOAD REPORT" in log
