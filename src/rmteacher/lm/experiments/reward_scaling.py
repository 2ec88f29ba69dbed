"""Stage reward_scaling (paper Section 5.1): multiply a normalised reward by c. Under Adam the
runs nearly coincide (Adam undoes a global gradient scale); under plain SGD the step, and so the
speed, scales with c. Gradient clipping is off in both, so the scale reaches the step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import StageParams, param

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RewardScalingParams(StageParams):
    """Claim 12: multiply a normalised reward by c; under Adam the runs nearly coincide, under
    plain SGD time rescales by 1/c (gradient clipping off in both)."""

    STAGE = "reward_scaling"
    rm: str = param("rm_onpolicy_100", "Section 4.1 RM to train on")
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


@dataclass(frozen=True)
class RewardScalingResult:
    """`curves`: evaluation curves per optimizer, scale and seed; `sensitivity`: final increases
    per optimizer and scale with the scale effect; `grad_norm`: gradient norms per optimizer
    and scale, at the first step and over the run (`gradient_norms`); `metrics`."""

    curves: pd.DataFrame
    sensitivity: pd.DataFrame
    grad_norm: pd.DataFrame
    metrics: dict


FIRST_STEP, OVER_THE_RUN = "first step (initial policy)", "median over the run"


def gradient_norms(logs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and scale, the median over seeds of the gradient norm at the first step
    (the initial policy, the same samples at every scale: the norm is linear in c) and the
    median over every step of the run (wherever each optimizer has moved the policy)."""
    import pandas as pd

    logs = logs.assign(grad_norm=logs.grad_norm.astype(float))
    keys = ["optimizer", "scale"]
    first = logs[logs.step == logs.groupby([*keys, "seed"]).step.transform("min")]
    return pd.concat(
        [
            first.groupby(keys).grad_norm.median().reset_index().assign(when=FIRST_STEP),
            logs.groupby(keys).grad_norm.median().reset_index().assign(when=OVER_THE_RUN),
        ],
        ignore_index=True,
    )


def run(params: RewardScalingParams) -> RewardScalingResult:
    """The optimizer x scale x seed grid from the Section 4.1 initial policy."""
    from rmteacher.lm.analysis.variants import (
        adam_undoes_scaling_verdict,
        scale_effects_by_seed,
        scale_sensitivity,
    )
    from rmteacher.lm.experiments.rloo import RlooParams
    from rmteacher.lm.pg.loop import PgRunConfig
    from rmteacher.lm.pg.sweep import (
        InitialPolicy,
        TrainingPlan,
        check_rms,
        run_grid,
        scaling_runs,
    )
    from rmteacher.lm.rm.evaluation import load_normalizations, load_suite
    from rmteacher.lm.world.prompts import World

    rloo = RlooParams.from_file()  # k comes from Section 4.1
    world = World.load()
    norms = load_normalizations()
    check_rms([params.rm], list(norms), "reward_scaling.rm")
    suite = load_suite()
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    plan = TrainingPlan.build(
        world.prompt_texts("pg_train"),
        params.eval_prompts,
        params.eval_samples,
        rloo.num_generations,
        params.prompts_per_step,
        params.epochs,
        params.evals_per_epoch,
    )
    base = PgRunConfig(
        num_generations=rloo.num_generations,
        prompts_per_step=params.prompts_per_step,
        beta=params.beta,
        learning_rate=params.adam_learning_rate,
        seed=0,
        **world.generation(),
    )
    rates = {"adam": params.adam_learning_rate, "sgd": params.sgd_learning_rate}
    runs = scaling_runs(
        params.rm, suite[params.rm], norms[params.rm], base, params.scales, params.seeds, rates
    )
    curves, logs, _ = run_grid(policy, plan, runs, suite["gold"], norms["gold"])
    sensitivity = scale_sensitivity(curves)
    grad = gradient_norms(logs)
    first = grad[grad.when == FIRST_STEP].set_index(["optimizer", "scale"]).grad_norm
    effect = sensitivity.groupby("optimizer")["scale_effect"].first()
    by_seed = scale_effects_by_seed(curves)
    metrics = {
        "adam_scale_effect": float(effect["adam"]),
        "sgd_scale_effect": float(effect["sgd"]),
        **{
            f"{r.optimizer}_c{r.scale:g}_proxy_increase": float(r.proxy_increase)
            for r in sensitivity.itertuples()
        },
        **{
            f"{r.optimizer}_c{r.scale:g}_gold_increase": float(r.gold_increase)
            for r in sensitivity.itertuples()
        },
        "claim_adam_undoes_uniform_scaling": adam_undoes_scaling_verdict(by_seed),
        "seeds_where_adam_effect_is_smaller": int((by_seed.adam.abs() < by_seed.sgd.abs()).sum()),
        "n_seeds": len(by_seed),
        "scale_ratio": max(params.scales) / min(params.scales),
        **{
            f"{optimizer}_first_step_grad_norm_ratio": float(
                first[optimizer, max(params.scales)] / first[optimizer, min(params.scales)]
            )
            for optimizer in rates
        },
    }
    return RewardScalingResult(curves, sensitivity, grad, metrics)
