"""Evaluation during policy gradient: the schedule of evaluation points and the measurements at
each one (mean normalised proxy and ground-truth reward on fixed prompts x samples, the Monte
Carlo KL to the initial policy, optional extra scores such as a hacking check, and a few samples
to read)."""

from __future__ import annotations

import math

import numpy as np
import torch

from rmteacher.lm.world.sampling import response_logprob, sample_batches


def schedule(n_prompts: int, k: int, prompts_per_step: int, epochs: float, evals_per_epoch: int):
    """(max_steps, steps_per_epoch, evaluation steps) for trl-style epochs of `n_prompts`
    completions; evaluations are evenly spaced, the last one at the final step."""
    steps_per_epoch = n_prompts / (k * prompts_per_step)
    max_steps = max(1, math.ceil(epochs * steps_per_epoch))
    n_evals = max(1, round(epochs * evals_per_epoch))
    steps = {max(1, round(max_steps * (i + 1) / n_evals)) for i in range(n_evals)}
    return max_steps, steps_per_epoch, steps


class Evaluator:
    """Mean normalised proxy and r_G reward of the current policy on fixed prompts x samples, and
    KL(pi || pi_ref) estimated as the sample mean of log pi(y|x) - log pi_ref(y|x) over whole
    responses. Sampling is seeded, so every evaluation of every run sees the same random stream.
    `extras` {name: reward} adds each one's mean raw score; the first sample of the first `keep`
    prompts is kept with its raw proxy and r_G scores (`samples`, one list per evaluation)."""

    def __init__(
        self,
        ref_model,
        tokenizer,
        prompts,
        n_samples,
        proxy,
        proxy_norm,
        gold,
        gold_norm,
        generation: dict,
        seed: int,
        extras: dict | None = None,
        keep: int = 0,
        initial_cache: dict | None = None,
    ):
        self.ref, self.tok, self.prompts, self.n = ref_model, tokenizer, prompts, n_samples
        self.proxy, self.proxy_norm, self.gold, self.gold_norm = proxy, proxy_norm, gold, gold_norm
        self.generation, self.seed = generation, seed
        self.extras, self.keep = dict(extras or {}), keep
        self.initial_cache = initial_cache
        self.samples: list[list[dict]] = []

    def _sample_and_score(self, model) -> dict:
        """The policy's samples, their KL to the reference and every score that does not depend
        on the proxy (r_G and the extras)."""
        rng_state = torch.random.get_rng_state()  # evaluation must not perturb training
        cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        texts, kls = [], []
        for batch in sample_batches(
            model, self.tok, self.prompts, self.n, seed=self.seed, batch_size=512, **self.generation
        ):
            texts.extend(batch.texts)
            kls.append((response_logprob(model, batch) - response_logprob(self.ref, batch)).cpu())
        torch.random.set_rng_state(rng_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
        flat_prompts = [p for p in self.prompts for _ in range(self.n)]
        return {
            "texts": texts,
            "kl": float(torch.cat(kls).mean()),
            "gold_raw": np.asarray(self.gold(flat_prompts, texts), dtype=np.float64),
            "extras": {
                name: float(np.mean(extra(flat_prompts, texts)))
                for name, extra in self.extras.items()
            },
        }

    def __call__(self, model, initial: bool = False) -> dict:
        """Measurements of `model`; `initial` marks the untrained policy, whose samples and
        proxy-free scores are shared through `initial_cache` by every run with the same
        reference, prompts and evaluation seed (they are identical)."""
        key = (
            id(self.ref),
            id(self.gold),
            tuple(self.extras),
            tuple(self.prompts),
            self.n,
            self.seed,
        )
        shared = initial and self.initial_cache is not None
        if shared and key in self.initial_cache:
            measured = self.initial_cache[key]
        else:
            measured = self._sample_and_score(model)
            if shared:
                self.initial_cache[key] = measured
        texts, gold_raw = measured["texts"], measured["gold_raw"]
        flat_prompts = [p for p in self.prompts for _ in range(self.n)]
        proxy_raw = np.asarray(self.proxy(flat_prompts, texts), dtype=np.float64)
        shown = [i * self.n for i in range(min(self.keep, len(self.prompts)))]
        self.samples.append(
            [
                {
                    "prompt": flat_prompts[i],
                    "response": texts[i],
                    "proxy_raw": float(proxy_raw[i]),
                    "gold_raw": float(gold_raw[i]),
                }
                for i in shown
            ]
        )
        return {
            "proxy": float(self.proxy_norm(proxy_raw).mean()),
            "gold": float(self.gold_norm(gold_raw).mean()),
            "kl": measured["kl"],
            "mean_words": float(np.mean([len(t.split()) for t in texts])),
            **measured["extras"],
        }


class EvalSchedule:
    """The loop's `on_step` hook: runs the evaluator at step 0 (before training) and after the
    given optimizer steps, and keeps one row per evaluation (step, epoch, measurements)."""

    def __init__(self, evaluator: Evaluator, eval_steps: set[int], steps_per_epoch: float):
        self.evaluator, self.eval_steps = evaluator, set(eval_steps) | {0}
        self.steps_per_epoch = steps_per_epoch
        self.rows: list[dict] = []

    def __call__(self, step: int, model) -> None:
        if step in self.eval_steps:
            row = self.evaluator(model, initial=step == 0)
            self.rows.append({"step": step, "epoch": step / self.steps_per_epoch, **row})
