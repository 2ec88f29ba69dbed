"""Time one policy-gradient step of the Section 4.1 runs, part by part, against its FLOP floor.

The floor of a part is the arithmetic it cannot avoid - the tokens it pushes through a model
times that model's FLOPs per token (2 per weight, plus attention, plus the LM head; a backward
pass costs twice its forward) - divided by the matrix-multiply throughput measured here, on this
machine, at the shapes the model uses. `--trl` also times trl's RLOOTrainer on the same policy,
reward and batch, the loop this one replaced.

`--ensemble` times the ensemble engine (`rmteacher.lm.pg.ensemble`) instead: for each E of
`--members`, E runs of the same settings (seeds 0..E-1) trained together; it prints seconds per
member-step, the speed-up over one solo run (`loop.train`, today's path) and over the ensemble
at E = 1, and the aggregate step against its FLOP floor at the batched shapes (the matrix-multiply
throughput measured there): `floor_s` counts the arithmetic the ensemble does (one pass per
prompt for its k samples), `solo_work_floor_s` the solo loop's (every whole sequence, as the
default mode counts it); then torch.func's vmap against the batched products, and the seconds
of one evaluation (512 samples) per member.

The reward is the first RM rm_train trained when it has run, else (`--reward standin`) a stand-in
of the same architecture and cost: the initial policy's body with a fresh one-output head, as
rm_train initialises its RMs; `--reward` also takes any reward spec (e.g. models/gold_rm).

Usage: python benchmarks/pg_step.py [--steps 30] [--prompts-per-step 16] [--trl]
       python benchmarks/pg_step.py --ensemble [--members 1 4 16 32] [--steps 12]
(run after the pipeline's lm_sft stage, from the repository root).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402


def matmul_gflops(rows: int, inner: int, cols: int, repeats: int = 50) -> float:
    """Measured fp32 GFLOP/s of [rows, inner] @ [inner, cols] on this machine."""
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * rows * inner * cols * repeats / (time.perf_counter() - start) / 1e9


def forward_flops_per_token(config, context: int, lm_head: bool) -> float:
    """FLOPs of one token through a GPT-2: 2 per weight of the blocks, attention over `context`
    earlier positions (scores and weighted values), and the vocabulary projection."""
    d, layers = config.n_embd, config.n_layer
    blocks = layers * 12 * d * d
    attention = layers * 4 * context * d
    head = 2 * d * config.vocab_size if lm_head else 0
    return 2 * blocks + attention + head


def floors(log: pd.DataFrame, policy, rm, prompt_tokens: float, gflops: float) -> dict:
    """Seconds each part needs at `gflops`, from the tokens the loop logged."""
    completion = log.completion_length.mean() * log.completions.mean()
    prompts = prompt_tokens * log.completions.mean()
    total = prompts + completion
    context = (prompt_tokens + log.completion_length.mean()) / 2
    lm = forward_flops_per_token(policy.config, context, lm_head=True)
    body = forward_flops_per_token(rm.config, context, lm_head=False)
    flops = {
        "generation": total * lm,
        "reward": total * body,
        "reference": total * lm,
        "policy_forward": total * lm,
        "backward": 2 * total * lm,
        "optimizer": 12 * sum(p.numel() for p in policy.parameters()),
    }
    return {part: value / (gflops * 1e9) for part, value in flops.items()}


def time_trl(policy_dir, reward, prompts, args) -> float:
    """Median seconds per step of trl's RLOOTrainer with the same batch and lengths."""
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    from rmteacher.core.hf import load_tokenizer
    from rmteacher.lm.trainers import quiet, trainer_kwargs
    from rmteacher.lm.world.sampling import chat_prompt

    times = []

    class Clock:
        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.start)

    from transformers import TrainerCallback

    class Callback(Clock, TrainerCallback):
        pass

    tokenizer = load_tokenizer(policy_dir)
    # trl has no prompt truncation: pass the chat-formatted prompts already cut to the context
    # budget, as the loop does (the last 64 - 16 tokens).
    prompts = [
        tokenizer.decode(
            tokenizer(chat_prompt(tokenizer, p), add_special_tokens=False).input_ids[-48:]
        )
        for p in prompts
    ]
    with tempfile.TemporaryDirectory() as scratch:
        config = RLOOConfig(
            **trainer_kwargs(scratch, 0),
            per_device_train_batch_size=args.prompts_per_step * 2,
            num_generations=2,
            max_steps=args.steps,
            max_completion_length=16,
            learning_rate=1e-4,
            beta=0.05,
            top_k=0,
            top_p=1.0,
        )
        trainer = RLOOTrainer(
            model=policy_dir,
            reward_funcs=[
                lambda prompts, completions, **_: list(
                    reward([str(p) for p in prompts], [str(c) for c in completions])
                )
            ],
            args=config,
            train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
            processing_class=tokenizer,
            callbacks=[Callback()],
        )
        quiet(trainer).train()
    return float(np.median(times[2:]))


