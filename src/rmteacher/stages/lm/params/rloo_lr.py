"""Stage rloo_lr's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param, shared
from rmteacher.lm.pg.settings import PgSettings


@dataclass(frozen=True)
class RlooLrParams(StageParams):
    """The learning rate of every Section 4.1 run, chosen on r_G alone by a small sweep: the rate
    with the largest mean r_G increase at `epochs` among those whose mean KL stays <= `max_kl`."""

    STAGE = "rloo_lr"
    learning_rates: tuple[float, ...] = param(
        (1e-4, 3e-4, 1e-3, 3e-3), "candidate Adam learning rates", gt=0
    )
    seeds: tuple[int, ...] = param((0, 1), "training seeds per rate", ge=0)
    epochs: float = param(1.0, "epochs of each run (the rule reads this point)", gt=0)
    max_kl: float = param(4.0, "largest mean KL (nats) a rate may reach at `epochs`", gt=0)
    evals_per_epoch: int = param(
        1, "evaluations per epoch, plus one at the start (the rule reads the last)", ge=1
    )

    # Section 4.1's policy-gradient regime (params.yaml group `pg`)
    num_generations: int = shared(PgSettings, "num_generations")
    prompts_per_step: int = shared(PgSettings, "prompts_per_step")
    beta: float = shared(PgSettings, "beta")
    max_grad_norm: float = shared(PgSettings, "max_grad_norm")
    eval_prompts: int = shared(PgSettings, "eval_prompts")
    eval_samples: int = shared(PgSettings, "eval_samples")
    threads: int = shared(PgSettings, "threads")

    def check(self) -> None:
        if len(set(self.learning_rates)) != len(self.learning_rates):
            raise ParamsError(f"{self.STAGE}.learning_rates: values must be distinct")
