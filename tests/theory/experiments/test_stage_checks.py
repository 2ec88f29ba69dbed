"""Parameters of the theory stages: the tiny profile is the defaults with its own values on top,
`check()` accepts them and rejects a perturbed value, and values that would make a construction
impossible fail before any compute, with one line naming the stage and key: in `check()` when
numpy decides it, in `check_models()` (`rmteacher check --deep`, the params_check stage, `rmteacher
run`) when it takes the seeded torch MLP policy."""

import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from rmteacher.core.params import ParamsError, StageParams, load_params_file
from rmteacher.pipeline import STAGE_MODULES
from rmteacher.stages.theory.accuracy_speed import AccuracySpeedParams
from rmteacher.stages.theory.best_of_n import BestOfNParams
from rmteacher.stages.theory.escape_time import EscapeTimeParams
from rmteacher.stages.theory.gradient_bound import GradientBoundParams
from rmteacher.stages.theory.policy_dependence import PolicyDependenceParams

ROOT = Path(__file__).resolve().parents[3]
THEORY = {
    cls.STAGE: cls
    for cls in (
        GradientBoundParams,
        EscapeTimeParams,
        AccuracySpeedParams,
        PolicyDependenceParams,
        BestOfNParams,
    )
}
TINY = load_params_file(ROOT / "profiles" / "tiny.yaml")

BAD = [
    # Theorem 6's policy needs c + T^-2 < 1, for every T of the sweep and for the main T.
    ("theory_policy_dependence", {"c": 0.8}, "t_values", "c \\+ T\\^-2 = 1.050 >= 1 at T=2"),
    ("theory_policy_dependence", {"c": 0.5, "big_t": 1.2}, "big_t", "at T=1.2"),
    # E_pi[r_G] = v0 out of reach of the exponential tilt over the other outputs.
    ("theory_policy_dependence", {"v0": -0.95}, "v0", "not reachable"),
    # Both targets must lie more than gamma above v0.
    ("theory_policy_dependence", {"gamma": 1.5}, "gamma", "second-best r_G"),
    # gamma out of reach in the tabular T sweep, the MLP sweeps, or the rarity sweep.
    ("theory_escape_time", {"gamma": 1.9}, "gamma", "tabular T sweep"),
    ("theory_escape_time", {"gamma": 0.93}, "gamma", "unreachable|too large"),
    ("theory_escape_time", {"rare_probs": [0.95, 0.01]}, "gamma", "pi_0\\(y_gamma\\)=0.95"),
    ("theory_escape_time", {"rare_probs": [0.01, 0.01]}, "rare_probs", "two distinct"),
    ("theory_accuracy_speed", {"gamma": 1.9}, "gamma", "too large"),
]

# Reachable in every tabular setup, out of reach from the seeded MLP policy: only the deep
# check can tell.
BAD_FOR_MODELS = [
    ("theory_escape_time", {"gamma": 0.85}, "gamma", "unreachable in the MLP rarity sweep"),
]

# One value per stage with cross-field rules that its `check()` must reject, applied to the
# tiny-profile params (which pass), so a check that never fires fails here.
PERTURBED = {
    "theory_gradient_bound": ({"vocab_size": 16, "seq_len": 8}, "vocab_size\\*\\*seq_len"),
    "theory_escape_time": ({"lams": (0.05,)}, "lams: must include 0.0"),
    "theory_accuracy_speed": ({"gamma": 1.9}, "gamma: .*too large"),
    "theory_policy_dependence": ({"c": 0.8}, "t_values: c \\+ T\\^-2"),
}


def tiny_params(stage):
    return THEORY[stage].from_mapping(TINY.get(stage, {}))


def test_each_theory_stage_module_defines_exactly_its_params_class():
    """What `pipeline.stage_registry` relies on: the parameter module is listed, in pipeline
    order, and holds exactly one StageParams subclass, which its stage module's `run` takes."""
    modules = [m for m in STAGE_MODULES if m.startswith("rmteacher.stages.theory.")]
    assert [THEORY[stage].__module__ for stage in THEORY] == modules
    for name in modules:
        module = importlib.import_module(name)
        defined = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, StageParams) and cls.__module__ == name
        ]
        stage = importlib.import_module(name.replace(".params.", "."))
        assert len(defined) == 1 and callable(stage.run), name
        assert getattr(stage, defined[0].__name__) is defined[0], name


def test_plain_check_of_the_whole_file_imports_no_heavy_library():
    """`rmteacher check` stays fast (<= 1 s is the goal; benchmarks/ has none, this is the
    cause): validating the committed params.yaml without --deep loads no torch, transformers,
    scipy or pandas."""
    code = (
        "import sys; from rmteacher.pipeline import check_params_file; "
        f"check_params_file({str(ROOT / 'params.yaml')!r}); "
        "print([m for m in ('torch', 'transformers', 'scipy', 'pandas') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_importing_the_stage_modules_imports_no_torch():
    """`rmteacher check` and `params --check` import every stage module: torch (and with it
    transformers) is only imported when a run or a construction check needs it."""
    modules = [cls.__module__ for cls in THEORY.values()]
    code = (
        f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
        "print([m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("stage", THEORY)
def test_tiny_profile_is_the_defaults_overlaid_with_its_values(stage):
    overlay = TINY[stage]
    assert overlay, f"the tiny profile should shrink {stage}"
    params = tiny_params(stage)
    expected = {**THEORY[stage].defaults(), **overlay}
    assert params.to_dict() == expected
    assert params != THEORY[stage]()  # the overlay changed something
    assert THEORY[stage].from_mapping(params.to_dict()) == params


@pytest.mark.parametrize("stage", PERTURBED)
def test_check_accepts_the_tiny_profile_and_rejects_a_perturbed_value(stage):
    params = tiny_params(stage)
    params.check()
    THEORY[stage]().check()  # the defaults pass too
    change, detail = PERTURBED[stage]
    with pytest.raises(ParamsError, match=detail) as info:
        dataclasses.replace(params, **change).check()
    assert str(info.value).startswith(f"{stage}")


def test_best_of_n_has_no_cross_field_rule():
    """Nothing to perturb: its keys are independent (the construction is accuracy_speed's)."""
    assert BestOfNParams.check is StageParams.check


@pytest.mark.parametrize("stage,values,key,detail", BAD)
def test_impossible_constructions_fail_in_check_naming_the_key(stage, values, key, detail):
    with pytest.raises(ParamsError, match=detail) as info:
        THEORY[stage].from_mapping(values)
    message = str(info.value)
    assert message.startswith(f"{stage}.{key}: ") and "\n" not in message


@pytest.mark.parametrize("stage,values,key,detail", BAD_FOR_MODELS)
def test_constructions_that_need_the_seeded_models_fail_in_the_deep_check(
    stage, values, key, detail
):
    params = THEORY[stage].from_mapping(values)  # the plain check cannot see it
    with pytest.raises(ParamsError, match=detail) as info:
        params.check_models()
    message = str(info.value)
    assert message.startswith(f"{stage}.{key}: ") and "\n" not in message


def test_best_of_n_has_no_copy_of_the_construction():
    """Best-of-N reads r_G, pi_0 and the RMs from theory_accuracy_speed; its own group only
    holds Best-of-N settings, so the two stages cannot be decoupled by a -S override."""
    for key in ("seed", "n_outputs", "gamma", "temperature", "target_prob", "big_t"):
        with pytest.raises(ParamsError, match=f"unknown parameter '{key}'"):
            BestOfNParams.from_mapping({key: 1})
