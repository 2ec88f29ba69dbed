"""The policy-gradient loop: its advantages and loss are the paper's (and have the gradient of
trl's RLOO loss on the same batch), a run moves the policy, logs the Proposition 2 diagnostics,
keeps the reference intact and evaluates at the scheduled points; GRPO and SGD run through the
same path; the same seed gives the same run."""

import tempfile

import numpy as np
import pytest
import torch

from rmteacher.lm.pg.loop import PARTS, PgRunConfig, advantages, policy_loss, prompt_schedule
from rmteacher.lm.pg.reward import NormalizedReward
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


def test_normalized_reward_applies_the_fixed_normalisation_and_scale():
    reward = NormalizedReward(load_reward("length"), Normalization(2.0, 0.5), "len")
    assert reward(["p", "p", "q"], ["a b", "a b c d", "a"]).tolist() == [0.0, 1.0, -0.5]
    scaled = NormalizedReward(load_reward("length"), Normalization(2.0, 0.5), "len", scale=10)
    assert scaled(["p", "p"], ["a b", "a b c d"]).tolist() == [0.0, 10.0]


def test_non_finite_rewards_stop_policy_gradient():
    bad = NormalizedReward(lambda p, r: [float("nan")] * len(r), Normalization(0.0, 1.0), "b")
    with pytest.raises(FloatingPointError, match="reward 'b' returned nan .* prompt index 0"):
        bad(["p", "p"], ["a", "b"])


def test_rloo_advantage_is_the_reward_minus_the_mean_of_the_others():
    rewards = torch.tensor([1.0, 3.0, 5.0, 0.0, 0.0, 3.0])  # two prompts, k = 3
    adv = advantages(rewards, 3, "rloo", "none")
    expected = [1 - 4, 3 - 3, 5 - 2, 0 - 1.5, 0 - 1.5, 3 - 0]
    assert adv.tolist() == pytest.approx(expected)
    # with k = 2 the baseline is the other sample, so a tied pair teaches nothing
    assert advantages(torch.tensor([2.0, 2.0]), 2, "rloo", "none").tolist() == [0.0, 0.0]


def test_grpo_advantage_centres_and_group_scaling_keeps_only_the_sign_for_k_2():
    rewards = torch.tensor([0.0, 0.001, 5.0, -5.0])
    assert advantages(rewards, 2, "grpo", "none").tolist() == pytest.approx([-5e-4, 5e-4, 5, -5])
    scaled = advantages(rewards, 2, "grpo", "group")
    # (r - mean) / (std + 1e-4) with the unbiased std: +-1/sqrt(2) whatever the gap
    assert scaled[2].item() == pytest.approx(2**-0.5, rel=1e-4)
    assert abs(scaled[1].item()) < 2**-0.5 and scaled[1].item() > 0.5


def test_prompt_schedule_visits_every_prompt_once_per_pass():
    order = prompt_schedule(n_prompts=10, per_step=4, max_steps=5, seed=0)
    assert order.shape == (5, 4)
    assert sorted(order.reshape(-1)[:10].tolist()) == list(range(10))
    assert not np.array_equal(order, prompt_schedule(10, 4, 5, seed=1))


