"""RLOO (trl RLOOTrainer) on a normalised reward, with periodic evaluation of proxy reward,
ground-truth reward and KL to the initial policy.

Per step, B prompts are each sampled k times; the reward is the normalised RM score minus
beta * sum_t (log pi - log pi_ref); the advantage subtracts the mean reward of the other k - 1
samples (leave-one-out). An "epoch" counts completions as trl does (the paper's convention):
one epoch = as many completions as there are policy-gradient prompts, so with k = 2 one pass
over the prompts is two epochs.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from transformers import TrainerCallback

from rmteacher.lm.sampling import response_logprob, sample_batches
from rmteacher.lm.trl_common import CoarseProgress, quiet, trainer_kwargs
from rmteacher.rewards.normalize import Normalization


def _content(message) -> str:
    """Plain text of a trl prompt/completion (a string or a list of chat messages)."""
    if isinstance(message, str):
        return message
    return "".join(m["content"] for m in message if m["role"] in ("user", "assistant"))


class NormalizedReward:
    """A trl reward callable: (r(x, y) - mu) * scale with constants fixed from the initial policy.
    Also logs the within-group (per-prompt) variance of the normalised rewards."""

    def __init__(self, reward, norm: Normalization, name: str, num_generations: int):
        self.reward, self.norm, self.k = reward, norm, num_generations
        self.__name__ = name

    def __call__(self, prompts, completions, log_metric=None, **_):
        raw = np.asarray(self.reward([_content(p) for p in prompts],
                                     [_content(c) for c in completions]), dtype=np.float64)
        if not np.all(np.isfinite(raw)):
            raise FloatingPointError(f"{self.__name__}: non-finite reward during RLOO")
        z = self.norm(raw)
        if log_metric is not None and len(z) % self.k == 0:
            groups = z.reshape(-1, self.k)
            log_metric("within_group_variance", float(groups.var(axis=1, ddof=1).mean()))
            log_metric("within_group_std", float(groups.std(axis=1, ddof=1).mean()))
        return z.tolist()


@dataclass(frozen=True)
class RlooRunConfig:
    """One RLOO run's optimisation settings."""

    num_generations: int
    prompts_per_step: int
    beta: float
    learning_rate: float
    max_new_tokens: int
    temperature: float
    seed: int


class Evaluator:
    """Mean normalised proxy and r_G reward on fixed prompts x samples, and the Monte Carlo KL
    E_y~pi[log pi(y|x) - log pi_ref(y|x)] (sequence level), for the current policy."""

    def __init__(self, ref_model, tokenizer, prompts, n_samples, proxy, proxy_norm, gold,
                 gold_norm, generation: dict, seed: int):
        self.ref, self.tok, self.prompts, self.n = ref_model, tokenizer, prompts, n_samples
        self.proxy, self.proxy_norm, self.gold, self.gold_norm = proxy, proxy_norm, gold, gold_norm
        self.generation, self.seed = generation, seed

    def __call__(self, model) -> dict:
        rng_state = torch.random.get_rng_state()  # evaluation must not perturb training
        texts, kls = [], []
        for batch in sample_batches(model, self.tok, self.prompts, self.n, seed=self.seed,
                                    batch_size=512, **self.generation):
            texts.extend(batch.texts)
            kls.append((response_logprob(model, batch) - response_logprob(self.ref, batch)).cpu())
        torch.random.set_rng_state(rng_state)
        flat_prompts = [p for p in self.prompts for _ in range(self.n)]
        proxy_raw, gold_raw = self.proxy(flat_prompts, texts), self.gold(flat_prompts, texts)
        return {"proxy": float(self.proxy_norm(proxy_raw).mean()),
                "gold": float(self.gold_norm(gold_raw).mean()),
                "kl": float(torch.cat(kls).mean()),
                "mean_words": float(np.mean([len(t.split()) for t in texts]))}


class EvalCallback(TrainerCallback):
    """Runs the evaluator before training and at the given optimizer steps."""

    def __init__(self, evaluator: Evaluator, eval_steps: set[int], steps_per_epoch: float):
        self.evaluator, self.eval_steps, self.steps_per_epoch = evaluator, eval_steps, steps_per_epoch
        self.rows: list[dict] = []

    def _record(self, step, model):
        row = self.evaluator(model)
        self.rows.append({"step": step, "epoch": step / self.steps_per_epoch, **row})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._record(0, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.eval_steps:
            self._record(state.global_step, model)


def schedule(n_prompts: int, k: int, prompts_per_step: int, epochs: float, evals_per_epoch: int):
    """(max_steps, steps_per_epoch, evaluation steps) for trl-style epochs of n_prompts
    completions; evaluations are evenly spaced, the last one at the final step."""
    steps_per_epoch = n_prompts / (k * prompts_per_step)
    max_steps = max(1, math.ceil(epochs * steps_per_epoch))
    n_evals = max(1, round(epochs * evals_per_epoch))
    steps = {max(1, round(max_steps * (i + 1) / n_evals)) for i in range(n_evals)}
    return max_steps, steps_per_epoch, steps


def run_rloo(policy_dir: str, prompts: list[str], reward: NormalizedReward, cfg: RlooRunConfig,
             max_steps: int, callbacks: list, name: str) -> pd.DataFrame:
    """Train a fresh copy of the initial policy with RLOO; returns trl's per-step log."""
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    from rmteacher.lm.models import load_tokenizer

    tokenizer = load_tokenizer(policy_dir)
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in prompts])
    with tempfile.TemporaryDirectory() as scratch:
        args = RLOOConfig(
            **trainer_kwargs(scratch, cfg.seed),
            per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
            gradient_accumulation_steps=1,
            num_generations=cfg.num_generations,
            max_steps=max_steps,
            learning_rate=cfg.learning_rate,
            lr_scheduler_type="constant",
            warmup_steps=0,
            beta=cfg.beta,
            num_iterations=1,
            max_completion_length=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_k=0,
            top_p=1.0,
            normalize_advantages=False,  # as the paper: no whitening of advantages
        )
        trainer = RLOOTrainer(model=policy_dir, reward_funcs=[reward], args=args,
                              train_dataset=dataset, processing_class=tokenizer,
                              callbacks=[*callbacks, CoarseProgress(name, interval=30)])
        quiet(trainer).train()
    rows = [h for h in trainer.state.log_history if "reward" in h]
    return pd.DataFrame(rows)
