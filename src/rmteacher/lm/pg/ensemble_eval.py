"""Evaluation of an ensemble's members at once, with the solo `tracking.Evaluator`'s
measurements: mean normalised proxy and r_G reward on fixed prompts x samples, the Monte Carlo KL
to the initial policy over whole responses, extra mean scores, and the first sample of the first
`keep` prompts. Member e samples from a stream seeded `seed_e` afresh at every evaluation, as the
solo evaluator does, and draws its uniforms in the same order (so with equal logits it draws the
same responses); rewards shared by members score all their texts in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rmteacher.lm.pg import ensemble_gpt2
from rmteacher.lm.world.sampling import chat_prompt_batch, prompt_budget, response_mask
from rmteacher.rewards.registry import fixed_length_scoring


def score_shared(rewards: list, prompts: list[list[str]], texts: list[list[str]]):
    """Raw scores [n_e] of member e's texts under `rewards[e]`. Members holding the same reward
    object are scored in one call; sequence-classifier RMs pad to their context length there,
    so a text's score does not depend on the texts beside it."""
    groups: dict[int, list[int]] = {}
    for e, reward in enumerate(rewards):
        groups.setdefault(id(reward), []).append(e)
    scores: list[np.ndarray | None] = [None] * len(rewards)
    with fixed_length_scoring(ensemble_gpt2.sequence_scores):
        for members in groups.values():
            flat_prompts = [p for e in members for p in prompts[e]]
            flat_texts = [t for e in members for t in texts[e]]
            raw = np.asarray(rewards[members[0]](flat_prompts, flat_texts), dtype=np.float64)
            start = 0
            for e in members:
                scores[e] = raw[start : start + len(texts[e])]
                start += len(texts[e])
    return scores


