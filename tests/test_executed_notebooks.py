"""The committed executed notebooks are reader-clean, machine-independent and current: no
warning or log text (stderr), no absolute path or virtual-environment path, the parameters
cells hidden from the book, and the injected parameters equal to what the stage's current
params.yaml group validates to (a notebook recorded with `dvc commit -f` after a parameter was
added fails here until its stage reruns). The same checks run on freshly executed notebooks in
tests/test_pipeline.py::test_tiny_executed_notebooks_are_reader_clean."""

import json
from pathlib import Path

import pytest

from rmteacher.pipeline import injected_params, notebook_problems, stage_params, stage_registry

ROOT = Path(__file__).resolve().parents[1]
STAGES = list(stage_registry())


@pytest.mark.parametrize("stage", STAGES)
def test_executed_notebook_is_reader_clean_and_machine_independent(stage):
    notebook = json.loads((ROOT / "book" / "executed" / f"{stage}.ipynb").read_text())
    assert not notebook_problems(notebook), "\n".join(notebook_problems(notebook))


@pytest.mark.parametrize("stage", STAGES)
def test_executed_notebook_ran_with_the_stage_s_current_params(stage):
    notebook = json.loads((ROOT / "book" / "executed" / f"{stage}.ipynb").read_text())
    current = stage_params(stage, ROOT / "params.yaml").to_dict()
    recorded = injected_params(notebook)
    current = json.loads(json.dumps(current))  # tuples as lists, as papermill injected them
    differ = sorted(
        k for k in recorded.keys() | current.keys() if recorded.get(k) != current.get(k)
    )
    assert not differ, f"book/executed/{stage}.ipynb ran with other {differ} (rerun the stage)"


def test_the_checks_find_what_they_are_for():
    dirty = {
        "cells": [
            {
                "metadata": {"tags": ["injected-parameters"]},
                "outputs": [
                    {
                        "output_type": "stream",
                        "name": "stderr",
                        "text": "/home/u/.venv/lib/python3.11/site-packages/x.py: FutureWarning\n",
                    }
                ],
                "source": "params = {'seed': 1}",
            }
        ]
    }
    found = notebook_problems(dirty)
    assert any("virtual-environment" in f for f in found)
    assert any("absolute path" in f for f in found)
    assert any("stderr" in f for f in found)
    assert any("parameters cell shown" in f for f in found)
    assert injected_params(dirty) == {"seed": 1}
    stdout = {"output_type": "stream", "name": "stdout", "text": "artifacts/lm_sft/policy 1/2"}
    clean = {"cells": [{"metadata": {}, "outputs": [stdout]}]}
    assert notebook_problems(clean) == []
