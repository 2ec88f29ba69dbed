"""Stage reward_scaling's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import StageParams, param, shared
from rmteacher.lm.pg.settings import PgSettings
from rmteacher.lm.rm.specs import check_reward_fields


@dataclass(frozen=True)
class RewardScalingParams(StageParams):
    """Claim 12: multiply a normalised reward by c; under Adam the runs nearly coincide, under
    plain SGD time rescales by 1/c (gradient clipping off in both)."""

    STAGE = "reward_scaling"
    rm: str = param("rm_onpolicy_100", "Section 4.1 RM to train on", reward="name")
    scales: tuple[float, ...] = param((0.25, 1.0, 4.0), "reward multipliers c", gt=0)
    seeds: tuple[int, ...] = param((0, 1), "training seeds", ge=0)
    epochs: float = param(2.0, "trl epochs", gt=0)
    evals_per_epoch: int = param(2, "evaluations per epoch (plus one at the start)", ge=1)
    beta: float = param(
        0.0, "KL weight; 0 so that scaling the reward scales the whole objective", ge=0
    )
    adam_learning_rate: float = param(3e-4, "Adam learning rate", gt=0)
    sgd_learning_rate: float = param(0.01, "plain SGD learning rate", gt=0)
    prompts_per_step: int = param(32, "prompts per optimizer step", ge=1)
    eval_prompts: int = param(64, "training prompts used for evaluation", ge=2)
    eval_samples: int = param(4, "samples per evaluation prompt", ge=1)
    # k of Section 4.1's policy-gradient regime and the threads per run (params.yaml group `pg`)
    num_generations: int = shared(PgSettings, "num_generations")
    threads: int = shared(PgSettings, "threads")

    def check(self) -> None:
        check_reward_fields(self)  # the one check of every field that names a reward
