"""Sweeps of tracked policy-gradient runs: every run starts from the same initial policy, trains
on a normalised reward, and is evaluated at the same points on the same prompts."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from rmteacher.lm.policy_gradient import NormalizedReward, PgRunConfig, run_policy_gradient
from rmteacher.lm.tracking import EvalCallback, Evaluator, schedule

RUN_KEYS = ("policy", "algorithm", "variant", "rm", "seed")


@dataclass(frozen=True)
class TrainingPlan:
    """Prompts, length and evaluation points shared by the runs of a sweep."""

    train_prompts: tuple[str, ...]
    eval_prompts: tuple[str, ...]
    eval_samples: int
    max_steps: int
    steps_per_epoch: float
    eval_steps: frozenset[int]

    @classmethod
    def build(
        cls,
        train_prompts,
        n_eval_prompts: int,
        eval_samples: int,
        k: int,
        prompts_per_step: int,
        epochs: float,
        evals_per_epoch: int,
    ) -> TrainingPlan:
        """Evaluation on the first `n_eval_prompts` training prompts (as the paper evaluates on
        its policy-gradient prompts), `evals_per_epoch` times per trl epoch."""
        max_steps, per_epoch, steps = schedule(
            len(train_prompts), k, prompts_per_step, epochs, evals_per_epoch
        )
        return cls(
            tuple(train_prompts),
            tuple(train_prompts[:n_eval_prompts]),
            eval_samples,
            max_steps,
            per_epoch,
            frozenset(steps),
        )

    @classmethod
    def for_params(cls, train_prompts, params) -> TrainingPlan:
        """`build` from a stage's params (eval_prompts, eval_samples, num_generations,
        prompts_per_step, epochs, evals_per_epoch)."""
        return cls.build(
            train_prompts,
            params.eval_prompts,
            params.eval_samples,
            params.num_generations,
            params.prompts_per_step,
            params.epochs,
            params.evals_per_epoch,
        )


@dataclass(frozen=True)
class InitialPolicy:
    """A saved policy (directory), its loaded frozen copy (the KL reference for evaluation), its
    tokenizer and the generation settings every stage samples it with."""

    name: str
    path: str
    reference: object
    tokenizer: object
    generation: dict

    @classmethod
    def load(cls, name: str, path: str, generation: dict) -> InitialPolicy:
        from rmteacher.lm.models import load_policy

        model, tokenizer = load_policy(path, f"policy '{name}'")
        return cls(name, path, model, tokenizer, dict(generation))


def tracked_run(
    policy: InitialPolicy,
    plan: TrainingPlan,
    rm: str,
    proxy,
    proxy_norm,
    gold,
    gold_norm,
    cfg: PgRunConfig,
    reward_scale: float = 1.0,
    tags: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train `policy` on the normalised `proxy` and return (evaluation curve, per-step log), both
    labelled with policy, algorithm, rm, seed and any extra `tags`."""
    evaluator = Evaluator(
        policy.reference,
        policy.tokenizer,
        list(plan.eval_prompts),
        plan.eval_samples,
        proxy,
        proxy_norm,
        gold,
        gold_norm,
        policy.generation,
        seed=10_000 + cfg.seed,
    )
    callback = EvalCallback(evaluator, set(plan.eval_steps), plan.steps_per_epoch)
    reward = NormalizedReward(proxy, proxy_norm, rm, cfg.num_generations, scale=reward_scale)
    cfg = replace(cfg, **policy.generation)
    name = f"{cfg.algorithm} {policy.name} {rm} seed {cfg.seed}"
    log = run_policy_gradient(
        policy.path, list(plan.train_prompts), reward, cfg, plan.max_steps, [callback], name=name
    )
    labels = {
        "policy": policy.name,
        "algorithm": cfg.algorithm,
        "rm": rm,
        "seed": cfg.seed,
        **(tags or {}),
    }
    return pd.DataFrame(callback.rows).assign(**labels), log.assign(**labels)


def check_rms(requested, available, what: str = "rloo.rms") -> None:
    missing = [rm for rm in requested if rm not in available]
    if missing:
        raise ValueError(
            f"{what}: {', '.join(missing)} not evaluated by rm_eval "
            f"(available: {', '.join(available)})"
        )


def sweep(params, world, suite: dict, norms: dict):
    """Section 4.1: (evaluation curves, per-step logs) for every RM in `params.rms` and seed,
    from the initial policy, with rm_eval's normalisations."""
    check_rms(params.rms, list(suite))
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    plan = TrainingPlan.for_params(world.prompt_texts("pg_train"), params)
    curves, logs = [], []
    for seed in params.seeds:
        for rm in params.rms:
            cfg = PgRunConfig(
                num_generations=params.num_generations,
                prompts_per_step=params.prompts_per_step,
                beta=params.beta,
                learning_rate=params.learning_rate,
                seed=seed,
                **world.generation(),
            )
            curve, log = tracked_run(
                policy, plan, rm, suite[rm], norms[rm], suite["gold"], norms["gold"], cfg
            )
            curves.append(curve)
            logs.append(log)
    return pd.concat(curves, ignore_index=True), pd.concat(logs, ignore_index=True)


def increases(curves: pd.DataFrame) -> pd.DataFrame:
    """Curves with proxy_increase and gold_increase: the value minus the value at step 0 of the
    same run (a run is identified by whichever of RUN_KEYS the frame has)."""
    keys = [k for k in RUN_KEYS if k in curves.columns]
    start = curves[curves.step == 0].set_index(keys)[["proxy", "gold"]]
    joined = curves.join(start.add_suffix("_start"), on=keys)
    return joined.assign(
        proxy_increase=joined.proxy - joined.proxy_start,
        gold_increase=joined.gold - joined.gold_start,
    )