def test_rloo_loss_has_the_gradient_of_trl_rloo_loss(tiny_policy_dir):
    """trl's RLOOTrainer loss (sequence-level PPO-clip) at ratio 1 and our REINFORCE loss give
    the same gradient on the same sampled batch and advantages."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import RLOOConfig, RLOOTrainer

    from rmteacher.core.hf import load_tokenizer
    from rmteacher.lm.trainers import trainer_kwargs
    from rmteacher.lm.world.sampling import sequence_token_logprobs

    tokenizer = load_tokenizer(tiny_policy_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    torch.manual_seed(0)
    prompt_ids = torch.randint(10, 300, (4, 6))  # equal lengths: no padding, same positions
    completion_ids = torch.randint(10, 300, (4, 5))
    completion_mask = torch.ones(4, 5, dtype=torch.long)
    completion_mask[1, 3:] = 0
    sequences = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([torch.ones_like(prompt_ids), completion_mask], dim=1)
    adv = advantages(torch.tensor([0.3, -1.2, 2.0, 0.5]), 2, "rloo", "none")

    logprobs = sequence_token_logprobs(model, sequences, attention, 6)
    policy_loss(logprobs, completion_mask.float(), adv, "rloo").backward()
    ours = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with tempfile.TemporaryDirectory() as scratch:
        args = RLOOConfig(
            **trainer_kwargs(scratch, 0),
            per_device_train_batch_size=4,
            num_generations=2,
            max_completion_length=5,
        )
        trainer = RLOOTrainer(
            model=model,
            reward_funcs=[lambda prompts, completions, **_: [0.0] * len(prompts)],
            args=args,
            train_dataset=Dataset.from_list([{"prompt": "a"}] * 4),
            processing_class=tokenizer,
        )
        inputs = {
            "prompt_ids": prompt_ids,
            "prompt_mask": torch.ones_like(prompt_ids),
            "completion_ids": completion_ids,
            "completion_mask": completion_mask,
            "old_logps": (logprobs.detach() * completion_mask).sum(1),
            "advantages": adv,
        }
        trainer._compute_loss(model, inputs).backward()
    theirs = [p.grad for p in model.parameters()]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_config_rejects_unknown_algorithm_and_optimizer(pg_config_base):
    base = pg_config_base
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
    curve, log, _ = tracked_run(
        tiny_initial, plan, "len", gold, norm, gold, norm, cfg, tags={"variant": "test"}
    )
    assert len(log) == 2 and set(log.algorithm) == {algorithm}
    columns = ("grad_norm", "frac_reward_zero_std", "within_group_variance", "reward", "kl")
    for column in columns + tuple(f"time_{part}" for part in PARTS):
        assert column in log and np.all(np.isfinite(log[column].astype(float)))
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
    first, _, _ = tracked_run(tiny_initial, plan, "len", gold, norm, gold, norm, cfg)
    second, _, _ = tracked_run(tiny_initial, plan, "len", gold, norm, gold, norm, cfg)
    np.testing.assert_allclose(first[["proxy", "gold", "kl"]], second[["proxy", "gold", "kl"]])


def test_shared_initial_evaluation_changes_no_measurement(tiny_initial):
    from rmteacher.lm.pg.sweep import run_grid

    plan = TrainingPlan.build(PROMPTS, 2, 2, k=2, prompts_per_step=4, epochs=1, evals_per_epoch=1)
    gold = load_reward("length")
    cfg = PgRunConfig(
        num_generations=2, prompts_per_step=4, beta=0.05, learning_rate=1e-1, seed=3, **GENERATION
    )
    proxies = {"len": Normalization(5.0, 0.2), "len_shifted": Normalization(2.0, 0.5)}
    runs = [{"rm": rm, "proxy": gold, "norm": norm, "cfg": cfg} for rm, norm in proxies.items()]
    shared, _, _ = run_grid(tiny_initial, plan, runs, gold, Normalization(5.0, 0.2))
    for rm, norm in proxies.items():
        alone, _, _ = tracked_run(
            tiny_initial, plan, rm, gold, norm, gold, Normalization(5.0, 0.2), cfg
        )
        mine = shared[shared.rm == rm].reset_index(drop=True)
        np.testing.assert_allclose(mine[["proxy", "gold", "kl"]], alone[["proxy", "gold", "kl"]])
    # the proxy is scored per run even where the samples are shared: the two normalisations differ
    start = shared[shared.step == 0].set_index("rm").proxy
    assert start["len"] != pytest.approx(start["len_shifted"])


def test_a_reward_failing_mid_run_names_the_run_and_the_step(tiny_initial):
    """A proxy that turns non-finite after the first step stops the run with one line naming
    the algorithm, policy, RM, seed and step."""
    from rmteacher.rewards.registry import Reward, RewardError

    plan = TrainingPlan.build(PROMPTS, 2, 2, k=2, prompts_per_step=4, epochs=2, evals_per_epoch=1)
    calls = []

    def flaky(prompts, responses):
        calls.append(len(prompts))
        return [float("nan") if len(calls) == 2 else 1.0] * len(responses)

    gold = load_reward("length")
    norm = Normalization(5.0, 0.2)
    cfg = PgRunConfig(
        num_generations=2, prompts_per_step=4, beta=0.05, learning_rate=1e-1, seed=7, **GENERATION
    )
    # call 1: the initial evaluation, call 2: the rewards of step 1
    proxy = Reward("flaky", flaky, batch_size=1024)
    with pytest.raises(RewardError) as err:
        tracked_run(tiny_initial, plan, "flaky", proxy, norm, gold, norm, cfg)
    message = str(err.value)
    assert message.startswith("rloo tiny flaky seed 7, step 1: reward 'flaky' returned nan")
    assert "\n" not in message
