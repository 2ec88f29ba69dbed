"""Policy-gradient settings. `PgSettings`: the regime of Section 4.1, one shared group of
params.yaml (`pg`): k, the batch, the KL weight, gradient clipping, the learning rate, the
evaluation schedule and the processes per run. `PgRunConfig`: one run's settings as the loop
(`lm.pg.loop.train`) takes them, algorithm and optimizer included; `run_config` builds it from a
stage's pg fields. Stages take the settings they use as fields of their own params
(`core.params.shared`): the rloo units and join, rloo_lr, sec42_pg ("in Section 4.1's regime"),
alt_normalization, reward_scaling and sec41_report. Which algorithm a run uses (RLOO, GRPO and its
scaled variant) is a property of the run (`lm.pg.sweep.VARIANTS`), not of the regime.

Light on purpose: `rmteacher check` imports it (no torch). The learning rate's path
(pg.learning_rate, once rloo.learning_rate), from params.yaml to the optimizer of a Section 4.1
unit: core.params (the pg group validated, the stage's field filled) -> pipeline.run_unit ->
stages.lm.rloo.run_unit -> `run_config` here (null: rloo_lr's choice) -> lm.pg.sweep.run_grid
-> lm.pg.loop.train -> `make_optimizer`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rmteacher.core import paths
from rmteacher.core.params import ParamGroup, ParamsError, param


@dataclass(frozen=True)
class PgSettings(ParamGroup):
    """Section 4.1's policy-gradient regime, shared by every stage that trains in it: RLOO with
    k samples per prompt and KL weight beta inside the reward, Adam, gradient clipping as trl,
    evaluated at fixed points on fixed prompts."""

    GROUP = "pg"
    evals_per_epoch: int = param(4, "evaluations per epoch (plus one at the start)", ge=1)
    num_generations: int = param(2, "k, samples per prompt (paper: 2)", ge=2)
    prompts_per_step: int = param(16, "prompts per optimizer step", ge=1)
    beta: float = param(0.05, "KL coefficient lambda (paper: 0.05)", ge=0)
    learning_rate: float | None = param(
        None, "Adam learning rate; null: the rate rloo_lr chose on r_G", gt=0
    )
    max_grad_norm: float = param(
        1.0, "gradient-norm clipping of the main runs (trl's default)", gt=0
    )
    eval_prompts: int = param(128, "fixed policy-gradient prompts used for evaluation", ge=2)
    eval_samples: int = param(4, "samples per evaluation prompt", ge=1)
    keep_samples: int = param(3, "samples per evaluation kept for reading (seed 0 only)", ge=0)
    num_processes: int = param(
        1,
        "processes per run (> 1: accelerate launch, data parallel; one per GPU, gloo on CPU)",
        ge=1,
    )
    threads: int = param(
        2,
        "torch threads of each policy-gradient process (this machine's cores); the ensemble's "
        "numbers do not depend on it, the solo loop's trajectory does",
        ge=1,
    )

    def check(self) -> None:
        if self.prompts_per_step % self.num_processes:
            raise ParamsError(
                f"{self.GROUP}.prompts_per_step={self.prompts_per_step} does not divide among "
                f"num_processes={self.num_processes}"
            )


ALGORITHMS = ("rloo", "grpo")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class PgRunConfig:
    """One run's settings. `algorithm` 'rloo' or 'grpo'; `optimizer` 'adam' (AdamW, betas (0.9,
    0.999), no weight decay, as trl) or 'sgd' (no momentum); `max_grad_norm` clips the gradient
    norm (None: no clipping); `scale_rewards` ('none' or 'group') and the k3 KL apply to GRPO."""

    num_generations: int
    prompts_per_step: int
    beta: float
    learning_rate: float
    max_new_tokens: int
    temperature: float
    seed: int
    algorithm: str = "rloo"
    optimizer: str = "adam"
    max_grad_norm: float | None = 1.0
    scale_rewards: str = "none"

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.scale_rewards not in ("none", "group"):
            raise ValueError(f"scale_rewards: expected none or group, got {self.scale_rewards!r}")


def run_config(
    settings, generation: dict, learning_rate: float | None = None, seed: int = 0
) -> PgRunConfig:
    """One run's loop settings from a stage's pg fields (k, batch, beta, clipping), the initial
    policy's generation settings and the learning rate: `learning_rate`, or else the stage's
    pg.learning_rate, or when that is null the rate rloo_lr chose (`chosen_learning_rate`)."""
    if learning_rate is None:
        learning_rate = chosen_learning_rate(settings.learning_rate)
    return PgRunConfig(
        num_generations=settings.num_generations,
        prompts_per_step=settings.prompts_per_step,
        beta=settings.beta,
        learning_rate=learning_rate,
        max_grad_norm=settings.max_grad_norm,
        seed=seed,
        **generation,
    )


def chosen_learning_rate(learning_rate: float | None) -> float:
    """`learning_rate` (pg.learning_rate), or when it is null the rate rloo_lr chose on r_G (its
    declared output artifacts/rloo_lr/choice.json)."""
    if learning_rate is not None:
        return learning_rate
    if not paths.LR_CHOICE.is_file():
        raise FileNotFoundError(f"{paths.LR_CHOICE} missing: run the rloo_lr stage first")
    return float(json.loads(paths.LR_CHOICE.read_text())["learning_rate"])
