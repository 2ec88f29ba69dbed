"""Would training rm_train's five mix RMs as one ensemble pay? Times one step of trl's
RewardTrainer (the stage's path: one RM, `batch_size` pairs, Bradley-Terry loss with reward
centering, AdamW) against one step of E RMs trained together on stacked weights
(`ensemble_gpt2`'s batched blocks, a one-output head at the last real token, the same loss and
AdamW arithmetic), on the same kind of pairs, and prints the seconds per RM-step and the
estimated training time of the stage's E RMs both ways.

The RMs are stand-ins of the trained ones' architecture and cost: the initial policy's body with
a fresh head, as rm_train initialises them; the pairs are world prompts with two corpus
continuations (what the texts say does not change the time).

Usage: python benchmarks/rm_ensemble.py [--members 5] [--steps 20] [--batch-size 64]
(after the lm_sft stage, from the repository root).
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


def pairs_frame(world, count: int) -> pd.DataFrame:
    """`count` (prompt, chosen, rejected) triples from the RM-training split."""
    passages = world.prompts["rm_train"][: 2 * count]
    return pd.DataFrame(
        {
            "prompt": [p.prompt for p in passages[:count]],
            "chosen": [p.continuation for p in passages[:count]],
            "rejected": [p.continuation for p in passages[count : 2 * count]],
        }
    )


def time_trl(policy_dir: str, pairs: pd.DataFrame, batch_size: int, steps: int) -> float:
    """Median seconds per step of trl's RewardTrainer, as rm_train configures it."""
    from transformers import AutoModelForSequenceClassification, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from rmteacher.core.hf import context_length, load_tokenizer
    from rmteacher.lm.rm.training import preference_dataset
    from rmteacher.lm.trainers import quiet, trainer_kwargs

    times = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, *args, **kwargs):
            times.append(time.perf_counter() - self.start)

    tokenizer = load_tokenizer(policy_dir)
    model = AutoModelForSequenceClassification.from_pretrained(policy_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    with tempfile.TemporaryDirectory() as scratch:
        args = RewardConfig(
            **trainer_kwargs(scratch, 0),
            per_device_train_batch_size=batch_size,
            max_steps=steps,
            learning_rate=5e-4,
            lr_scheduler_type="constant",
            max_length=context_length(model.config),
            center_rewards_coefficient=0.01,
        )
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=preference_dataset(pairs),
            processing_class=tokenizer,
            callbacks=[Clock()],
        )
        quiet(trainer).train()
    return float(np.median(times[3:]))


def time_ensemble(policy_dir: str, pairs: pd.DataFrame, members: int, batch: int, steps: int):
    """Median seconds per step of `members` RMs trained together, each on its own `batch`
    pairs (chosen and rejected texts padded to the longest of the step, as trl pads)."""
    from transformers import AutoModelForCausalLM

    from rmteacher.core.hf import load_tokenizer
    from rmteacher.lm.pg import ensemble_gpt2
    from rmteacher.lm.pg.ensemble_optim import StackedOptimizer
    from rmteacher.models import fast_gpt2

    tokenizer = load_tokenizer(policy_dir)
    body = AutoModelForCausalLM.from_pretrained(policy_dir)
    stack = ensemble_gpt2.StackedGPT2.replicate(body, members)
    width = body.config.n_embd
    head = torch.zeros(members, width, 1).normal_(0, 0.02).requires_grad_(True)
    optimizer = StackedOptimizer([*stack.parameters(), head], ["adam"] * members, [5e-4] * members)

    def texts(column):
        return [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                tokenize=False,
            )
            for p, r in zip(pairs.prompt, pairs[column], strict=True)
        ]

    limit = body.config.n_positions
    encoded = tokenizer(
        texts("chosen") + texts("rejected"),
        return_tensors="pt",
        padding="max_length",
        truncation=True,
        max_length=limit,
        padding_side="right",
        add_special_tokens=False,
    )
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    count = len(pairs)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        rows = torch.as_tensor(rng.integers(0, count, (members, batch)))
        both = torch.cat([rows, rows + count], dim=1)  # chosen then rejected
        sequences, attention = ids[both], mask[both]
        longest = int(attention.sum(-1).max())  # right padding: cut to the longest, as trl does
        sequences, attention = sequences[..., :longest], attention[..., :longest]
        hidden, _, _ = ensemble_gpt2.hidden_states(
            stack, sequences, attention, fast_gpt2.positions(attention)
        )
        last = attention.cumsum(-1).argmax(-1)  # [E, 2B]
        pooled = hidden.gather(2, last[..., None, None].expand(-1, -1, 1, width)).squeeze(2)
        scores = torch.bmm(pooled, head).squeeze(-1)
        chosen, rejected = scores[:, :batch], scores[:, batch:]
        loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean(-1)
        loss = loss + 0.01 * ((chosen + rejected) ** 2).mean(-1)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[3:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=20000, help="pairs per RM in the stage")
    args = parser.parse_args()

    from rmteacher.lm.world.prompts import World

    world = World.load()
    pairs = pairs_frame(world, 4 * args.batch_size)
    trl = time_trl(world.policy_dir, pairs, args.batch_size, args.steps)
    ensemble = time_ensemble(world.policy_dir, pairs, args.members, args.batch_size, args.steps)
    steps = int(np.ceil(args.pairs / args.batch_size))
    table = pd.DataFrame(
        [
            {
                "path": "trl RewardTrainer, one RM at a time",
                "s_per_step": trl,
                "s_per_rm_step": trl,
                "stage_training_s": trl * steps * args.members,
            },
            {
                "path": f"ensemble of {args.members} RMs",
                "s_per_step": ensemble,
                "s_per_rm_step": ensemble / args.members,
                "stage_training_s": ensemble * steps,
            },
        ]
    )
    print(
        f"{args.members} RMs x {steps} steps of {args.batch_size} pairs; {torch.get_num_threads()} "
        "threads; the first 3 steps excluded"
    )
    print(table.to_string(index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
