"""The policy-gradient regime of Section 4.1, one shared group of params.yaml (`pg`): k, the
batch, the KL weight, gradient clipping, the learning rate, the evaluation schedule and the
processes per run. Stages take the settings they use as fields of their own params
(`core.params.shared`): the rloo units and join, rloo_lr, sec42_pg ("in Section 4.1's regime"),
alt_normalization, reward_scaling and sec41_report. Which algorithm a run uses (RLOO, GRPO and its
scaled variant) is a property of the run (`lm.pg.sweep.VARIANTS`), not of the regime.

Light on purpose: `rmteacher check` imports it (no torch)."""

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

    def check(self) -> None:
        if self.prompts_per_step % self.num_processes:
            raise ParamsError(
                f"{self.GROUP}.prompts_per_step={self.prompts_per_step} does not divide among "
                f"num_processes={self.num_processes}"
            )


def chosen_learning_rate(learning_rate: float | None) -> float:
    """`learning_rate` (pg.learning_rate), or when it is null the rate rloo_lr chose on r_G (its
    declared output artifacts/rloo_lr/choice.json)."""
    if learning_rate is not None:
        return learning_rate
    if not paths.LR_CHOICE.is_file():
        raise FileNotFoundError(f"{paths.LR_CHOICE} missing: run the rloo_lr stage first")
    return float(json.loads(paths.LR_CHOICE.read_text())["learning_rate"])
