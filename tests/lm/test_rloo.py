"""The RLOO wrapper: it moves the policy, logs the Proposition 2 diagnostics, and evaluates."""

import numpy as np
import pytest
import torch

from rmteacher.lm.rloo import (EvalCallback, Evaluator, NormalizedReward, RlooRunConfig, run_rloo,
                               schedule)
from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import load_reward


def test_schedule_counts_completions_per_epoch():
    max_steps, per_epoch, evals = schedule(n_prompts=512, k=2, prompts_per_step=32, epochs=6,
                                           evals_per_epoch=1)
    assert per_epoch == 8 and max_steps == 48 and evals == {8, 16, 24, 32, 40, 48}


def test_normalized_reward_logs_within_group_variance():
    logged = {}
    reward = NormalizedReward(load_reward("length"), Normalization(2.0, 0.5), "len", 2)
    out = reward(["p", "p", "q", "q"], ["a b", "a b c d", "a", "a"],
                 log_metric=lambda k, v: logged.setdefault(k, v))
    assert out == [0.0, 1.0, -0.5, -0.5]
    assert logged["within_group_variance"] == pytest.approx((0.5 + 0.0) / 2)


def test_rloo_changes_the_policy_and_logs_metrics(tiny_policy_dir):
    from transformers import AutoModelForCausalLM

    from rmteacher.lm.models import load_policy

    ref, tokenizer = load_policy(tiny_policy_dir)
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    prompts = ["It was a", "She said that", "The day was", "He never"] * 2
    gold = load_reward("length")
    norm = Normalization(5.0, 0.2)
    generation = {"max_new_tokens": 8, "temperature": 1.0}
    evaluator = Evaluator(ref, tokenizer, prompts[:2], 2, gold, norm, gold, norm, generation, 0)
    callback = EvalCallback(evaluator, {2}, steps_per_epoch=1.0)
    cfg = RlooRunConfig(num_generations=2, prompts_per_step=4, beta=0.05, learning_rate=1e-2,
                        max_new_tokens=8, temperature=1.0, seed=0)
    log = run_rloo(tiny_policy_dir, prompts, NormalizedReward(gold, norm, "len", 2), cfg,
                   max_steps=2, callbacks=[callback], name="test")
    assert len(log) == 2
    for column in ("grad_norm", "frac_reward_zero_std", "within_group_variance", "kl", "reward"):
        assert column in log and np.all(np.isfinite(log[column].astype(float)))
    assert [row["step"] for row in callback.rows] == [0, 2]
    assert callback.rows[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # policy == reference at start
    # the reference copy is untouched; the trained copy moved (trl loads its own from the path)
    after = ref.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert callback.rows[1]["kl"] != pytest.approx(0.0, abs=1e-6)
    del AutoModelForCausalLM
