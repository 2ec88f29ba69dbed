"""Time one policy-gradient step of the Section 4.1 runs, part by part, against its FLOP floor.

The floor of a part is the arithmetic it cannot avoid - the tokens it pushes through a model
times that model's FLOPs per token (2 per weight, plus attention, plus the LM head; a backward
pass costs twice its forward) - divided by the matrix-multiply throughput measured here, on this
machine, at the shapes the model uses. `--trl` also times trl's RLOOTrainer on the same policy,
reward and batch, the loop this one replaced.

Usage: python benchmarks/pg_step.py [--steps 30] [--prompts-per-step 16] [--trl]
(run after the pipeline's lm_sft and rm_train stages, from the repository root).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--prompts-per-step", type=int, default=16)
    parser.add_argument("--trl", action="store_true", help="also time trl's RLOOTrainer")
    args = parser.parse_args()

    from rmteacher.core.hf import load_policy
    from rmteacher.lm.pg.loop import PARTS, PgRunConfig, train
    from rmteacher.lm.pg.reward import NormalizedReward
    from rmteacher.lm.rm.training import read_manifest
    from rmteacher.lm.world.prompts import World
    from rmteacher.rewards.normalize import Normalization
    from rmteacher.rewards.registry import load_reward

    world = World.load()
    policy, tokenizer = load_policy(world.policy_dir)
    spec = read_manifest()["rms"][0]
    proxy = load_reward(spec["path"], spec["name"])
    reward = NormalizedReward(proxy, Normalization(0.0, 1.0), spec["name"])
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
    log = log.iloc[3:]  # warm-up steps excluded
    d = policy.config.n_embd
    tokens = int(log.tokens.mean())
    gflops = matmul_gflops(tokens, d, 4 * d)
    prompt_tokens = (
        log.tokens.mean() - log.completion_length.mean() * log.completions.mean()
    ) / log.completions.mean()
    floor = floors(log, policy, proxy.fn.model, prompt_tokens, gflops)
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
