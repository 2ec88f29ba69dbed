"""Policy gradient on a normalised reward with trl: RLOO (the paper's main algorithm) or GRPO.

RLOO (trl `RLOOTrainer`): per step, B prompts are each sampled k times; the reward of a sample is
the normalised RM score minus beta * sum_t (log pi - log pi_ref) (the KL enters the reward, as in
the paper's code); the advantage subtracts the mean reward of the other k - 1 samples of the same
prompt (leave-one-out baseline); the loss is a sequence-level PPO-clip objective.

GRPO (trl `GRPOTrainer`): the advantage is the reward minus the group mean, divided by the group
std when `scale_rewards="group"` (trl's default, which removes exactly the per-prompt reward
scale the paper studies: with k = 2 the advantage becomes +-1/sqrt(2) * sign(r_1 - r_2)) and
left unscaled with `scale_rewards="none"`.

An "epoch" counts completions as trl and the paper do: one epoch generates as many completions
as there are training prompts, so with k = 2 one pass over the prompts is two epochs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rmteacher.lm.trainers import CoarseProgress, quiet, trainer_kwargs
from rmteacher.rewards.normalize import Normalization

ALGORITHMS = ("rloo", "grpo")
OPTIMIZERS = {"adam": "adamw_torch", "sgd": "sgd"}


def message_text(message) -> str:
    """Plain text of a trl prompt/completion (a string or a list of chat messages)."""
    if isinstance(message, str):
        return message
    return "".join(m["content"] for m in message if m["role"] in ("user", "assistant"))


class NormalizedReward:
    """A trl reward callable: c * (r(x, y) - mu) * s, with mu and s fixed from initial-policy
    samples (paper App. F.1) and an optional uniform scale c (1 in the paper's runs). Logs the
    within-group (per-prompt) variance and std of the rewards it returns, the run-time face of
    the reward variance of Definition 2."""

    def __init__(
        self, reward, norm: Normalization, name: str, num_generations: int, scale: float = 1.0
    ):
        self.reward, self.norm, self.k, self.scale = reward, norm, num_generations, scale
        self.__name__ = name

    def __call__(self, prompts, completions, log_metric=None, **_):
        raw = np.asarray(
            self.reward([message_text(p) for p in prompts], [message_text(c) for c in completions]),
            dtype=np.float64,
        )
        if not np.all(np.isfinite(raw)):
            raise FloatingPointError(f"{self.__name__}: non-finite reward during policy gradient")
        z = self.scale * self.norm(raw)
        if log_metric is not None and len(z) % self.k == 0:
            groups = z.reshape(-1, self.k)
            log_metric("within_group_variance", float(groups.var(axis=1, ddof=1).mean()))
            log_metric("within_group_std", float(groups.std(axis=1, ddof=1).mean()))
        return z.tolist()


@dataclass(frozen=True)
class PgRunConfig:
    """One policy-gradient run's optimisation settings.

    `algorithm` is 'rloo' or 'grpo'; `optimizer` 'adam' (trl's AdamW, no weight decay) or 'sgd'
    (plain, no momentum); `max_grad_norm` clips the gradient norm (trl's default 1.0, as in the
    paper's runs; a huge value disables clipping); `scale_rewards` and `loss_type` apply to GRPO
    only and are always set explicitly, never left to trl's defaults."""

    num_generations: int
    prompts_per_step: int
    beta: float
    learning_rate: float
    max_new_tokens: int
    temperature: float
    seed: int
    algorithm: str = "rloo"
    optimizer: str = "adam"
    max_grad_norm: float = 1.0
    scale_rewards: str = "none"
    loss_type: str = "grpo"

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer: expected one of {tuple(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.scale_rewards not in ("none", "group", "batch"):
            raise ValueError(
                f"scale_rewards: expected none, group or batch, got {self.scale_rewards!r}"
            )


def _trainer_config(cfg: PgRunConfig, scratch: str, max_steps: int):
    common = dict(
        **trainer_kwargs(scratch, cfg.seed),
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        gradient_accumulation_steps=1,
        num_generations=cfg.num_generations,
        max_steps=max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        optim=OPTIMIZERS[cfg.optimizer],
        max_grad_norm=cfg.max_grad_norm,
        beta=cfg.beta,
        num_iterations=1,
        max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_k=0,
        top_p=1.0,
    )
    if cfg.algorithm == "rloo":
        from trl import RLOOConfig

        return RLOOConfig(**common, normalize_advantages=False)  # the paper: no whitening
    from trl import GRPOConfig

    return GRPOConfig(**common, scale_rewards=cfg.scale_rewards, loss_type=cfg.loss_type)


def run_policy_gradient(
    policy_dir: str,
    prompts: list[str],
    reward: NormalizedReward,
    cfg: PgRunConfig,
    max_steps: int,
    callbacks: list,
    name: str,
) -> pd.DataFrame:
    """Train a fresh copy of the policy saved at `policy_dir` (also the KL reference) for
    `max_steps` optimizer steps; returns trl's per-step log (reward, reward_std,
    frac_reward_zero_std, grad_norm, kl, within_group_variance, ...)."""
    from datasets import Dataset
    from trl import GRPOTrainer, RLOOTrainer

    from rmteacher.core.hf import load_tokenizer

    tokenizer = load_tokenizer(policy_dir)
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in prompts])
    trainer_cls = RLOOTrainer if cfg.algorithm == "rloo" else GRPOTrainer
    with tempfile.TemporaryDirectory() as scratch:
        trainer = trainer_cls(
            model=policy_dir,
            reward_funcs=[reward],
            args=_trainer_config(cfg, scratch, max_steps),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[*callbacks, CoarseProgress(name, interval=30)],
        )
        quiet(trainer).train()
    rows = [h for h in trainer.state.log_history if "reward" in h]
    return pd.DataFrame(rows)
