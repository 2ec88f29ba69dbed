"""Run by test_data_parallel.py under `accelerate launch --multi_gpu --num_processes 2` (gloo on
a CPU machine): the data-parallel arithmetic of the policy-gradient loop on a fixed batch, then a
short run. Each process writes what it saw to OUT/rank<r>.json.

Usage: accelerate launch ... two_process_run.py POLICY_DIR OUT_DIR
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM

from rmteacher.core.hf import load_tokenizer
from rmteacher.lm.pg.loop import PgRunConfig, advantages, average_gradients, policy_loss, train
from rmteacher.lm.pg.reward import NormalizedReward
from rmteacher.lm.world.sampling import chat_prompt_batch, sample_tokens, sequence_token_logprobs
from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import load_reward

PROMPTS = ["It was a", "She said that", "The day was", "He never", "In the end", "They all"]
K = 2


def batch_gradient(model, tokenizer, prompt_rows: list[int], sequences, attention, width, z):
    """The RLOO loss gradient of the rows of `prompt_rows` (prompt indices into the batch)."""
    rows = torch.as_tensor(np.concatenate([[K * p + j for j in range(K)] for p in prompt_rows]))
    model.zero_grad(set_to_none=True)
    logprobs = sequence_token_logprobs(model, sequences[rows], attention[rows], width)
    mask = attention[rows, width:].float()
    loss = policy_loss(logprobs, mask, advantages(z[rows], K, "rloo", "none"), "rloo")
    loss.backward()


def flat_grad(model) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])


def main(policy_dir: str, out: Path) -> None:
    accelerator = Accelerator(cpu=True)
    rank, world = accelerator.process_index, accelerator.num_processes
    tokenizer = load_tokenizer(policy_dir)
    model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()

    # 1. One fixed batch (4 prompts x k samples, the same on both processes: same seed, same
    #    model). The full batch's gradient against the mean of the shards' gradients.
    torch.manual_seed(0)
    ids, mask = chat_prompt_batch(tokenizer, [p for p in PROMPTS[:4] for _ in range(K)])
    with torch.no_grad():
        completion = sample_tokens(
            model, ids, mask, 6, 1.0, tokenizer.eos_token_id, tokenizer.pad_token_id
        )
    sequences = torch.cat([ids, completion.tokens], 1)
    attention = torch.cat([mask, completion.mask.long()], 1)
    z = torch.linspace(-1.0, 1.0, sequences.shape[0])
    batch_gradient(model, tokenizer, [0, 1, 2, 3], sequences, attention, ids.shape[1], z)
    full = flat_grad(model)
    batch_gradient(
        model, tokenizer, [0, 1, 2, 3][rank::world], sequences, attention, ids.shape[1], z
    )
    average_gradients(model, accelerator)
    averaged = flat_grad(model)

    # 2. A three-step run; the replicas must stay identical.
    cfg = PgRunConfig(
        num_generations=K,
        prompts_per_step=4,
        beta=0.05,
        learning_rate=1e-2,
        max_new_tokens=6,
        temperature=1.0,
        seed=0,
    )
    reward = NormalizedReward(load_reward("length"), Normalization(5.0, 0.2), "length")
    policy, log = train(
        model, tokenizer, PROMPTS, reward, cfg, max_steps=3, accelerator=accelerator
    )
    params = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])
    replicas = accelerator.gather(params[None]).reshape(world, -1)
    result = {
        "rank": rank,
        "world": world,
        "gradient_max_abs_difference": float((full - averaged).abs().max()),
        "gradient_max_abs": float(full.abs().max()),
        "replica_max_abs_difference": float((replicas - replicas[0]).abs().max()),
        "log": log.drop(columns=[c for c in log if c.startswith("time_")]).to_dict("list"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
