"""The ensemble engine trains each member as the solo loop trains that run: a member's loss
gradient is the solo gradient on the same batch and one optimizer step the solo step (to float32
rounding, for RLOO and both GRPO scalings, Adam and SGD, with and without clipping); a member's
curves, logs and samples are bit for bit the same whichever members share its ensemble, however
many, and on one or two threads; runs with different settings behave as their solo runs; the
outputs have run_grid's formats; and only single-process GPT-2 runs take this path."""

import numpy as np
import pandas as pd
import pytest
import torch

from rmteacher.lm.pg import ensemble_gpt2
from rmteacher.lm.pg.ensemble import (
    Member,
    member_losses,
    run_ensemble,
    train_ensemble,
    uses_ensemble,
)
from rmteacher.lm.pg.ensemble_optim import StackedOptimizer, clip_member_grads
from rmteacher.lm.pg.loop import PgRunConfig, advantages, pinned_threads, policy_loss
from rmteacher.lm.pg.sweep import InitialPolicy, TrainingPlan, run_grid, tracked_run
from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import fixed_length_scoring, load_reward

PROMPTS = [
    "It was a",
    "She said that the weather",
    "The day was",
    "He never",
    "Once upon a time there was",
    "Why",
    "I think that it is",
    "Yes",
]
GENERATION = {"max_new_tokens": 8, "temperature": 1.0}
TIMES = ["time_generation", "time_reward", "time_reference", "time_policy_forward"]
TIMES += ["time_backward", "time_optimizer"]


@pytest.fixture(scope="module")
def tiny_initial(tiny_policy_dir):
    return InitialPolicy.load("tiny", tiny_policy_dir, GENERATION)


@pytest.fixture(scope="module")
def tiny_rm(tiny_reward_dir):
    return load_reward(tiny_reward_dir, "rm")


def config(**settings) -> PgRunConfig:
    base = dict(num_generations=2, prompts_per_step=4, beta=0.05, learning_rate=3e-2, seed=0)
    return PgRunConfig(**{**base, **GENERATION, **settings})


def test_runs_take_the_ensemble_path_only_for_single_process_gpt2(tiny_initial, tiny_hf_config):
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    gpt2 = tiny_initial.reference
    assert uses_ensemble(gpt2)
    assert not uses_ensemble(gpt2, num_processes=2)  # data parallel: the solo loop
    with_dropout = GPT2LMHeadModel(GPT2Config(**{**gpt2.config.to_dict(), "resid_pdrop": 0.1}))
    assert not uses_ensemble(with_dropout)
    pythia = AutoModelForCausalLM.from_config(tiny_hf_config("gpt_neox", tiny_initial.tokenizer))
    assert not uses_ensemble(pythia)
    other = InitialPolicy("pythia", "", pythia, tiny_initial.tokenizer, GENERATION)
    plan = TrainingPlan.build(PROMPTS, 2, 2, k=2, prompts_per_step=4, epochs=1, evals_per_epoch=1)
    length = load_reward("length")
    run = {"rm": "len", "proxy": length, "norm": Normalization(5, 0.2), "cfg": config()}
    with pytest.raises(ValueError, match="policy 'pythia': the ensemble engine runs GPT-2"):
        run_ensemble(other, plan, [run], length, Normalization(5, 0.2))


def test_run_runs_sends_each_policy_down_its_path(tiny_initial, tiny_hf_config, monkeypatch):
    """GPT-2 in one process: the ensemble; data parallel or another family: the solo loop."""
    from transformers import AutoModelForCausalLM

    from rmteacher.lm.pg import ensemble

    taken = []
    monkeypatch.setattr(ensemble, "run_ensemble", lambda *a, **k: taken.append("ensemble"))
    monkeypatch.setattr(ensemble, "run_grid", lambda *a, **k: taken.append("solo"))

    class TwoProcesses:
        num_processes = 2

    pythia = AutoModelForCausalLM.from_config(tiny_hf_config("gpt_neox", tiny_initial.tokenizer))
    other = InitialPolicy("pythia", "", pythia, tiny_initial.tokenizer, GENERATION)
    ensemble.run_runs(tiny_initial, None, [], None, None, threads=1, max_members=4)
    ensemble.run_runs(tiny_initial, None, [], None, None, accelerator=TwoProcesses())
    ensemble.run_runs(other, None, [], None, None, threads=1, max_members=4)
    assert taken == ["ensemble", "solo", "solo"]


