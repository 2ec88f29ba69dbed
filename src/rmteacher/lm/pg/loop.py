"""The policy-gradient step of the paper's runs, written out (RLOO, and GRPO for Section 4.2).

One optimizer step:
1. B prompts (the next slice of a seeded per-epoch permutation) are each sampled k times from
   the current policy (temperature T, no top-k/top-p, responses end at EOS);
2. each response gets its normalised reward z = c * (r_RM(x, y) - mu) * s (mu, s fixed from the
   initial policy's samples, c a uniform scale, 1 in the paper);
3. RLOO: the KL to the initial policy enters the reward, R = z - beta * sum_t (log pi - log
   pi_ref) (first-order per-token estimate, as trl and the paper's code), the advantage is
   A_i = R_i - mean_{j != i} R_j (leave-one-out baseline) and the loss is
   -mean_i A_i * log pi(y_i | x_i), the sequence-level REINFORCE loss, whose gradient is that
   of trl's PPO-clip loss at ratio 1 (one optimisation pass per batch);
   GRPO: A_i = z_i - mean_j z_j, divided by the group std + 1e-4 when `scale_rewards="group"`
   (trl's default, which removes the per-prompt reward scale the paper studies), per-token
   loss averaged over each response, then over the batch; a KL weight beta > 0 adds trl's k3
   estimator to the loss;
4. the gradient norm is clipped (trl's default 1.0; `max_grad_norm=None` turns it off) and
   Adam (trl's AdamW without weight decay) or plain SGD takes the step.

An "epoch" counts completions, as trl and the paper do: one epoch generates as many responses as
there are training prompts, so with k = 2 one pass over the prompts is two epochs.

Data parallel (`accelerator` with W > 1 processes, launched by `accelerate launch`): each
process samples and scores every W-th prompt of the step's B (B must divide by W), computes its
loss on its B/W prompts, and the gradients are averaged across processes before clipping, so
the update is the gradient of the B-prompt loss (the mean of equal-sized shards' means); the
replicas stay identical. Process r samples from seed + r (process 0 from the 1-process stream),
so a W-process run is another sample of the same run, not the same trajectory.

This is our own loop rather than trl's RLOOTrainer because at this world's size a trl step is
mostly fixed overhead; `tests/lm/pg/test_loop.py` checks that its loss has the gradient of
trl's RLOO loss on the same batch.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from rmteacher.lm.pg.settings import ALGORITHMS, OPTIMIZERS, PgRunConfig  # noqa: F401  (loop's API)
from rmteacher.lm.world.sampling import (
    chat_prompt_batch,
    prompt_budget,
    sample_tokens,
    sequence_token_logprobs,
)
from rmteacher.rewards.registry import RewardError

PARTS = ("generation", "reward", "reference", "policy_forward", "backward", "optimizer")


def prompt_schedule(n_prompts: int, per_step: int, max_steps: int, seed: int) -> np.ndarray:
    """[max_steps, per_step] prompt indices: consecutive slices of a fresh seeded permutation of
    the prompts per pass (a pass that does not divide evenly continues into the next one)."""
    rng = np.random.default_rng(seed)
    need = max_steps * per_step
    order = np.concatenate([rng.permutation(n_prompts) for _ in range(math.ceil(need / n_prompts))])
    return order[:need].reshape(max_steps, per_step)


def advantages(rewards: torch.Tensor, k: int, algorithm: str, scale: str) -> torch.Tensor:
    """Per-response advantages from rewards laid out prompt-major ([B * k], a prompt's k samples
    adjacent). RLOO: reward minus the mean of the other k - 1 rewards of the same prompt. GRPO:
    reward minus the group mean, divided by the group's unbiased std + 1e-4 if scale='group'."""
    grouped = rewards.view(-1, k)
    if algorithm == "rloo":
        baseline = (grouped.sum(1, keepdim=True) - grouped) / (k - 1)
        return (grouped - baseline).reshape(-1)
    centred = grouped - grouped.mean(1, keepdim=True)
    if scale == "group":
        centred = centred / (grouped.std(1, keepdim=True) + 1e-4)
    return centred.reshape(-1)


