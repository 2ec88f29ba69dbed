"""Sweeps of tracked policy-gradient runs: every run starts from a saved initial policy, trains on
a normalised reward, and is evaluated at the same points on the same prompts. Section 4.1's sweep
over RMs and seeds, Section 4.2's over policies x variants x seeds x RMs, and free-form grids of
runs (another normalisation, a uniform reward scale under Adam or SGD)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from rmteacher.core import paths
from rmteacher.core.hf import load_policy
from rmteacher.lm.pg.loop import train
from rmteacher.lm.pg.reward import NormalizedReward
from rmteacher.lm.pg.settings import PgRunConfig
from rmteacher.lm.pg.tracking import EvalSchedule, Evaluator, schedule

RUN_KEYS = ("policy", "algorithm", "variant", "rm", "seed")
# How each policy-gradient variant maps onto the loop's settings (GRPO's reward scaling is always
# chosen explicitly: "group" divides out the very per-prompt scale the paper studies).
VARIANTS = {
    "rloo": {"algorithm": "rloo"},
    "grpo": {"algorithm": "grpo", "scale_rewards": "none"},
    "grpo_group": {"algorithm": "grpo", "scale_rewards": "group"},
}


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
    def for_settings(
        cls, train_prompts, settings, epochs: float, evals_per_epoch: int | None = None
    ) -> TrainingPlan:
        """`build` from a stage's policy-gradient settings (its pg fields: eval_prompts,
        eval_samples, num_generations, prompts_per_step and, unless given, evals_per_epoch)."""
        return cls.build(
            train_prompts,
            settings.eval_prompts,
            settings.eval_samples,
            settings.num_generations,
            settings.prompts_per_step,
            epochs,
            settings.evals_per_epoch if evals_per_epoch is None else evals_per_epoch,
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
    extras: dict | None = None,
    keep: int = 0,
    initial_cache: dict | None = None,
    accelerator=None,
    threads: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train `policy` on the normalised `proxy` and return (evaluation curve, per-step log, kept
    samples), all labelled with policy, algorithm, rm, seed and any extra `tags`. `extras`,
    `keep` and `initial_cache` are the Evaluator's (extra mean scores per evaluation, samples kept
    per evaluation, the untrained policy's evaluation shared between runs); `accelerator` is the
    loop's (data parallel; every process evaluates the same, replicated, policy); `threads`
    pins torch's thread count for the run (None: as it is)."""
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
        extras=extras,
        keep=keep,
        initial_cache=initial_cache,
    )
    evaluations = EvalSchedule(evaluator, set(plan.eval_steps), plan.steps_per_epoch)
    reward = NormalizedReward(proxy, proxy_norm, rm, scale=reward_scale)
    cfg = replace(cfg, **policy.generation)
    name = f"{cfg.algorithm} {policy.name} {rm} seed {cfg.seed}"
    _, log = train(
        policy.reference,
        policy.tokenizer,
        list(plan.train_prompts),
        reward,
        cfg,
        plan.max_steps,
        on_step=evaluations,
        desc=name,
        accelerator=accelerator,
        threads=threads,
    )
    labels = {
        "policy": policy.name,
        "algorithm": cfg.algorithm,
        "rm": rm,
        "seed": cfg.seed,
        **(tags or {}),
    }
    samples = pd.DataFrame(
        [
            {"step": row["step"], "epoch": row["epoch"], **sample}
            for row, kept in zip(evaluations.rows, evaluator.samples, strict=True)
            for sample in kept
        ],
        columns=["step", "epoch", "prompt", "response", "proxy_raw", "gold_raw"],
    )
    return (
        pd.DataFrame(evaluations.rows).assign(**labels),
        log.assign(**labels),
        samples.assign(**labels),
    )


def check_rms(requested, available, what: str = "rloo.rms") -> None:
    missing = [rm for rm in requested if rm not in available]
    if missing:
        raise ValueError(
            f"{what}: {', '.join(missing)} not evaluated by rm_eval "
            f"(available: {', '.join(available)})"
        )


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


def run_grid(
    policy: InitialPolicy, plan: TrainingPlan, runs: list[dict], gold, gold_norm, **evaluation
):
    """Tracked runs from one policy. Each run is a dict with keys rm, proxy, norm, cfg and
    optionally plan (else `plan`), scale (uniform reward multiplier) and tags; `evaluation`
    (extras, keep, and threads, the thread count pinned per run) goes to every run. Returns
    (curves with increases, per-step logs, kept samples)."""
    curves, logs, samples = [], [], []
    initial_cache = {}  # the untrained policy's evaluation, shared by runs with the same seed
    for run in runs:
        curve, log, kept = tracked_run(
            policy,
            run.get("plan", plan),
            run["rm"],
            run["proxy"],
            run["norm"],
            gold,
            gold_norm,
            run["cfg"],
            reward_scale=run.get("scale", 1.0),
            tags=run.get("tags"),
            initial_cache=initial_cache,
            **evaluation,
        )
        curves.append(curve)
        logs.append(log)
        samples.append(kept)
    return (
        increases(pd.concat(curves, ignore_index=True)),
        pd.concat(logs, ignore_index=True),
        pd.concat(samples, ignore_index=True),
    )


def scaling_runs(
    rm: str, proxy, norm, base_cfg: PgRunConfig, scales, seeds, learning_rates: dict[str, float]
) -> list[dict]:
    """The grid optimizer x scale x seed for the uniform-scaling experiment; gradient clipping
    is off so that SGD's step really is proportional to the reward scale."""
    runs = []
    for optimizer, lr in learning_rates.items():
        for scale in scales:
            for seed in seeds:
                cfg = replace(
                    base_cfg, optimizer=optimizer, learning_rate=lr, seed=seed, max_grad_norm=None
                )
                runs.append(
                    {
                        "rm": rm,
                        "proxy": proxy,
                        "norm": norm,
                        "cfg": cfg,
                        "scale": scale,
                        "tags": {"optimizer": optimizer, "scale": scale},
                    }
                )
    return runs


def write_train_logs(logs: pd.DataFrame, stage: str, path=None, timings_path=None) -> None:
    """Write a policy-gradient stage's per-step logs to its DVC-tracked `train_logs.csv` (or
    `path`), minus the wall-clock `time_*` columns, which differ on every run (so a forced rerun
    with the same seed leaves dvc.lock unchanged); those go, with the run keys, to untracked
    artifacts/timings/<stage>.csv (or `timings_path`)."""

    timings = [c for c in logs.columns if c.startswith("time_")]
    logs.drop(columns=timings).to_csv(path or paths.train_logs(stage), index=False)
    timings_path = Path(timings_path or paths.timings(stage))
    timings_path.parent.mkdir(parents=True, exist_ok=True)
    run_ids = [c for c in ("policy", "variant", "rm", "seed", "step") if c in logs.columns]
    logs[run_ids + timings].to_csv(timings_path, index=False)