def _batch(tokenizer, generator: torch.Generator, prompts: int = 2, k: int = 2):
    """A policy-gradient batch: left-padded prompts [prompts, 6], k responses [prompts * k, 5]
    per prompt, some ending early, and normalised rewards."""
    ids = torch.randint(10, len(tokenizer), (prompts, 6), generator=generator)
    mask = torch.ones(prompts, 6, dtype=torch.long)
    mask[0, :2] = 0  # left padding
    ids[mask == 0] = tokenizer.pad_token_id
    tokens = torch.randint(10, len(tokenizer), (prompts * k, 5), generator=generator)
    done = torch.ones(prompts * k, 5, dtype=torch.bool)
    done[1, 3:] = False  # responses that ended early
    done[2, 1:] = False
    tokens[~done] = tokenizer.pad_token_id
    z = torch.randn(prompts * k, generator=generator)
    return ids, mask, tokens, done, z


def _solo_loss(model, ref, ids, mask, tokens, done, z, cfg: PgRunConfig):
    """The loss exactly as loop.train computes it, on whole sequences (prompt repeated k
    times, then the response)."""
    from rmteacher.lm.world.sampling import sequence_token_logprobs

    k = cfg.num_generations
    sequences = torch.cat([ids.repeat_interleave(k, 0), tokens], dim=1)
    attention = torch.cat([mask.repeat_interleave(k, 0), done.long()], dim=1)
    prompt = ids.shape[1]
    with torch.no_grad():
        ref_lp = sequence_token_logprobs(ref, sequences, attention, prompt)
    logprobs = sequence_token_logprobs(model, sequences, attention, prompt)
    response = done.float()
    kl = ((logprobs.detach() - ref_lp) * response).sum(1)
    if cfg.algorithm == "rloo":
        adv = advantages(z - cfg.beta * kl, k, "rloo", "none")
        return policy_loss(logprobs, response, adv, "rloo")
    adv = advantages(z, k, "grpo", cfg.scale_rewards)
    return policy_loss(logprobs, response, adv, "grpo", cfg.beta, ref_lp)


def _moved(model, scale: float, seed: int):
    """A copy of `model` with every weight moved by noise (a policy away from its reference)."""
    import copy

    moved = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return moved


@pytest.mark.parametrize(
    "settings",
    [
        {"algorithm": "rloo", "beta": 0.05},
        {"algorithm": "grpo", "scale_rewards": "none", "beta": 0.0},
        {"algorithm": "grpo", "scale_rewards": "group", "beta": 0.1},
    ],
)
def test_member_gradient_equals_the_solo_gradient(tiny_initial, settings):
    """Each member on its own batch, beside members of the other algorithms: its gradient is
    the solo loop's on that batch, to float32 rounding."""
    ref = tiny_initial.reference
    cfgs = [
        config(algorithm="grpo", scale_rewards="group", beta=0.2),
        config(**settings),
        config(algorithm="rloo", beta=0.0),
    ]
    policies = [_moved(ref, 0.02, seed) for seed in range(3)]
    generator = torch.Generator().manual_seed(0)
    batches = [_batch(tiny_initial.tokenizer, generator) for _ in cfgs]
    stack = ensemble_gpt2.StackedGPT2.from_models(policies)
    frozen = ensemble_gpt2.StackedGPT2.replicate(ref, 3, requires_grad=False)
    ids, mask, tokens, done, z = (torch.stack(parts) for parts in zip(*batches, strict=True))
    with torch.no_grad():
        ref_start = ensemble_gpt2.prefix(frozen, ids, mask).repeat(2)
        ref_lp = ensemble_gpt2.response_logprobs(frozen, ref_start, tokens, done)
    start = ensemble_gpt2.prefix(stack, ids, mask).repeat(2)
    logprobs = ensemble_gpt2.response_logprobs(stack, start, tokens, done)
    response = done.float()
    kl = ((logprobs.detach() - ref_lp) * response).sum(-1)
    losses = member_losses(logprobs, response, z, kl, ref_lp, cfgs)
    losses.sum().backward()
    for e, (policy, cfg, batch) in enumerate(zip(policies, cfgs, batches, strict=True)):
        solo = _solo_loss(policy, ref, *batch, cfg)
        solo.backward()
        torch.testing.assert_close(losses[e], solo, rtol=1e-5, atol=1e-7)
        params = dict(policy.named_parameters())
        for name, weight in stack.weights.items():  # float32 rounding at the tensor's scale
            theirs = params[name].grad
            scale = float(theirs.abs().max())
            torch.testing.assert_close(weight.grad[e], theirs, rtol=1e-4, atol=1e-5 * scale)