def balanced_chunks(indices: list[int], most: int) -> list[list[int]]:
    """`indices` cut into consecutive chunks of at most `most` and as equal as possible (every
    chunk of two or more when there are two or more indices and most >= 3)."""
    count = -(-len(indices) // most)
    bounds = np.linspace(0, len(indices), count + 1).round().astype(int)
    return [indices[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@dataclass(frozen=True)
class EvalMember:
    """What an evaluation needs of a member: its evaluation seed, proxy and its normalisation."""

    seed: int
    proxy: object
    proxy_norm: object


class EnsembleEvaluator:
    """Measurements of every member of a stacked policy on the same prompts x `n_samples`."""

    def __init__(
        self,
        reference,
        tokenizer,
        prompts: list[str],
        n_samples: int,
        gold,
        gold_norm,
        generation: dict,
        extras: dict | None = None,
        keep: int = 0,
        chunk: int = 8,
    ):
        if chunk < 3:
            raise ValueError(f"evaluation chunk: expected at least 3 members, got {chunk}")
        self.tok, self.prompts, self.n = tokenizer, list(prompts), n_samples
        self.gold, self.gold_norm = gold, gold_norm
        self.max_new_tokens = generation["max_new_tokens"]
        self.temperature = generation["temperature"]
        self.extras, self.keep, self.chunk = dict(extras or {}), keep, chunk
        self.flat_prompts = [p for p in self.prompts for _ in range(n_samples)]
        budget = prompt_budget(reference, self.max_new_tokens)
        # the solo evaluator pads its prompts x samples batch to its longest prompt: the same
        ids, mask = chat_prompt_batch(tokenizer, self.prompts, max_length=budget)
        self.prompt_ids, self.prompt_mask = ids, mask
        self.reference_prefix = None

    def _sample_and_score(self, policy, reference, seeds, initial: bool):
        """Per member of `policy` (seeds[e] its evaluation seed): texts, mean KL to the reference
        stack, r_G raw scores and extra means. The policy's log-probabilities of its samples
        come from the sampling passes themselves; one pass over each prompt serves its
        samples; `initial` (the policy is the reference) makes the KL exactly 0."""
        members = policy.members
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        ids = self.prompt_ids.expand(members, *self.prompt_ids.shape)
        mask = self.prompt_mask.expand(members, *self.prompt_mask.shape)
        stop, pad = self.tok.eos_token_id, self.tok.pad_token_id
        start = ensemble_gpt2.prefix(policy, ids, mask).repeat(self.n)
        tokens, mine = ensemble_gpt2.sample(
            policy, start, self.max_new_tokens, self.temperature, stop, pad, generators, True
        )
        done = response_mask(tokens.flatten(0, 1), stop).view_as(tokens)
        tokens = tokens.masked_fill(~done, pad)
        texts = [
            t.strip() for t in self.tok.batch_decode(tokens.flatten(0, 1), skip_special_tokens=True)
        ]
        if initial:
            ref_start = start
        else:
            if self.reference_prefix is None:  # the reference's pass over the prompts, once
                self.reference_prefix = ensemble_gpt2.shared_prefix(
                    ensemble_gpt2.member(reference, 0), self.prompt_ids, self.prompt_mask
                )
            index = torch.arange(len(self.prompts)).repeat_interleave(self.n)
            ref_start = self.reference_prefix.rows(index.expand(members, -1))
        ref = ensemble_gpt2.response_logprobs(reference, ref_start, tokens, done)
        if initial:
            mine = ref
        kl = (mine * done).sum(-1) - (ref * done).sum(-1)  # [E, samples]
        size = len(self.flat_prompts)
        per_member = [texts[e * size : (e + 1) * size] for e in range(members)]
        everything = [t for member in per_member for t in member]
        prompts = self.flat_prompts * members
        with fixed_length_scoring(ensemble_gpt2.sequence_scores):
            gold = np.asarray(self.gold(prompts, everything), dtype=np.float64)
            extras = {
                name: np.asarray(extra(prompts, everything), dtype=np.float64)
                for name, extra in self.extras.items()
            }
        return [
            {
                "texts": per_member[e],
                "kl": float(kl[e].mean()),
                "gold_raw": gold[e * size : (e + 1) * size],
                "extras": {
                    name: float(v[e * size : (e + 1) * size].mean()) for name, v in extras.items()
                },
            }
            for e in range(members)
        ]

    def __call__(self, policy, reference, members: list[EvalMember], initial: bool = False):
        """(row, kept samples) per member, in the solo Evaluator's format. `initial`: every
        member still is the reference, so members with the same seed share their samples."""
        if initial:
            first = {}
            for e, member in enumerate(members):
                first.setdefault(member.seed, e)
            sampled = list(first.values())
        else:
            sampled = list(range(len(members)))
        measured = {}
        padded = sampled if len(sampled) > 1 else sampled * 2  # a lone member runs beside a copy
        for chunk in balanced_chunks(padded, self.chunk):
            rows = torch.tensor(chunk)
            part = ensemble_gpt2.StackedGPT2(
                policy.config, {n: w[rows] for n, w in policy.weights.items()}
            )
            ref = ensemble_gpt2.StackedGPT2(
                reference.config, {n: w[: len(chunk)] for n, w in reference.weights.items()}
            )
            seeds = [members[e].seed for e in chunk]
            results = self._sample_and_score(part, ref, seeds, initial)
            for e, result in zip(chunk, results, strict=True):
                measured.setdefault(e, result)
        if initial:
            measured = {e: measured[first[m.seed]] for e, m in enumerate(members)}
        proxies = score_shared(
            [m.proxy for m in members],
            [self.flat_prompts] * len(members),
            [measured[e]["texts"] for e in range(len(members))],
        )
        out = []
        shown = [i * self.n for i in range(min(self.keep, len(self.prompts)))]
        for e, member in enumerate(members):
            result, proxy_raw = measured[e], proxies[e]
            texts, gold_raw = result["texts"], result["gold_raw"]
            kept = [
                {
                    "prompt": self.flat_prompts[i],
                    "response": texts[i],
                    "proxy_raw": float(proxy_raw[i]),
                    "gold_raw": float(gold_raw[i]),
                }
                for i in shown
            ]
            row = {
                "proxy": float(member.proxy_norm(proxy_raw).mean()),
                "gold": float(self.gold_norm(gold_raw).mean()),
                "kl": result["kl"],
                "mean_words": float(np.mean([len(t.split()) for t in texts])),
                **result["extras"],
            }
            out.append((row, kept))
        return out
