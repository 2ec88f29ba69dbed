"""The controlled family and the controls do what they were built to do: compression keeps every
prompt's ranking (accuracy exactly unchanged) and shrinks the within-prompt spread; rank noise
keeps prompt means and the within-prompt spread and misorders pairs; the perfect RM ranks as r_G."""

import numpy as np
import pytest

from rmteacher.lm.rm.suite import ControlledReward, FamilyMember, Memo, hashed_normal, prompt_stats
from rmteacher.metrics.rm_metrics import per_prompt_accuracy
from rmteacher.rewards.registry import PromptScaledReward

PROMPTS = [f"prompt {i}" for i in range(60)]
RESPONSES = [[f"response {i}-{j}" for j in range(12)] for i in range(60)]


def gold(prompts, responses):
    """A smooth stand-in for r_G with prompt-level and response-level parts."""
    return np.array(
        [
            0.3 * hashed_normal(7, p, "") + 0.1 * hashed_normal(8, p, r)
            for p, r in zip(prompts, responses, strict=True)
        ]
    )


def matrix(reward):
    flat_p = [p for p, rs in zip(PROMPTS, RESPONSES, strict=True) for _ in rs]
    flat_r = [r for rs in RESPONSES for r in rs]
    return np.asarray(reward(flat_p, flat_r)).reshape(len(PROMPTS), -1)


@pytest.fixture(scope="module")
def stats():
    return prompt_stats(PROMPTS, matrix(gold))


def member(eta, compression, fraction=0.75, amplification=1.0, between=1.0):
    return FamilyMember(eta, compression, fraction, 3, 11, amplification, between)


def normalised_variance(raw):
    from rmteacher.metrics.rm_metrics import reward_variance
    from rmteacher.rewards.normalize import Normalization

    return reward_variance(Normalization.from_rewards(raw)(raw))


def test_hashed_normal_is_a_fixed_standard_normal_function():
    values = np.array([hashed_normal(0, "x", str(i)) for i in range(4000)])
    assert hashed_normal(0, "x", "5") == values[5]
    assert abs(values.mean()) < 0.06 and abs(values.std() - 1) < 0.05
    assert hashed_normal(1, "x", "5") != values[5]


def test_compression_keeps_accuracy_exactly_and_shrinks_the_spread(stats):
    g = matrix(gold)
    compressed = matrix(ControlledReward(gold, member(0.0, 0.05), stats))
    assert np.array_equal(per_prompt_accuracy(compressed, g), np.ones(len(PROMPTS)))
    np.testing.assert_allclose(compressed.mean(1), g.mean(1), atol=1e-12)  # prompt means kept
    assert compressed.std(1).mean() < 0.7 * g.std(1).mean()


def test_rank_noise_misorders_pairs_but_keeps_the_spread(stats):
    g = matrix(gold)
    noisy = matrix(ControlledReward(gold, member(2.0, 1.0), stats))
    accuracy = per_prompt_accuracy(noisy, g).mean()
    assert 0.5 < accuracy < 0.8
    ratio = noisy.std(1, ddof=1).mean() / g.std(1, ddof=1).mean()
    assert ratio == pytest.approx(1.0, abs=0.15)
    assert matrix(ControlledReward(gold, member(0.0, 1.0), stats)) == pytest.approx(g)


def test_amplification_keeps_accuracy_and_means_and_raises_the_variance(stats):
    g = matrix(gold)
    wide = matrix(ControlledReward(gold, member(0.0, 1.0, amplification=10.0), stats))
    assert np.array_equal(per_prompt_accuracy(wide, g), np.ones(len(PROMPTS)))
    np.testing.assert_allclose(wide.mean(1), g.mean(1), atol=1e-12)
    assert normalised_variance(wide) > 1.5 * normalised_variance(g)


def test_members_scale_the_same_prompts_at_the_same_quantiles():
    """One seed for all members: a floor c and a ceiling A scale the same prompts, and the
    factors are monotone in each other (members differ only in c and A)."""
    low = member(0.0, 0.1).factors(PROMPTS)
    high = member(0.0, 1.0, amplification=10.0).factors(PROMPTS)
    scaled = [p for p in PROMPTS if low[p] != 1.0]
    assert scaled == [p for p in PROMPTS if high[p] != 1.0]
    assert all(
        np.isclose(np.log(low[p]) / np.log(0.1), 1 - np.log(high[p]) / np.log(10)) for p in scaled
    )


def test_the_between_factor_shrinks_prompt_means_only(stats):
    """lambda < 1 moves each prompt's rewards by one offset: RLOO's leave-one-out advantages and
    the accuracy are unchanged, the normalised variance rises (through the global std only)."""
    g = matrix(gold)
    shrunk = matrix(ControlledReward(gold, member(0.0, 1.0, between=0.2), stats))
    assert np.array_equal(per_prompt_accuracy(shrunk, g), np.ones(len(PROMPTS)))
    np.testing.assert_allclose(
        shrunk - shrunk.mean(1, keepdims=True), g - g.mean(1, keepdims=True), atol=1e-12
    )
    assert normalised_variance(shrunk) > 2 * normalised_variance(g)
    assert member(0.0, 1.0, between=0.2).name == "fam_n0_c1_b0.2"
    assert member(0.5, 1.0, amplification=3.0).name == "fam_n0.5_c1_a3"
    assert member(1.0, 0.1).name == "fam_n1_c0.1"


def test_a_member_needs_a_floor_at_most_one_and_a_ceiling_at_least_one():
    with pytest.raises(ValueError, match="0 < compression <= 1 <= amplification"):
        member(0.0, 1.0, amplification=0.5)


def test_members_are_defined_on_the_evaluated_prompts_only(stats):
    reward = ControlledReward(gold, member(0.5, 0.3), stats)
    with pytest.raises(ValueError, match="fam_n0.5_c0.3: defined on rm_eval's prompts only"):
        reward(["an unseen prompt"], ["a response"])


def test_perfect_rm_ranks_as_gold_and_memo_scores_each_sample_once():
    calls = []

    def counted(prompts, responses):
        calls.append(len(prompts))
        return gold(prompts, responses)

    memo = Memo(counted)
    perfect = PromptScaledReward(memo, set(PROMPTS[:30]), 0.001, shift=1.0)
    assert np.array_equal(per_prompt_accuracy(matrix(perfect), matrix(gold)), np.ones(60))
    matrix(memo)
    assert sum(calls) == 60 * 12  # the second pass came from the cache