def test_one_optimizer_step_per_member_equals_the_solo_step(tiny_initial):
    """Adam (trl's AdamW without weight decay) and SGD, clipped and not, each with its own
    learning rate: two steps of each member equal torch's optimizer on that member alone."""
    ref = tiny_initial.reference
    settings = [("adam", 1e-3, 1.0), ("adam", 3e-2, None), ("sgd", 0.5, 0.5), ("sgd", 0.1, None)]
    models = [_moved(ref, 0.0, 0) for _ in settings]
    stack = ensemble_gpt2.StackedGPT2.from_models(models)
    optimizer = StackedOptimizer(
        stack.parameters(), [s[0] for s in settings], [s[1] for s in settings]
    )
    limits = torch.tensor([float("inf") if s[2] is None else s[2] for s in settings])
    solo = []
    for model, (kind, lr, _) in zip(models, settings, strict=True):
        params = list(model.parameters())
        solo.append(
            torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
            if kind == "adam"
            else torch.optim.SGD(params, lr=lr)
        )
    generator = torch.Generator().manual_seed(1)
    for _ in range(2):
        before = {name: w.detach().clone() for name, w in stack.weights.items()}
        grads = {
            name: torch.randn(w.shape, generator=generator) for name, w in stack.weights.items()
        }
        for name, weight in stack.weights.items():
            weight.grad = grads[name].clone()
        norms = clip_member_grads([w.grad for w in stack.parameters()], limits)
        optimizer.step()
        for e, (model, (_, lr, clip)) in enumerate(zip(models, settings, strict=True)):
            for name, p in model.named_parameters():
                p.grad = grads[name][e].clone()
            norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), float("inf") if clip is None else clip
            )
            solo[e].step()
            torch.testing.assert_close(norms[e], norm, rtol=1e-6, atol=0)
            assert float(norm) > 1.0  # clipping bites where it is on
            for name, p in model.named_parameters():  # the updates, to float32 rounding
                mine = stack.weights[name][e] - before[name][e]
                theirs = p.detach() - before[name][e]
                torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6 * lr)


def _runs(rm, length):
    """Four runs that differ in seed, RM, normalisation, algorithm, optimizer, rate, clipping."""
    return {
        "A": {"rm": "rm", "proxy": rm, "norm": Normalization(0.0, 10.0), "cfg": config()},
        "B": {
            "rm": "rm",
            "proxy": rm,
            "norm": Normalization(0.1, 5.0),
            "cfg": config(seed=1, learning_rate=1e-2),
        },
        "C": {
            "rm": "len",
            "proxy": length,
            "norm": Normalization(5.0, 0.2),
            "cfg": config(seed=2, algorithm="grpo", scale_rewards="group", beta=0.1),
            "tags": {"variant": "c"},
        },
        "D": {
            "rm": "rm",
            "proxy": rm,
            "norm": Normalization(0.0, 10.0),
            "cfg": config(seed=3, optimizer="sgd", max_grad_norm=None, learning_rate=0.5),
        },
    }


def _member(outputs, seed: int):
    """One run's curves, logs (without wall-clock times) and samples."""
    curves, logs, samples = outputs
    logs = logs.drop(columns=TIMES)
    return [f[f.seed == seed].reset_index(drop=True) for f in (curves, logs, samples)]


