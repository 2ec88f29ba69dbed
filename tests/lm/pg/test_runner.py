"""The policy-gradient wrappers: they move the policy, log the Proposition 2 diagnostics, keep the
reference intact, and evaluate at the scheduled points; GRPO and SGD run through the same path."""

import numpy as np
import pytest
import torch

from rmteacher.lm.pg.runner import NormalizedReward, PgRunConfig
from rmteacher.lm.pg.sweep import InitialPolicy, TrainingPlan, increases, tracked_run
from rmteacher.lm.pg.tracking import schedule
from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import load_reward

PROMPTS = ["It was a", "She said that", "The day was", "He never"] * 2
GENERATION = {"max_new_tokens": 8, "temperature": 1.0}


def test_schedule_counts_completions_per_epoch():
    max_steps, per_epoch, evals = schedule(
        n_prompts=512, k=2, prompts_per_step=32, epochs=6, evals_per_epoch=1
    )
    assert per_epoch == 8 and max_steps == 48 and evals == {8, 16, 24, 32, 40, 48}


def test_normalized_reward_logs_within_group_variance_and_scales():
    logged = {}
    reward = NormalizedReward(load_reward("length"), Normalization(2.0, 0.5), "len", 2)
    out = reward(
        ["p", "p", "q", "q"],
        ["a b", "a b c d", "a", "a"],
        log_metric=lambda k, v: logged.setdefault(k, v),
    )
    assert out == [0.0, 1.0, -0.5, -0.5]
    assert logged["within_group_variance"] == pytest.approx((0.5 + 0.0) / 2)
    scaled = NormalizedReward(load_reward("length"), Normalization(2.0, 0.5), "len", 2, scale=10)
    assert scaled(["p", "p"], ["a b", "a b c d"]) == [0.0, 10.0]


def test_non_finite_rewards_stop_policy_gradient():
    bad = NormalizedReward(lambda p, r: [float("nan")] * len(r), Normalization(0.0, 1.0), "b", 2)
    with pytest.raises(FloatingPointError, match="non-finite"):
        bad(["p", "p"], ["a", "b"])


def test_config_rejects_unknown_algorithm_and_optimizer():
    base = dict(
        num_generations=2,
        prompts_per_step=4,
        beta=0.0,
        learning_rate=1e-3,
        max_new_tokens=8,
        temperature=1.0,
        seed=0,
    )
    with pytest.raises(ValueError, match="algorithm"):
        PgRunConfig(**base, algorithm="ppo")
    with pytest.raises(ValueError, match="optimizer"):
        PgRunConfig(**base, optimizer="adagrad")


@pytest.fixture(scope="module")
def tiny_initial(tiny_policy_dir):
    return InitialPolicy.load("tiny", tiny_policy_dir, GENERATION)


@pytest.mark.parametrize(
    "algorithm, optimizer, beta", [("rloo", "adam", 0.05), ("grpo", "sgd", 0.0)]
)
def test_tracked_run_changes_the_policy_and_logs_metrics(tiny_initial, algorithm, optimizer, beta):
    before = {k: v.clone() for k, v in tiny_initial.reference.state_dict().items()}
    plan = TrainingPlan.build(PROMPTS, 2, 2, k=2, prompts_per_step=4, epochs=2, evals_per_epoch=1)
    assert plan.max_steps == 2 and plan.eval_steps == {1, 2}
    gold = load_reward("length")
    norm = Normalization(5.0, 0.2)
    cfg = PgRunConfig(
        num_generations=2,
        prompts_per_step=4,
        beta=beta,
        learning_rate=1e-1,
        seed=0,
        algorithm=algorithm,
        optimizer=optimizer,
        **GENERATION,
    )
    curve, log = tracked_run(
        tiny_initial, plan, "len", gold, norm, gold, norm, cfg, tags={"variant": "test"}
    )
    assert len(log) == 2 and set(log.algorithm) == {algorithm}
    for column in ("grad_norm", "frac_reward_zero_std", "within_group_variance", "reward"):
        assert column in log and np.all(np.isfinite(log[column].astype(float)))
    if beta > 0:
        assert "kl" in log
    assert curve.step.tolist() == [0, 1, 2] and set(curve.variant) == {"test"}
    assert curve.kl.iloc[0] == pytest.approx(0.0, abs=1e-5)  # policy == reference at the start
    assert curve.kl.iloc[-1] != pytest.approx(0.0, abs=1e-6)  # the trained copy moved
    after = tiny_initial.reference.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the reference did not
    grown = increases(curve)
    assert grown.proxy_increase.iloc[0] == 0 and grown.gold_increase.iloc[0] == 0


def test_same_seed_gives_the_same_run(tiny_initial):
    plan = TrainingPlan.build(PROMPTS, 2, 2, k=2, prompts_per_step=4, epochs=1, evals_per_epoch=1)
    gold = load_reward("length")
    norm = Normalization(5.0, 0.2)
    cfg = PgRunConfig(
        num_generations=2, prompts_per_step=4, beta=0.05, learning_rate=1e-1, seed=3, **GENERATION
    )
    first, _ = tracked_run(tiny_initial, plan, "len", gold, norm, gold, norm, cfg)
    second, _ = tracked_run(tiny_initial, plan, "len", gold, norm, gold, norm, cfg)
    np.testing.assert_allclose(first[["proxy", "gold", "kl"]], second[["proxy", "gold", "kl"]])
