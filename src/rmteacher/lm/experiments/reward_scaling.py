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

    def check(self) -> None:
        from rmteacher.lm.rm.specs import check_reward_fields

        check_reward_fields(self)  # the one check of every field that names a reward


@dataclass(frozen=True)
class RewardScalingResult:
    """`curves`: evaluation curves per optimizer, scale and seed; `sensitivity`: final increases
    per optimizer and scale with the scale effect; `grad_norm`: median gradient norm per
    optimizer and scale; `metrics`."""

    curves: pd.DataFrame
    sensitivity: pd.DataFrame
    grad_norm: pd.DataFrame
    metrics: dict


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
    grad = (
        logs.assign(grad_norm=logs.grad_norm.astype(float))
        .groupby(["optimizer", "scale"])["grad_norm"]
        .median()
        .reset_index()
    )
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
    }
    return RewardScalingResult(curves, sensitivity, grad, metrics)