def test_a_member_does_not_depend_on_its_co_members_the_ensemble_size_or_threads(
    tiny_initial, tiny_rm
):
    """Bit for bit: the same run alone (beside a discarded copy of itself), with another run on
    the same RM, third of four runs of mixed settings and RMs, cut into ensembles of two, and
    on one or two threads."""
    plan = TrainingPlan.build(PROMPTS, 4, 2, k=2, prompts_per_step=4, epochs=3, evals_per_epoch=1)
    runs = _runs(tiny_rm, load_reward("length"))
    gold, norm = tiny_rm, Normalization(0.0, 10.0)

    def member_a(names, threads, **options):
        chosen = [runs[n] for n in names]
        outputs = run_ensemble(
            tiny_initial, plan, chosen, gold, norm, keep=2, threads=threads, **options
        )
        return _member(outputs, seed=0)

    alone = member_a("A", 1)
    assert len(alone[0]) == 4 and len(alone[1]) == 3 and len(alone[2]) == 8
    assert alone[0].kl.iloc[-1] > 0.01  # the run moved
    for names, threads, options in [
        ("AB", 1, {}),
        ("CBAD", 1, {}),
        ("CBAD", 1, {"max_members": 2}),
        ("A", 2, {}),
        ("DCAB", 2, {}),
    ]:
        other = member_a(names, threads, **options)
        for mine, theirs in zip(alone, other, strict=True):
            # C's tags add a column to the joined frames; A's own columns must match exactly
            pd.testing.assert_frame_equal(
                mine.drop(columns="threads", errors="ignore"),
                theirs[mine.columns].drop(columns="threads", errors="ignore"),
                check_exact=True,
            )
        assert set(other[1].threads) == {threads}


