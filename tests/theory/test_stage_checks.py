"""Cross-field checks of the theory stages: values that would make a construction impossible fail
in `check()`, before any compute, with one line naming the stage and key."""

from pathlib import Path

import pytest

from rmteacher.params import ParamsError, stage_registry
from rmteacher.pipeline import load_profile

ROOT = Path(__file__).resolve().parents[2]

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


@pytest.mark.parametrize("stage,values,key,detail", BAD)
def test_impossible_constructions_fail_in_check_naming_the_key(stage, values, key, detail):
    with pytest.raises(ParamsError, match=detail) as info:
        stage_registry()[stage].from_mapping(values)
    message = str(info.value)
    assert message.startswith(f"{stage}.{key}: ") and "\n" not in message


def test_defaults_and_tiny_profile_pass_their_checks():
    registry = stage_registry()
    tiny = load_profile("tiny", ROOT / "profiles")
    for stage in (s for s in registry if s.startswith("theory_")):
        registry[stage].from_mapping({})
        registry[stage].from_mapping(tiny.get(stage, {}))


def test_best_of_n_has_no_copy_of_the_construction():
    """Best-of-N reads r_G, pi_0 and the RMs from theory_accuracy_speed; its own group only
    holds Best-of-N settings, so the two stages cannot be decoupled by a -S override."""
    best_of_n = stage_registry()["theory_best_of_n"]
    for key in ("seed", "n_outputs", "gamma", "temperature", "target_prob", "big_t"):
        with pytest.raises(ParamsError, match=f"unknown parameter '{key}'"):
            best_of_n.from_mapping({key: 1})
