"""Stage sec42_pg: policy gradient from every initial policy on every reward model, each RM
normalised on the policy it trains (sec42_eval's constants), in Section 4.1's regime (its
learning rate, batch, k, KL weight and clipping): RLOO as in the paper, and as labelled variants
GRPO without reward scaling and GRPO with trl's per-group std scaling."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from rmteacher.core import paths
from rmteacher.lm.pg.settings import run_config
from rmteacher.lm.pg.sweep import (
    VARIANTS,
    InitialPolicy,
    TrainingPlan,
    run_grid,
    write_train_logs,
)
from rmteacher.lm.rm.evaluation import (
    load_policy_normalizations,
    load_suite,
    reward_specs,
)
from rmteacher.lm.rm.training import read_manifest
from rmteacher.lm.world.policies import policy_path
from rmteacher.lm.world.prompts import World
from rmteacher.rewards.registry import load_reward
from rmteacher.stages.lm.params.sec42_pg import Sec42PgParams


@dataclass(frozen=True)
class Sec42PgResult:
    """`curves`: one row per run and evaluation point, with increases; `logs`: per-step logs;
    `metrics`: run counts and the mean final r_G increase per variant."""

    curves: pd.DataFrame
    logs: pd.DataFrame
    metrics: dict


def evaluated() -> tuple[list[str], set[str]]:
    """(the Section 4.2 policies in sec42_eval's order, the RMs it evaluated on them), from its
    declared output artifacts/sec42_eval/policy_rm_eval.csv."""
    table = pd.read_csv(paths.POLICY_RM_EVAL)
    return list(dict.fromkeys(table.policy)), set(table.rm)


def run(params: Sec42PgParams) -> Sec42PgResult:
    """Every policy x variant x seed x RM run; writes curves and logs under artifacts/sec42_pg."""
    policies, evaluated_rms = evaluated()
    missing = [rm for rm in params.reward_models if rm not in evaluated_rms]
    if missing:
        raise ValueError(
            f"sec42_pg.reward_models: {', '.join(missing)} not evaluated by sec42_eval "
            "(sec42_eval.reward_models)"
        )
    world = World.load()
    world.require("pg_train", params.n_train_prompts, "sec42_pg.n_train_prompts")
    norms = {policy: load_policy_normalizations(policy) for policy in policies}
    suite = load_suite()
    specs = reward_specs([n for n in params.reward_models if n not in suite], read_manifest())
    rewards = {
        name: suite[name] if name in suite else load_reward(specs[name], name)
        for name in params.reward_models
    }
    prompts = world.prompt_texts("pg_train")[: params.n_train_prompts]
    plan = TrainingPlan.for_settings(prompts, params, params.epochs, params.evals_per_epoch)
    base = run_config(params, world.generation())  # pg.learning_rate, or rloo_lr's choice
    curves, logs = [], []
    for policy in policies:
        initial = InitialPolicy.load(policy, str(policy_path(policy)), world.generation())
        runs = []
        for variant in params.variants:
            settings = VARIANTS[variant]
            grpo = settings["algorithm"] == "grpo"
            for seed in params.grpo_seeds if grpo else params.seeds:
                cfg = replace(
                    base, seed=seed, beta=params.grpo_beta if grpo else params.beta, **settings
                )
                runs += [
                    {
                        "rm": rm,
                        "proxy": reward,
                        "norm": norms[policy][rm],
                        "cfg": cfg,
                        "tags": {"variant": variant},
                    }
                    for rm, reward in rewards.items()
                ]
        curve, log, _ = run_grid(initial, plan, runs, suite["gold"], norms[policy]["gold"])
        curves.append(curve)
        logs.append(log)
    curves = pd.concat(curves, ignore_index=True)
    logs = pd.concat(logs, ignore_index=True)
    paths.SEC42_PG.mkdir(parents=True, exist_ok=True)
    curves.to_csv(paths.curves("sec42_pg"), index=False)
    write_train_logs(logs, "sec42_pg")
    last = curves[curves.step == curves.step.max()]
    metrics = {
        "runs": int(curves.groupby(["policy", "variant", "rm", "seed"]).ngroups),
        "steps_per_run": int(curves.step.max()),
        "epochs": float(curves.epoch.max()),
        **{
            f"{v}_mean_gold_increase": float(g.gold_increase.mean())
            for v, g in last.groupby("variant")
        },
    }
    return Sec42PgResult(curves, logs, metrics)
