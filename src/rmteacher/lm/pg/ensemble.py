"""Many policy-gradient runs per forward pass: E runs from the same GPT-2 initial policy trained
together, their weights stacked on a leading member axis (`ensemble_gpt2`), one batched matrix
product per layer for all of them.

Each member is a run of `loop.train` (RLOO or GRPO with its reward scaling, Adam or SGD, its
learning rate, KL weight and clipping, its reward and normalisation, its seed): it has its own
prompt order (`loop.prompt_schedule` of its seed), its own sampling stream (a generator seeded
with its seed, drawn in the solo loop's order), its own optimizer state, gradient clipping and
log; members that share an RM are scored in one call, and the evaluation is batched across
members too (`ensemble_eval`). A member's numbers do not depend on which other members share its
ensemble, or on E (module docstring of `ensemble_gpt2`; tests/lm/pg/test_ensemble.py checks it
bit for bit, and also across thread counts): prompts are padded to the longest training
prompt and responses to `max_new_tokens`, whatever the co-members sample. One differentiable
pass over each prompt serves its k samples (`ensemble_gpt2.prefix`).

A member is not bit-identical to its solo run: the batched kernels round differently from the
solo loop's (its gradient equals the solo gradient on the same batch to float32 rounding), and a
rounding difference eventually flips a sampled token; from there on a member is another sample
of the same run, as a data-parallel run is.

`run_ensemble` takes run_grid's runs and returns run_grid's curves, logs and kept samples, so a
stage switches engines without changing its analysis; `uses_ensemble` says which path a run
takes (GPT-2 policies that fast_gpt2 computes, in one process).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from rmteacher.lm.pg import ensemble_gpt2
from rmteacher.lm.pg.ensemble_eval import EnsembleEvaluator, EvalMember, score_shared
from rmteacher.lm.pg.ensemble_optim import StackedOptimizer, clip_member_grads
from rmteacher.lm.pg.loop import (
    PARTS,
    PgRunConfig,
    _Clock,
    advantages,
    pinned_threads,
    prompt_schedule,
)
from rmteacher.lm.pg.reward import NormalizedReward
from rmteacher.lm.pg.sweep import increases, run_grid
from rmteacher.lm.world.sampling import chat_prompt_batch, prompt_budget, response_mask
from rmteacher.models import fast_gpt2
from rmteacher.rewards.registry import RewardError

MAX_MEMBERS = 16  # members per ensemble (benchmarks/pg_step.py --ensemble: no gain past it here)
EVAL_MEMBERS = 8  # members sampled at once by an evaluation (bounds its memory)


def uses_ensemble(model, num_processes: int = 1) -> bool:
    """Whether runs of `model` take the ensemble path: a GPT-2 that fast_gpt2 computes, on the
    CPU (the engine's exactness is established there), trained in one process. Other model
    families, data-parallel runs and GPU runs take the solo loop."""
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    return num_processes == 1 and fast_gpt2.supports(model) and on_cpu


@dataclass(frozen=True)
class Member:
    """One run of an ensemble: `cfg` (its seed, algorithm, optimizer, learning rate, beta,
    clipping), its reward `rm` (name), `proxy` (the RM) and `norm`, a uniform reward `scale`,
    labels `tags`, and its `plan` (None: the ensemble's)."""

    rm: str
    proxy: object
    norm: object
    cfg: PgRunConfig
    scale: float = 1.0
    tags: dict = field(default_factory=dict)
    plan: object = None

    @classmethod
    def from_run(cls, run: dict) -> Member:
        """A run as `sweep.run_grid` takes it (rm, proxy, norm, cfg; optional plan, scale,
        tags)."""
        return cls(
            run["rm"],
            run["proxy"],
            run["norm"],
            run["cfg"],
            run.get("scale", 1.0),
            dict(run.get("tags") or {}),
            run.get("plan"),
        )

    def name(self, policy: str) -> str:
        return f"{self.cfg.algorithm} {policy} {self.rm} seed {self.cfg.seed}"


def member_losses(
    logprobs: torch.Tensor,
    mask: torch.Tensor,
    z: torch.Tensor,
    kl: torch.Tensor,
    ref_logprobs: torch.Tensor,
    cfgs: list[PgRunConfig],
) -> torch.Tensor:
    """[E] each member's `loop.policy_loss` on its own rows: logprobs, mask, ref_logprobs [E, N,
    T], normalised rewards z and summed KL [E, N]. Members are grouped by (algorithm, reward
    scaling, whether the KL term is on) and each group computed at once."""
    k = cfgs[0].num_generations
    members, rows = z.shape
    groups: dict[tuple, list[int]] = {}
    for e, cfg in enumerate(cfgs):
        key = (cfg.algorithm, cfg.scale_rewards if cfg.algorithm == "grpo" else "none")
        groups.setdefault((*key, cfg.beta > 0), []).append(e)
    parts, order = [], []
    for (algorithm, scale, with_kl), idx in groups.items():
        index = torch.tensor(idx)
        beta = torch.tensor([cfgs[e].beta for e in idx], dtype=torch.float32).view(-1, 1)
        lp, m = logprobs[index], mask[index]
        if algorithm == "rloo":
            adv = advantages((z[index] - beta * kl[index]).reshape(-1), k, "rloo", "none")
            loss = -(adv.view(len(idx), rows) * (lp * m).sum(-1)).mean(-1)
        else:
            adv = advantages(z[index].reshape(-1), k, "grpo", scale).view(len(idx), rows)
            per_token = -adv[..., None] * lp
            if with_kl:
                diff = ref_logprobs[index] - lp
                per_token = per_token + beta[..., None] * (torch.exp(diff) - diff - 1)
            lengths = m.sum(-1).clamp(min=1)
            loss = ((per_token * m).sum(-1) / lengths).mean(-1)
        parts.append(loss)
        order += idx
    inverse = torch.empty(members, dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(members)
    return torch.cat(parts)[inverse]


def _check_compatible(members: list[Member], max_steps: int) -> None:
    """One clear line when members cannot share one ensemble (they must share k, prompts per
    step, response length and temperature)."""
    shared = ("num_generations", "prompts_per_step", "max_new_tokens", "temperature")
    for name in shared:
        values = {getattr(m.cfg, name) for m in members}
        if len(values) > 1:
            raise ValueError(f"ensemble: members differ in {name} ({sorted(values)})")
    if max_steps < 1:
        raise ValueError(f"ensemble: max_steps must be at least 1, got {max_steps}")


def train_ensemble(
    reference,
    tokenizer,
    prompts: list[str],
    members: list[Member],
    max_steps: int,
    evaluate=None,
    desc: str | None = None,
    policy_name: str = "policy",
) -> tuple[ensemble_gpt2.StackedGPT2, list[pd.DataFrame]]:
    """Train E copies of `reference` (left unchanged) together, member e as `loop.train` would
    train it with members[e]'s settings and reward, for `max_steps` steps on `prompts`.
    `evaluate(step, policy_stack, reference_stack)` runs before the first step (step 0) and
    after every step. Returns the stacked trained policies and one log per member (the solo
    loop's columns; `time_*` are the ensemble's seconds per part divided by E)."""
    _check_compatible(members, max_steps)
    cfgs = [m.cfg for m in members]
    count = len(members)
    k, per_step = cfgs[0].num_generations, cfgs[0].prompts_per_step
    max_new_tokens, temperature = cfgs[0].max_new_tokens, cfgs[0].temperature
    reference.eval()
    policy = ensemble_gpt2.StackedGPT2.replicate(reference, count)
    frozen = ensemble_gpt2.StackedGPT2.replicate(reference, count, requires_grad=False)
    with torch.no_grad():
        frozen_folded = ensemble_gpt2.fold(frozen)
    optimizer = StackedOptimizer(
        policy.parameters(), [c.optimizer for c in cfgs], [c.learning_rate for c in cfgs]
    )
    max_norms = torch.tensor(
        [float("inf") if c.max_grad_norm is None else c.max_grad_norm for c in cfgs]
    )
    generators = [torch.Generator().manual_seed(c.seed) for c in cfgs]
    schedules = np.stack([prompt_schedule(len(prompts), per_step, max_steps, c.seed) for c in cfgs])
    rewards = [NormalizedReward(m.proxy, m.norm, m.rm, scale=m.scale) for m in members]
    stop, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    budget = prompt_budget(reference, max_new_tokens)
    # every prompt formatted and tokenized once, padded to the longest: a member's rows never
    # depend on the prompts its co-members drew
    all_ids, all_mask = chat_prompt_batch(tokenizer, prompts, max_length=budget)
    # the reference's pass over every training prompt never changes: computed once, and each
    # step hands every member the rows of its prompts
    reference_prefix = ensemble_gpt2.shared_prefix(
        ensemble_gpt2.member(frozen, 0), all_ids, all_mask
    )
    logs: list[list[dict]] = [[] for _ in members]
    if evaluate is not None:
        evaluate(0, policy, frozen)
    for step in tqdm(range(max_steps), desc=desc, disable=desc is None, mininterval=30):
        clock = _Clock()
        unique = torch.as_tensor(schedules[:, step])  # [E, B] prompts of the step
        rows = unique.repeat_interleave(k, dim=1)  # [E, B * k], a prompt's k samples adjacent
        prompt_ids, prompt_mask = all_ids[unique], all_mask[unique]
        # one differentiable pass over each prompt serves its k samples, their sampling and
        # their log-probabilities (the weights do not change in between)
        folded = ensemble_gpt2.fold(policy)  # this step's weights, layer norms folded in
        start = ensemble_gpt2.prefix(policy, prompt_ids, prompt_mask, folded).repeat(k)
        tokens = ensemble_gpt2.sample(
            policy,
            start.detach(),
            max_new_tokens,
            temperature,
            stop,
            pad,
            generators,
            folded=folded,
        )
        done = response_mask(tokens.flatten(0, 1), stop).view_as(tokens)
        tokens = tokens.masked_fill(~done, pad)
        texts = [
            t.strip()
            for t in tokenizer.batch_decode(tokens.flatten(0, 1), skip_special_tokens=True)
        ]
        clock.lap("generation")
        n = rows.shape[1]
        batch_prompts = [[prompts[i] for i in r] for r in rows.tolist()]
        member_texts = [texts[e * n : (e + 1) * n] for e in range(count)]
        try:
            raw = score_shared([m.proxy for m in members], batch_prompts, member_texts)
            z = torch.stack(
                [
                    torch.as_tensor(reward.from_raw(scores), dtype=torch.float32)
                    for reward, scores in zip(rewards, raw, strict=True)
                ]
            )
        except RewardError as err:
            raise RewardError(
                f"{_names(members, policy_name, err)}, step {step + 1}: {err}"
            ) from None
        clock.lap("reward")
        mask = done.float()
        with torch.no_grad():
            ref_start = reference_prefix.rows(rows)
            ref_lp = ensemble_gpt2.response_logprobs(frozen, ref_start, tokens, done, frozen_folded)
        clock.lap("reference")
        logprobs = ensemble_gpt2.response_logprobs(policy, start, tokens, done, folded)
        kl = ((logprobs.detach() - ref_lp) * mask).sum(-1)
        losses = member_losses(logprobs, mask, z, kl, ref_lp, cfgs)
        bad = torch.nonzero(~torch.isfinite(losses.detach())).flatten().tolist()
        if bad:
            member = members[bad[0]]
            raise FloatingPointError(
                f"{member.name(policy_name)}: loss is {losses[bad[0]].item()} at step {step + 1}"
            )
        clock.lap("policy_forward")
        optimizer.zero_grad()
        losses.sum().backward()
        clock.lap("backward")
        grads = [p.grad for p in policy.parameters()]
        grad_norms = clip_member_grads(grads, max_norms)
        optimizer.step()
        clock.lap("optimizer")
        groups = z.view(count, -1, k)
        stats = {
            "loss": losses.detach(),
            "grad_norm": grad_norms,
            "reward": z.mean(-1),
            "reward_std": groups.std(-1).mean(-1),
            "within_group_variance": groups.var(-1).mean(-1),
            "frac_reward_zero_std": (groups.std(-1) == 0).float().mean(-1),
            "kl": kl.mean(-1),
            "completion_length": mask.sum(-1).mean(-1),
        }
        stats = {name: values.tolist() for name, values in stats.items()}
        tokens_used = (k * prompt_mask.sum((1, 2)) + done.sum((1, 2))).tolist()
        threads = torch.get_num_threads()
        for e in range(count):
            logs[e].append(
                {
                    "step": step + 1,
                    **{name: float(values[e]) for name, values in stats.items()},
                    "completions": n,
                    "tokens": int(tokens_used[e]),
                    "threads": threads,
                    **{f"time_{part}": clock.seconds[part] / count for part in PARTS},
                }
            )
        if evaluate is not None:
            evaluate(step + 1, policy, frozen)
    return policy, [pd.DataFrame(rows) for rows in logs]


def _names(members: list[Member], policy_name: str, err: Exception) -> str:
    """The runs a reward failure concerns: those whose RM is named in the message, else all."""
    named = [m for m in members if f"'{getattr(m.proxy, 'name', m.rm)}'" in str(err)]
    chosen = named or members
    names = list(dict.fromkeys(m.name(policy_name) for m in chosen))
    return names[0] if len(names) == 1 else f"{names[0]} (and {len(names) - 1} more runs)"


def _ensemble_outputs(policy, plan, members, gold, gold_norm, extras, keep, eval_members):
    """Train one ensemble of members sharing `plan`; (curve, log, samples) per member, in the
    formats of sweep.tracked_run."""
    evaluator = EnsembleEvaluator(
        policy.reference,
        policy.tokenizer,
        list(plan.eval_prompts),
        plan.eval_samples,
        gold,
        gold_norm,
        policy.generation,
        extras=extras,
        keep=keep,
        chunk=eval_members,
    )
    eval_members_ = [EvalMember(10_000 + m.cfg.seed, m.proxy, m.norm) for m in members]
    eval_steps = set(plan.eval_steps) | {0}
    rows: list[list[dict]] = [[] for _ in members]
    kept: list[list[dict]] = [[] for _ in members]

    def evaluate(step, stack, frozen):
        if step not in eval_steps:
            return
        with torch.no_grad():
            results = evaluator(stack, frozen, eval_members_, initial=step == 0)
        for e, (row, samples) in enumerate(results):
            epoch = step / plan.steps_per_epoch
            rows[e].append({"step": step, "epoch": epoch, **row})
            kept[e] += [{"step": step, "epoch": epoch, **sample} for sample in samples]

    rms = sorted({m.rm for m in members})
    desc = f"{len(members)} runs of {policy.name} on {', '.join(rms)}"
    _, logs = train_ensemble(
        policy.reference,
        policy.tokenizer,
        list(plan.train_prompts),
        members,
        plan.max_steps,
        evaluate=evaluate,
        desc=desc,
        policy_name=policy.name,
    )
    outputs = []
    for e, member in enumerate(members):
        labels = {
            "policy": policy.name,
            "algorithm": member.cfg.algorithm,
            "rm": member.rm,
            "seed": member.cfg.seed,
            **member.tags,
        }
        samples = pd.DataFrame(
            kept[e], columns=["step", "epoch", "prompt", "response", "proxy_raw", "gold_raw"]
        )
        outputs.append(
            (
                pd.DataFrame(rows[e]).assign(**labels),
                logs[e].assign(**labels),
                samples.assign(**labels),
            )
        )
    return outputs


def ensembles(members: list[Member], plan, max_members: int) -> list[list[int]]:
    """Indices of `members` grouped into ensembles: members share one when they share the plan,
    k and prompts per step; a group larger than `max_members` is cut into near-equal parts. A
    lone member is listed twice (trained beside a discarded copy of itself; see ensemble_gpt2)."""
    if max_members < 2:
        raise ValueError(f"ensemble: max_members must be at least 2, got {max_members}")
    groups: dict[tuple, list[int]] = {}
    for e, member in enumerate(members):
        cfg = member.cfg
        key = (member.plan or plan, cfg.num_generations, cfg.prompts_per_step)
        groups.setdefault(key, []).append(e)
    out = []
    for idx in groups.values():
        count = -(-len(idx) // max_members)
        bounds = np.linspace(0, len(idx), count + 1).round().astype(int)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            part = idx[a:b]
            out.append(part if len(part) > 1 else part * 2)
    return out


def run_ensemble(
    policy,
    plan,
    runs: list[dict],
    gold,
    gold_norm,
    extras: dict | None = None,
    keep: int = 0,
    threads: int | None = None,
    max_members: int = MAX_MEMBERS,
    eval_members: int = EVAL_MEMBERS,
):
    """`sweep.run_grid` through the ensemble engine: the same runs (dicts with rm, proxy, norm,
    cfg and optionally plan, scale, tags) from the same `InitialPolicy`, the same evaluation
    (`extras`, `keep`), and the same outputs: (curves with increases, per-step logs, kept
    samples), runs in the order given. `threads` pins torch's thread count (None: as it is;
    the logs' `threads` column records it); `max_members` runs per ensemble, `eval_members`
    per evaluation batch."""
    if not uses_ensemble(policy.reference):
        raise ValueError(
            f"policy '{policy.name}': the ensemble engine runs GPT-2 policies that fast_gpt2 "
            "computes; train this one with sweep.run_grid"
        )
    members = [Member.from_run(run) for run in runs]
    members = [replace(m, cfg=replace(m.cfg, **policy.generation)) for m in members]
    results: dict[int, tuple] = {}
    with pinned_threads(threads):
        for idx in ensembles(members, plan, max_members):
            group = [members[e] for e in idx]
            outputs = _ensemble_outputs(
                policy, group[0].plan or plan, group, gold, gold_norm, extras, keep, eval_members
            )
            for e, output in zip(idx, outputs, strict=True):
                results.setdefault(e, output)
    curves, logs, samples = zip(*(results[e] for e in range(len(members))), strict=True)
    return (
        increases(pd.concat(curves, ignore_index=True)),
        pd.concat(logs, ignore_index=True),
        pd.concat(samples, ignore_index=True),
    )


def run_runs(policy, plan, runs: list[dict], gold, gold_norm, accelerator=None, **evaluation):
    """The stages' entry: `run_ensemble` when the policy takes the ensemble path
    (`uses_ensemble`: a GPT-2 fast_gpt2 computes, one process), else the solo loop
    (`sweep.run_grid`, with `accelerator` for data parallel). `evaluation`: extras, keep,
    threads (and max_members, eval_members for the ensemble). Same outputs either way."""
    processes = 1 if accelerator is None else accelerator.num_processes
    if uses_ensemble(policy.reference, processes):
        return run_ensemble(policy, plan, runs, gold, gold_norm, **evaluation)
    solo = {k: v for k, v in evaluation.items() if k not in ("max_members", "eval_members")}
    return run_grid(policy, plan, runs, gold, gold_norm, accelerator=accelerator, **solo)