def ensemble_floor(log: pd.DataFrame, policy, rm, prompt_tokens: float, k: int, gflops: float):
    """Seconds of the arithmetic one member's step does on the ensemble path, at `gflops`: one
    pass over each of the B = N / k prompts with its backward (3x) and the reference's (1x);
    over the N responses' tokens the decoding, the reference's and the policy's pass (1x each,
    with the LM head) and the backward (2x); the RM on prompt + response; the optimizer."""
    rows = log.completions.mean()
    response = log.completion_length.mean() * rows
    prompts = prompt_tokens * rows / k
    context = (prompt_tokens + log.completion_length.mean()) / 2
    lm = forward_flops_per_token(policy.config, context, lm_head=True)
    body = forward_flops_per_token(policy.config, context, lm_head=False)
    scorer = forward_flops_per_token(rm.config, context, lm_head=False)
    flops = (
        4 * prompts * body
        + 5 * response * lm
        + (prompt_tokens * rows + response) * scorer
        + 12 * sum(p.numel() for p in policy.parameters())
    )
    return flops / (gflops * 1e9)


def load_proxy(choice: str, policy_dir: str, scratch: str):
    """The benchmark's RM: rm_train's first (or `standin` when rm_train has not run), a stand-in
    of the same architecture, or a reward spec."""
    from rmteacher.core import paths
    from rmteacher.rewards.registry import load_reward

    if choice == "trained" or (choice == "auto" and paths.RM_MANIFEST.is_file()):
        from rmteacher.lm.rm.training import read_manifest

        spec = read_manifest()["rms"][0]
        return load_reward(spec["path"], spec["name"]), spec["name"]
    if choice in ("auto", "standin"):
        from transformers import AutoModelForSequenceClassification

        from rmteacher.core.hf import load_tokenizer

        tokenizer = load_tokenizer(policy_dir)
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(policy_dir, num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        return load_reward(scratch, "standin"), "stand-in RM (initial policy + fresh head)"
    return load_reward(choice), choice


def step_seconds(log: pd.DataFrame, members: int = 1) -> float:
    """Median seconds of a whole step (all parts) over the steps after the warm-up; an ensemble
    log's parts are its seconds divided by E."""
    from rmteacher.lm.pg.loop import PARTS

    parts = log[[f"time_{part}" for part in PARTS]].iloc[3:]
    return float(parts.sum(axis=1).median()) * members


def bmm_gflops(members: int, rows: int, inner: int, cols: int, repeats: int = 20) -> float:
    """Measured fp32 GFLOP/s of the batched product [E, rows, inner] @ [E, inner, cols]."""
    a, b = torch.randn(members, rows, inner), torch.randn(members, inner, cols)
    torch.bmm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.bmm(a, b)
    seconds = time.perf_counter() - start
    return 2 * members * rows * inner * cols * repeats / seconds / 1e9


def ensemble_mode(args, world, policy, tokenizer, proxy, prompts, cfg, solo_log) -> None:
    """The table of `--ensemble` (module docstring)."""
    from dataclasses import replace

    from rmteacher.lm.pg.ensemble import Member, train_ensemble
    from rmteacher.lm.pg.ensemble_eval import EnsembleEvaluator, EvalMember
    from rmteacher.lm.pg.ensemble_gpt2 import StackedGPT2
    from rmteacher.lm.pg.loop import PARTS
    from rmteacher.lm.pg.tracking import Evaluator
    from rmteacher.rewards.normalize import Normalization

    norm = Normalization(0.0, 1.0)
    solo = step_seconds(solo_log)
    d = policy.config.n_embd
    rows, single = [], None
    for members in args.members:
        runs = [Member("proxy", proxy, norm, replace(cfg, seed=seed)) for seed in range(members)]
        if members == 1:
            runs = runs * 2  # what run_ensemble trains for a lone run (ensemble_gpt2 docstring)
        _, logs = train_ensemble(policy, tokenizer, prompts, runs, args.steps)
        computed = len(runs)
        aggregate = step_seconds(logs[0], computed)
        per_member = aggregate / members
        single = single or per_member
        log = logs[0].iloc[3:]
        tokens = int(log.tokens.mean())
        gflops = bmm_gflops(computed, tokens, d, 4 * d)
        prompt_tokens = (
            log.tokens.mean() - log.completion_length.mean() * log.completions.mean()
        ) / log.completions.mean()
        solo_floor = computed * sum(
            floors(log, policy, proxy_model(proxy), prompt_tokens, gflops).values()
        )
        floor = computed * ensemble_floor(
            log, policy, proxy_model(proxy), prompt_tokens, cfg.num_generations, gflops
        )
        rows.append(
            {
                "E": members,
                "computed": computed,
                "s_per_member_step": per_member,
                "speedup_vs_solo": solo / per_member,
                "speedup_vs_E1": single / per_member,
                "aggregate_step_s": aggregate,
                "floor_s": floor,
                "ratio_to_floor": aggregate / floor,
                "solo_work_floor_s": solo_floor,
                "bmm_gflops": gflops,
                **{f"{part}_s": float(log[f"time_{part}"].median()) * computed for part in PARTS},
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="{:.3f}".format))
    table = pd.DataFrame(rows)
    print(
        f"\nsolo loop (loop.train): {solo:.3f} s per step; {args.steps} steps per E, the first 3 "
        f"excluded; {torch.get_num_threads()} threads"
    )
    print(table.to_string(index=False, float_format="{:.3f}".format))
    length = prompts_length(tokenizer, prompts, world.generation()["max_new_tokens"], policy)
    comparison = pd.DataFrame(
        [vmap_against_bmm(policy, m, 2 * args.prompts_per_step, *length) for m in (4, 16)]
    )
    print("\nforward + backward of the log-probabilities: torch.func vmap against batched bmm")
    print(comparison.to_string(index=False, float_format="{:.3f}".format))
    # evaluation: 128 prompts x 4 samples per member, r_G (models/gold_rm, as the stages) beside
    # the proxy, solo Evaluator against the ensemble's (each timed after one warm-up call)
    from rmteacher.rewards.registry import load_reward

    gold = load_reward("models/gold_rm", "gold")
    eval_prompts, generation = prompts[:128], world.generation()
    solo_eval = Evaluator(
        policy, tokenizer, eval_prompts, 4, proxy, norm, gold, norm, generation, 0
    )
    solo_eval(policy)
    start = time.perf_counter()
    solo_eval(policy)
    solo_seconds = time.perf_counter() - start
    evaluator = EnsembleEvaluator(policy, tokenizer, eval_prompts, 4, gold, norm, generation)
    eval_rows = []
    for members in sorted({max(2, m) for m in args.members}):
        stack = StackedGPT2.replicate(policy, members, requires_grad=False)
        targets = [EvalMember(seed, proxy, norm) for seed in range(members)]
        evaluator(stack, stack, targets)
        start = time.perf_counter()
        evaluator(stack, stack, targets)
        seconds = time.perf_counter() - start
        eval_rows.append(
            {
                "E": members,
                "s_per_member_eval": seconds / members,
                "speedup": solo_seconds / (seconds / members),
            }
        )
    print(f"\nevaluation of 512 samples: solo {solo_seconds:.2f} s")
    print(pd.DataFrame(eval_rows).to_string(index=False, float_format="{:.3f}".format))


def prompts_length(tokenizer, prompts, max_new_tokens: int, policy) -> tuple[int, int]:
    """(sequence length, prompt length) of the ensemble's training rows."""
    from rmteacher.lm.world.sampling import chat_prompt_batch, prompt_budget

    ids, _ = chat_prompt_batch(tokenizer, prompts, max_length=prompt_budget(policy, max_new_tokens))
    return ids.shape[1] + max_new_tokens, ids.shape[1]


def vmap_against_bmm(policy, members: int, rows: int, length: int, prompt: int) -> dict:
    """Seconds of one forward + backward of the response log-probabilities of E members on
    [E, rows, length] tokens: torch.func (stack_module_state + vmap of functional_call over
    fast_gpt2) against ensemble_gpt2's hand-batched products."""
    import copy

    from torch.func import functional_call, stack_module_state, vmap

    from rmteacher.lm.pg import ensemble_gpt2
    from rmteacher.models import fast_gpt2

    class Logprobs(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, sequences, attention):
            return fast_gpt2.token_logprobs(self.model, sequences, attention, prompt)

    sequences = torch.randint(5, policy.config.vocab_size, (members, rows, length))
    attention = torch.ones_like(sequences)
    params, _ = stack_module_state([copy.deepcopy(policy) for _ in range(members)])
    params = {f"model.{name}": value for name, value in params.items()}
    params["model.lm_head.weight"] = params["model.transformer.wte.weight"]  # tied
    shell = Logprobs(copy.deepcopy(policy).to("meta"))
    stack = ensemble_gpt2.StackedGPT2.replicate(policy, members)
    ways = {
        "vmap_s": lambda: vmap(lambda p, s, a: functional_call(shell, p, (s, a)))(
            params, sequences, attention
        ),
        "bmm_s": lambda: ensemble_gpt2.token_logprobs(stack, sequences, attention, prompt),
    }
    out = {"E": members}
    for name, way in ways.items():
        way().sum().backward()
        start = time.perf_counter()
        for _ in range(3):
            way().sum().backward()
        out[name] = (time.perf_counter() - start) / 3
    return out


def proxy_model(proxy):
    """The scoring model of a sequence-classifier reward (for its FLOPs)."""
    return proxy.fn.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--prompts-per-step", type=int, default=16)
    parser.add_argument("--trl", action="store_true", help="also time trl's RLOOTrainer")
    parser.add_argument("--ensemble", action="store_true", help="time the ensemble engine")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument(
        "--reward", default="auto", help="auto | trained | standin | a reward spec (module doc)"
    )
    args = parser.parse_args()

    from rmteacher.core.hf import load_policy
    from rmteacher.lm.pg.loop import PARTS, PgRunConfig, train
    from rmteacher.lm.pg.reward import NormalizedReward
    from rmteacher.lm.world.prompts import World
    from rmteacher.rewards.normalize import Normalization

    world = World.load()
    policy, tokenizer = load_policy(world.policy_dir)
    scratch = tempfile.mkdtemp()
    proxy, proxy_name = load_proxy(args.reward, world.policy_dir, scratch)
    print(f"reward: {proxy_name}")
    reward = NormalizedReward(proxy, Normalization(0.0, 1.0), proxy.name)
    prompts = world.prompt_texts("pg_train")
    cfg = PgRunConfig(
        num_generations=2,
        prompts_per_step=args.prompts_per_step,
        beta=0.05,
        learning_rate=1e-4,
        seed=0,
        **world.generation(),
    )
    _, log = train(policy, tokenizer, prompts, reward, cfg, args.steps)
    if args.ensemble:
        ensemble_mode(args, world, policy, tokenizer, proxy, prompts, cfg, log)
        return
    log = log.iloc[3:]  # warm-up steps excluded
    d = policy.config.n_embd
    tokens = int(log.tokens.mean())
    gflops = matmul_gflops(tokens, d, 4 * d)
    prompt_tokens = (
        log.tokens.mean() - log.completion_length.mean() * log.completions.mean()
    ) / log.completions.mean()
    floor = floors(log, policy, proxy_model(proxy), prompt_tokens, gflops)
    measured = {part: log[f"time_{part}"].median() for part in PARTS}
    rows = [
        {
            "part": part,
            "measured_ms": 1000 * measured[part],
            "floor_ms": 1000 * floor[part],
            "ratio": measured[part] / floor[part],
        }
        for part in PARTS
    ]
    rows.append(
        {
            "part": "step",
            "measured_ms": 1000 * sum(measured.values()),
            "floor_ms": 1000 * sum(floor.values()),
            "ratio": sum(measured.values()) / sum(floor.values()),
        }
    )
    table = pd.DataFrame(rows)
    print(
        f"policy {sum(p.numel() for p in policy.parameters()):,} parameters; "
        f"{int(log.completions.mean())} completions x {log.completion_length.mean():.1f} tokens "
        f"per step; matmul throughput {gflops:.0f} GFLOP/s at [{tokens}, {d}] x [{d}, {4 * d}] "
        f"({torch.get_num_threads()} threads)"
    )
    print(table.to_string(index=False, float_format="{:.2f}".format))
    if args.trl:
        seconds = time_trl(world.policy_dir, proxy, prompts, args)
        print(f"trl RLOOTrainer, same batch: {1000 * seconds:.0f} ms per step")


if __name__ == "__main__":
    main()
