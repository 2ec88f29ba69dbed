"""Reward plug-ins: registered scorers, import paths, model directories, Hub ids offline."""

import numpy as np
import pytest

from rmteacher.rewards.registry import (
    PromptScaledReward,
    Reward,
    RewardError,
    check_reward_spec,
    load_reward,
    register_scorer,
)


def test_vader_is_registered_and_scores_sentiment():
    gold = load_reward("vader")
    scores = gold(["p", "p", "p"], ["I love this wonderful day!", "This is horrible.", "A cat."])
    assert scores[0] > 0.5 and scores[1] < -0.3 and scores[2] == 0.0


def test_registered_and_imported_scorers(monkeypatch, tmp_path):
    """A registered factory builds the reward; an imported `module:function` is the reward,
    called as f(prompts, responses). (This test used to import the factory `_length` as a
    reward and check only that it is callable: called per batch it raises, so the check of a
    plug-in's signature now refuses it.)"""

    @register_scorer("test_exclaim")
    def _factory():
        return lambda prompts, responses: [r.count("!") for r in responses]

    assert load_reward("test_exclaim")(["a", "b"], ["!!", "."]).tolist() == [2.0, 0.0]
    (tmp_path / "plugin_rewards.py").write_text(
        "def questions(prompts, responses):\n    return [r.count('?') for r in responses]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = load_reward("plugin_rewards:questions")
    assert imported(["a", "b"], ["??", "."]).tolist() == [2.0, 0.0]
    with pytest.raises(ValueError, match=r"takes \(\).*called as f\(prompts, responses\)"):
        load_reward("rmteacher.rewards.registry:_length")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_scorer", "neither a registered scorer"),
        ("./missing/model", "no model directory"),
        ("/definitely/not/here", "no model directory"),
        ("rmteacher.nope:thing", "cannot import"),
        ("some-org/some-reward-model", "cannot be fetched offline"),
    ],
)
def test_bad_reward_specs_fail_with_one_line(spec, message, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match=message) as err:
        check_reward_spec(spec, "rm_train.gold")
    assert "\n" not in str(err.value) and str(err.value).startswith("rm_train.gold")


def test_a_causal_lm_directory_is_not_a_reward_model(tiny_policy_dir):
    with pytest.raises(ValueError, match="expected a \\*ForSequenceClassification"):
        check_reward_spec(tiny_policy_dir, "reward")


def test_sequence_classifier_reward_scores_chat_text(tiny_reward_dir):
    rm = load_reward(tiny_reward_dir, "tiny")
    scores = rm.matrix(["It was", "She said"], [["good", "bad"], ["yes", "no"]])
    assert scores.shape == (2, 2) and np.all(np.isfinite(scores))
    again = load_reward(tiny_reward_dir, "tiny").matrix(["It was"], [["good", "bad"]])
    np.testing.assert_allclose(again[0], scores[0], rtol=1e-5)


def test_non_finite_rewards_stop_the_run():
    bad = Reward("bad", lambda p, r: [float("nan")] * len(r))
    with pytest.raises(FloatingPointError, match="non-finite"):
        bad(["a"], ["b"])


def broken_plugin(prompts, responses):
    raise KeyError("sentiment model not found")


@pytest.mark.parametrize(
    "fn, message",
    [
        (broken_plugin, "reward 'p' raised KeyError on prompts 2-3: 'sentiment model not found'"),
        (lambda p, r: [1.0] * (len(r) - 1), "reward 'p' returned 1 scores for the 2 responses of"),
        (lambda p, r: [1.0, float("inf")][: len(r)], "returned inf (non-finite) at prompt index 3"),
    ],
)
def test_a_failing_plugin_is_one_line_naming_the_reward_and_the_prompts(fn, message):
    """A plug-in that raises, returns too few scores or a non-finite one: one RewardError line
    with the reward's name and the first prompt index concerned (batches of 2 here)."""
    plugin = Reward("p", lambda p, r: [0.0] * len(r), batch_size=2)
    plugin.fn = lambda p, r: fn(p, r) if p[0] == "c" else [0.0] * len(r)
    with pytest.raises(RewardError) as err:
        plugin(["a", "b", "c", "d"], ["w", "x", "y", "z"])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_prompt_scaled_reward_keeps_rankings_and_scales_chosen_prompts():
    base = Reward("len", lambda p, r: [float(len(x)) for x in r])
    scaled = PromptScaledReward(base, {"x"}, 0.001)
    out = scaled(["x", "x", "y"], ["aa", "aaaa", "aaa"])
    np.testing.assert_allclose(out, [0.002, 0.004, 3.0])
