"""Stage sec42_pg: policy gradient from every initial policy on every reward model, each RM
normalised on the policy it trains (sec42_eval's constants): RLOO as in the paper, GRPO without
reward scaling, and GRPO with trl's per-group std scaling as a labelled ablation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param

if TYPE_CHECKING:
    import pandas as pd

PG_VARIANTS = ("rloo", "grpo", "grpo_group")


@dataclass(frozen=True)
class Sec42PgParams(StageParams):
    """Policy gradient from every initial policy on every off-the-shelf RM (normalised per
    policy): RLOO as in the paper, GRPO without reward scaling, and GRPO with trl's per-group
    std scaling as a labelled ablation."""

    STAGE = "sec42_pg"
    seeds: tuple[int, ...] = param((0, 1, 2), "training seeds", ge=0)
    variants: tuple[str, ...] = param(
        PG_VARIANTS,
        "rloo; grpo (scale_rewards='none'); grpo_group (scale_rewards='group')",
        choices=PG_VARIANTS,
    )
    epochs: float = param(2.0, "trl epochs (paper 4.2: 2, one pass over the prompts)", gt=0)
    evals_per_epoch: int = param(1, "evaluations per epoch (plus one at the start)", ge=1)
    num_generations: int = param(2, "k, samples per prompt (paper: 2)", ge=2)
    prompts_per_step: int = param(32, "prompts per optimizer step", ge=1)
    n_train_prompts: int = param(
        256, "policy-gradient prompts used for training (2 epochs = one pass)", ge=2
    )
    beta: float = param(0.05, "KL coefficient of RLOO (paper: 0.05)", ge=0)
    grpo_beta: float = param(
        0.0, "KL coefficient of GRPO (the paper's GRPO KL term carried no gradient)", ge=0
    )
    learning_rate: float = param(3e-4, "Adam learning rate (constant)", gt=0)
    eval_prompts: int = param(64, "training prompts used for evaluation", ge=2)
    eval_samples: int = param(4, "samples per evaluation prompt", ge=1)

    def check(self) -> None:
        if len(set(self.seeds)) != len(self.seeds):
            raise ParamsError(f"{self.STAGE}.seeds: values must be distinct")
        if self.eval_prompts > self.n_train_prompts:
            raise ParamsError(f"{self.STAGE}.eval_prompts: must be <= n_train_prompts")


@dataclass(frozen=True)
class Sec42PgResult:
    """`curves`: one row per run and evaluation point, with increases; `logs`: trl's per-step
    logs; `metrics`: run counts and the mean final r_G increase per variant."""

    curves: pd.DataFrame
    logs: pd.DataFrame
    metrics: dict


def run(params: Sec42PgParams) -> Sec42PgResult:
    """Every policy x variant x seed x RM run; writes curves and logs under artifacts/sec42_pg."""
    from rmteacher.core import paths
    from rmteacher.lm.experiments.sec42_eval import Sec42EvalParams
    from rmteacher.lm.experiments.sec42_policies import Sec42PoliciesParams
    from rmteacher.lm.pg.sweep import sweep_policies
    from rmteacher.lm.rm.evaluation import load_policy_normalizations, reward_specs
    from rmteacher.lm.rm.training import read_manifest
    from rmteacher.lm.world.prompts import World
    from rmteacher.rewards.registry import load_reward

    policies = list(Sec42PoliciesParams.from_file().policies)
    rm_names = list(Sec42EvalParams.from_file().reward_models)
    world = World.load()
    world.require("pg_train", params.n_train_prompts, "sec42_pg.n_train_prompts")
    norms = {policy: load_policy_normalizations(policy) for policy in policies}
    manifest = read_manifest()
    specs = reward_specs(rm_names, manifest)
    rewards = {name: load_reward(spec, name) for name, spec in specs.items()}
    gold = load_reward(manifest["gold"], "gold")
    curves, logs = sweep_policies(params, policies, world, rewards, gold, norms)
    paths.SEC42_PG.mkdir(parents=True, exist_ok=True)
    curves.to_csv(paths.curves("sec42_pg"), index=False)
    logs.to_csv(paths.train_logs("sec42_pg"), index=False)
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