def test_members_with_different_settings_behave_as_their_solo_runs(tiny_initial, tiny_rm):
    """Each member's curve and log equal its solo run's (run_grid) in format and, over two steps,
    in value to float32 rounding: the member draws the solo run's prompts and random stream."""
    plan = TrainingPlan.build(PROMPTS, 4, 2, k=2, prompts_per_step=4, epochs=2, evals_per_epoch=1)
    runs = list(_runs(tiny_rm, load_reward("length")).values())
    gold, norm = tiny_rm, Normalization(0.0, 10.0)
    ours = run_ensemble(tiny_initial, plan, runs, gold, norm, keep=1)
    solo = run_grid(tiny_initial, plan, runs, gold, norm, keep=1)
    for mine, theirs in zip(ours, solo, strict=True):
        assert list(mine.columns) == list(theirs.columns)
        assert list(mine.dtypes) == list(theirs.dtypes)
    keys = ["rm", "seed", "step"]
    curves, logs, samples = ours
    pd.testing.assert_frame_equal(curves[keys], solo[0][keys])
    pd.testing.assert_frame_equal(
        samples.drop(columns=["proxy_raw", "gold_raw"]),
        solo[2].drop(columns=["proxy_raw", "gold_raw"]),
    )
    # the same samples (r_G and the proxy are scores of the sampled texts), and the continuous
    # measurements to the rounding two steps accumulate (SGD at rate 0.5 unclipped included)
    for column in ("proxy", "gold", "proxy_increase"):
        np.testing.assert_allclose(curves[column], solo[0][column], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(curves.kl, solo[0].kl, rtol=1e-3, atol=1e-5)
    for column in ("reward", "within_group_variance"):
        np.testing.assert_allclose(logs[column], solo[1][column], rtol=1e-5, atol=1e-6)
    for column in ("loss", "grad_norm", "kl"):
        np.testing.assert_allclose(logs[column], solo[1][column], rtol=1e-3, atol=1e-5)
    assert (logs.tokens == solo[1].tokens).all()


def test_threads_are_pinned_for_the_run_and_recorded(tiny_initial):
    plan = TrainingPlan.build(PROMPTS, 2, 2, k=2, prompts_per_step=4, epochs=1, evals_per_epoch=1)
    length, norm = load_reward("length"), Normalization(5.0, 0.2)
    run = {"rm": "len", "proxy": length, "norm": norm, "cfg": config()}
    before = torch.get_num_threads()
    _, logs, _ = run_ensemble(tiny_initial, plan, [run], length, norm, threads=1)
    assert set(logs.threads) == {1} and torch.get_num_threads() == before
    _, log, _ = tracked_run(
        tiny_initial, plan, "len", length, norm, length, norm, config(), threads=1
    )
    assert set(log.threads) == {1} and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads: expected a positive integer"):
        with pinned_threads(0):
            pass


def test_incompatible_members_and_bad_sizes_are_refused_before_any_compute(tiny_initial):
    length, norm = load_reward("length"), Normalization(5.0, 0.2)
    members = [
        Member("len", length, norm, config()),
        Member("len", length, norm, config(num_generations=4, seed=1)),
    ]
    with pytest.raises(ValueError, match="members differ in num_generations"):
        train_ensemble(tiny_initial.reference, tiny_initial.tokenizer, PROMPTS, members, 1)
    plan = TrainingPlan.build(PROMPTS, 2, 2, k=2, prompts_per_step=4, epochs=1, evals_per_epoch=1)
    run = {"rm": "len", "proxy": length, "norm": norm, "cfg": config()}
    with pytest.raises(ValueError, match="max_members must be at least 2"):
        run_ensemble(tiny_initial, plan, [run], length, norm, max_members=1)


def test_a_reward_failing_mid_run_names_the_run_and_the_step(tiny_initial):
    from rmteacher.rewards.registry import Reward, RewardError

    plan = TrainingPlan.build(PROMPTS, 2, 2, k=2, prompts_per_step=4, epochs=2, evals_per_epoch=1)
    calls = []

    def flaky(prompts, responses):
        calls.append(len(prompts))
        return [float("nan") if len(calls) == 2 else 1.0] * len(responses)

    length, norm = load_reward("length"), Normalization(5.0, 0.2)
    proxy = Reward("flaky", flaky, batch_size=1024)
    run = {"rm": "flaky", "proxy": proxy, "norm": norm, "cfg": config(seed=7)}
    with pytest.raises(RewardError) as err:
        run_ensemble(tiny_initial, plan, [run], length, norm)
    message = str(err.value)
    assert message.startswith("rloo tiny flaky seed 7, step 1: reward 'flaky' returned nan")
    assert "\n" not in message


def test_an_rm_scores_a_text_alike_whatever_texts_share_its_batch(tiny_rm):
    """Fixed-length scoring: the ensemble scores many runs' texts in one batch."""
    texts = ["good", "a much longer response than the others, with many more tokens in it"]
    with fixed_length_scoring():
        alone = tiny_rm(["p"], texts[:1])
        beside = tiny_rm(["p", "q"], texts)
    assert alone[0] == beside[0]
    with fixed_length_scoring(ensemble_gpt2.sequence_scores):  # the engine's faster kernel
        fused_alone = tiny_rm(["p"], texts[:1])
        fused_beside = tiny_rm(["p", "q"], texts)
    assert fused_alone[0] == fused_beside[0]
    np.testing.assert_allclose(fused_beside, beside, rtol=1e-5, atol=1e-6)


def test_a_member_draws_the_solo_sampler_stream(tiny_initial):
    """With the same weights and seed, member e samples what fast_gpt2.sample samples from
    torch's global stream (the same uniforms, in the same order)."""
    from rmteacher.lm.world.sampling import chat_prompt_batch
    from rmteacher.models import fast_gpt2

    model, tok = tiny_initial.reference, tiny_initial.tokenizer
    ids, mask = chat_prompt_batch(tok, PROMPTS)
    torch.manual_seed(5)
    solo = fast_gpt2.sample(model, ids, mask, 8, 1.0, tok.eos_token_id, tok.pad_token_id)
    stack = ensemble_gpt2.StackedGPT2.from_models([_moved(model, 0.05, 1), model], False)
    generators = [torch.Generator().manual_seed(s) for s in (9, 5)]
    start = ensemble_gpt2.prefix(stack, torch.stack([ids, ids]), torch.stack([mask, mask]))
    tokens = ensemble_gpt2.sample(
        stack, start, 8, 1.0, tok.eos_token_id, tok.pad_token_id, generators
    )
    assert torch.equal(tokens[1, :, : solo.shape[1]], solo)
    assert (tokens[1, :, solo.shape[1] :] == tok.pad_token_id).all()
    assert not torch.equal(tokens[0], tokens[1])