def policy_loss(
    logprobs: torch.Tensor,
    mask: torch.Tensor,
    adv: torch.Tensor,
    algorithm: str,
    beta: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss whose gradient is the policy-gradient estimate (see the module docstring):
    per-token log-probabilities [N, T] with their response mask, advantages [N]."""
    if algorithm == "rloo":
        return -(adv * (logprobs * mask).sum(1)).mean()
    per_token = -adv[:, None] * logprobs
    if beta > 0:
        diff = ref_logprobs - logprobs
        per_token = per_token + beta * (torch.exp(diff) - diff - 1)
    lengths = mask.sum(1).clamp(min=1)
    return ((per_token * mask).sum(1) / lengths).mean()


def make_optimizer(model, cfg: PgRunConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    return torch.optim.SGD(params, lr=cfg.learning_rate)


class _Clock:
    def __init__(self):
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.last = time.perf_counter()

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.seconds[part] += now - self.last
        self.last = now


def _trim_padding(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the leading columns that are padding in every row (left-padded prompts)."""
    first = int(mask.any(0).long().argmax())
    return ids[:, first:], mask[:, first:]


def average_gradients(model, accelerator) -> None:
    """Replace every parameter's gradient by its mean over the processes (one collective)."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = accelerator.reduce(torch.cat([p.grad.reshape(-1) for p in params]), reduction="mean")
    offset = 0
    for p in params:
        p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
        offset += p.numel()


@contextlib.contextmanager
def pinned_threads(threads: int | None):
    """torch's intra-op thread count set to `threads` inside the block and restored after it
    (None: left as it is). A run's trajectory depends on it on CPU: a matrix product split
    over more threads sums in another order."""
    if threads is None:
        yield torch.get_num_threads()
        return
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads: expected a positive integer or None, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def train(
    reference,
    tokenizer,
    prompts: list[str],
    reward,
    cfg: PgRunConfig,
    max_steps: int,
    on_step=None,
    desc: str | None = None,
    accelerator=None,
    threads: int | None = None,
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Train a copy of `reference` (the initial policy, also the KL reference, left unchanged)
    for `max_steps` steps on `prompts`; `reward(prompts, responses)` returns normalised rewards
    (a `NormalizedReward`). `on_step(step, model)` runs before the first step (step 0) and after
    every step. Returns the trained policy and one log row per step (loss, gradient norm before
    clipping, reward statistics, within-group variance, KL, response length, time per part).
    With an `accelerator` of W > 1 processes, data parallel (module docstring); the log's
    statistics are means over all B prompts, identical on every process.
    `threads` pins torch's thread count for the run (None: as it is); the log's `threads` column
    records the count the run used."""
    with pinned_threads(threads):
        return _train(
            reference, tokenizer, prompts, reward, cfg, max_steps, on_step, desc, accelerator
        )


def _train(
    reference,
    tokenizer,
    prompts: list[str],
    reward,
    cfg: PgRunConfig,
    max_steps: int,
    on_step=None,
    desc: str | None = None,
    accelerator=None,
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """The loop of `train`, at the thread count it was given."""

    world = 1 if accelerator is None else accelerator.num_processes
    rank = 0 if accelerator is None else accelerator.process_index
    if cfg.prompts_per_step % world:
        raise ValueError(
            f"prompts_per_step={cfg.prompts_per_step} does not divide across {world} processes"
        )
    torch.manual_seed(cfg.seed + rank)
    policy = copy.deepcopy(reference).train()
    for parameter in policy.parameters():
        parameter.requires_grad_(True)
    reference.eval()
    optimizer = make_optimizer(policy, cfg)
    k = cfg.num_generations
    schedule = prompt_schedule(len(prompts), cfg.prompts_per_step, max_steps, cfg.seed)
    stop = tokenizer.eos_token_id
    budget = prompt_budget(reference, cfg.max_new_tokens)
    # every prompt formatted and tokenized once; a step selects its rows
    all_ids, all_mask = chat_prompt_batch(tokenizer, prompts, max_length=budget)
    rows = []
    if on_step is not None:
        on_step(0, policy)
    for step in tqdm(range(max_steps), desc=desc, disable=desc is None, mininterval=30):
        clock = _Clock()
        rows_of_step = torch.as_tensor(np.repeat(schedule[step][rank::world], k))
        batch_prompts = [prompts[i] for i in rows_of_step.tolist()]
        prompt_ids, prompt_mask = _trim_padding(all_ids[rows_of_step], all_mask[rows_of_step])
        policy.eval()
        completion = sample_tokens(
            policy,
            prompt_ids,
            prompt_mask,
            cfg.max_new_tokens,
            cfg.temperature,
            stop,
            tokenizer.pad_token_id,
        )
        policy.train()
        sequences = torch.cat([prompt_ids, completion.tokens], dim=1)
        attention = torch.cat([prompt_mask, completion.mask.long()], dim=1)
        texts = tokenizer.batch_decode(
            completion.tokens.masked_fill(~completion.mask, tokenizer.pad_token_id),
            skip_special_tokens=True,
        )
        clock.lap("generation")
        try:
            scores = reward(batch_prompts, [t.strip() for t in texts])
        except RewardError as err:
            raise RewardError(f"{desc or 'policy gradient'}, step {step + 1}: {err}") from None
        z = torch.as_tensor(scores, dtype=torch.float32)
        clock.lap("reward")
        mask = completion.mask.float()
        with torch.no_grad():
            ref_lp = sequence_token_logprobs(reference, sequences, attention, prompt_ids.shape[1])
        clock.lap("reference")
        logprobs = sequence_token_logprobs(policy, sequences, attention, prompt_ids.shape[1])
        kl = ((logprobs.detach() - ref_lp) * mask).sum(1)
        if cfg.algorithm == "rloo":
            adv = advantages(z - cfg.beta * kl, k, "rloo", "none")
            loss = policy_loss(logprobs, mask, adv, "rloo")
        else:
            adv = advantages(z, k, "grpo", cfg.scale_rewards)
            loss = policy_loss(logprobs, mask, adv, "grpo", cfg.beta, ref_lp)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{desc or 'policy gradient'}: loss is {loss.item()} at step {step + 1}"
            )
        clock.lap("policy_forward")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            average_gradients(policy, accelerator)
        clock.lap("backward")
        clip = math.inf if cfg.max_grad_norm is None else cfg.max_grad_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), clip)
        optimizer.step()
        clock.lap("optimizer")
        groups = z.view(-1, k)
        stats = {
            "loss": loss.detach(),
            "reward": z.mean(),
            "reward_std": groups.std(1).mean(),
            "within_group_variance": groups.var(1).mean(),
            "frac_reward_zero_std": (groups.std(1) == 0).float().mean(),
            "kl": kl.mean(),
            "completion_length": mask.sum(1).mean(),
        }
        counts = {"completions": len(texts), "tokens": int(attention.sum())}
        if world > 1:  # equal shards: the mean of the shards' means is the batch mean
            means = accelerator.reduce(torch.stack(list(stats.values())), "mean")
            stats = dict(zip(stats, means, strict=True))
            totals = accelerator.reduce(torch.tensor(list(counts.values())), "sum")
            counts = dict(zip(counts, (int(t) for t in totals), strict=True))
        rows.append(
            {
                "step": step + 1,
                "loss": float(stats["loss"]),
                "grad_norm": float(grad_norm),
                **{name: float(stats[name]) for name in list(stats)[1:]},
                **counts,
                "threads": torch.get_num_threads(),
                **{f"time_{part}": seconds for part, seconds in clock.seconds.items()},
            }
        )
        if on_step is not None:
            on_step(step + 1, policy)
    return policy.eval(), pd.DataFrame(rows)
