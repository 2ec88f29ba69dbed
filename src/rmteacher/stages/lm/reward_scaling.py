"""Stage reward_scaling (paper Section 5.1): multiply a normalised reward by c. Under Adam the
runs nearly coincide (Adam undoes a global gradient scale); under plain SGD the step, and so the
speed, scales with c. Gradient clipping is off in both, so the scale reaches the step."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rmteacher.lm.analysis.variants import (
    scale_effects_by_seed,
    scale_sensitivity,
)
from rmteacher.lm.pg.ensemble import run_runs
from rmteacher.lm.pg.settings import PgRunConfig
from rmteacher.lm.pg.sweep import (
    InitialPolicy,
    TrainingPlan,
    check_rms,
    scaling_runs,
)
from rmteacher.lm.rm.evaluation import load_normalizations, load_suite
from rmteacher.lm.world.prompts import World
from rmteacher.stages.lm.params.reward_scaling import RewardScalingParams
from rmteacher.verdicts.sections import scaling


@dataclass(frozen=True)
class RewardScalingResult:
    """`curves`: evaluation curves per optimizer, scale and seed; `sensitivity`: final increases
    per optimizer and scale with the scale effect; `grad_norm`: gradient norms per optimizer
    and scale, at the first step and over the run (`gradient_norms`); `verdict_texts`: the
    verdict box's sentences; `metrics`."""

    curves: pd.DataFrame
    sensitivity: pd.DataFrame
    grad_norm: pd.DataFrame
    verdict_texts: dict
    metrics: dict


FIRST_STEP, OVER_THE_RUN = "first step (initial policy)", "median over the run"


def gradient_norms(logs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and scale, the median over seeds of the gradient norm at the first step
    (the initial policy, the same samples at every scale: the norm is linear in c) and the
    median over every step of the run (wherever each optimizer has moved the policy)."""
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
    world = World.load()
    norms = load_normalizations()
    check_rms([params.rm], list(norms), "reward_scaling.rm")
    suite = load_suite()
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    plan = TrainingPlan.build(
        world.prompt_texts("pg_train"),
        params.eval_prompts,
        params.eval_samples,
        params.num_generations,
        params.prompts_per_step,
        params.epochs,
        params.evals_per_epoch,
    )
    base = PgRunConfig(
        num_generations=params.num_generations,
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
    curves, logs, _ = run_runs(
        policy, plan, runs, suite["gold"], norms["gold"], threads=params.threads
    )  # Adam and SGD members in one ensemble (GPT-2 in one process), else the solo loop
    sensitivity = scale_sensitivity(curves)
    grad = gradient_norms(logs)
    first = grad[grad.when == FIRST_STEP].set_index(["optimizer", "scale"]).grad_norm
    effect = sensitivity.groupby("optimizer")["scale_effect"].first()
    by_seed = scale_effects_by_seed(curves)
    decided = scaling(by_seed, {})
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
        **decided.all_metrics(),  # the claims registry's rule
        "seeds_where_adam_effect_is_smaller": int((by_seed.adam.abs() < by_seed.sgd.abs()).sum()),
        "n_seeds": len(by_seed),
        "threads": int(params.threads),
        "scale_ratio": max(params.scales) / min(params.scales),
        **{
            f"{optimizer}_first_step_grad_norm_ratio": float(
                first[optimizer, max(params.scales)] / first[optimizer, min(params.scales)]
            )
            for optimizer in rates
        },
    }
    return RewardScalingResult(curves, sensitivity, grad, decided.texts(), metrics)
