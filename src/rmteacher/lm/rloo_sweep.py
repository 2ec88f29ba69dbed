"""The rloo stage's work: one RLOO run per (reward model, seed), all from the same initial
policy, with rewards normalised by rm_eval's constants."""

from __future__ import annotations

import pandas as pd

from rmteacher.lm.models import load_policy
from rmteacher.lm.rloo import (EvalCallback, Evaluator, NormalizedReward, RlooRunConfig,
                               run_rloo, schedule)


def check_rms(requested, available) -> None:
    missing = [rm for rm in requested if rm not in available]
    if missing:
        raise ValueError(f"rloo.rms: {', '.join(missing)} not evaluated by rm_eval "
                         f"(available: {', '.join(available)})")


def sweep(params, world, suite: dict, norms: dict):
    """(evaluation curves, per-step training logs) for every RM in params.rms and seed."""
    check_rms(params.rms, list(suite))
    ref, tokenizer = load_policy(world.policy_dir, "initial policy")
    pg_prompts = world.prompt_texts("pg_train")
    eval_prompts = pg_prompts[: params.eval_prompts]
    max_steps, steps_per_epoch, eval_steps = schedule(
        len(pg_prompts), params.num_generations, params.prompts_per_step, params.epochs,
        params.evals_per_epoch)
    curves, logs = [], []
    for seed in params.seeds:
        for rm in params.rms:
            cfg = RlooRunConfig(num_generations=params.num_generations,
                                prompts_per_step=params.prompts_per_step, beta=params.beta,
                                learning_rate=params.learning_rate, seed=seed,
                                **world.generation())
            evaluator = Evaluator(ref, tokenizer, eval_prompts, params.eval_samples, suite[rm],
                                  norms[rm], suite["gold"], norms["gold"], world.generation(),
                                  seed=10_000 + seed)
            callback = EvalCallback(evaluator, eval_steps, steps_per_epoch)
            reward = NormalizedReward(suite[rm], norms[rm], rm, params.num_generations)
            log = run_rloo(world.policy_dir, pg_prompts, reward, cfg, max_steps, [callback],
                           name=f"rloo {rm} seed {seed}")
            curves.append(pd.DataFrame(callback.rows).assign(rm=rm, seed=seed))
            logs.append(log.assign(rm=rm, seed=seed))
    return pd.concat(curves, ignore_index=True), pd.concat(logs, ignore_index=True)


def increases(curves: pd.DataFrame) -> pd.DataFrame:
    """Curves with proxy_increase, gold_increase = value - value at step 0 of the same run."""
    start = curves[curves.step == 0].set_index(["rm", "seed"])[["proxy", "gold"]]
    joined = curves.join(start.add_suffix("_start"), on=["rm", "seed"])
    return joined.assign(proxy_increase=joined.proxy - joined.proxy_start,
                         gold_increase=joined.gold - joined.gold_start)
