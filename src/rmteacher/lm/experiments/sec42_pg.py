"""Stage sec42_pg: policy gradient from every initial policy on every reward model, each RM
normalised on the policy it trains (sec42_eval's constants), in Section 4.1's regime (its
learning rate, batch, k, KL weight and clipping): RLOO as in the paper, and as labelled variants
GRPO without reward scaling and GRPO with trl's per-group std scaling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param

if TYPE_CHECKING:
    import pandas as pd

PG_VARIANTS = ("rloo", "grpo", "grpo_group")
PG_RMS = (
    "rm_own_sft_austen",
    "rm_own_sft_quotes",
    "rm_onpolicy_100",
    "rm_onpolicy_0",
    "fam_n1_c1",
    "fam_n0_c0.1",
    "afinn",
    "textblob",
)


@dataclass(frozen=True)
class Sec42PgParams(StageParams):
    """Policy gradient from every initial policy on every RM (normalised per policy), in Section
    4.1's regime: RLOO as in the paper, GRPO without reward scaling, and GRPO with trl's per-group
    std scaling as labelled variants."""

    STAGE = "sec42_pg"
    reward_models: tuple[str, ...] = param(
        PG_RMS, "RMs trained on (a subset of sec42_eval.reward_models)"
    )
    seeds: tuple[int, ...] = param((0, 1, 2, 3, 4), "RLOO seeds", ge=0)
    grpo_seeds: tuple[int, ...] = param((0, 1, 2), "seeds of the GRPO variants", ge=0)
    variants: tuple[str, ...] = param(
        PG_VARIANTS,
        "rloo; grpo (scale_rewards='none'); grpo_group (scale_rewards='group')",
        choices=PG_VARIANTS,
    )
    epochs: float = param(2.0, "epochs (paper 4.2: 2, one pass over the prompts)", gt=0)
    n_train_prompts: int = param(
        1024, "policy-gradient prompts used for training (2 epochs = one pass)", ge=2
    )
    evals_per_epoch: int = param(
        1, "evaluations per epoch, plus one at the start (the last enters the tables)", ge=1
    )
    grpo_beta: float = param(
        0.0, "KL coefficient of GRPO (the paper's GRPO KL term carried no gradient)", ge=0
    )

    def check(self) -> None:
        for key in ("seeds", "grpo_seeds", "reward_models"):
            if len(set(getattr(self, key))) != len(getattr(self, key)):
                raise ParamsError(f"{self.STAGE}.{key}: values must be distinct")


@dataclass(frozen=True)
class Sec42PgResult:
    """`curves`: one row per run and evaluation point, with increases; `logs`: per-step logs;
    `metrics`: run counts and the mean final r_G increase per variant."""

    curves: pd.DataFrame
    logs: pd.DataFrame
    metrics: dict


def run(params: Sec42PgParams) -> Sec42PgResult:
    """Every policy x variant x seed x RM run; writes curves and logs under artifacts/sec42_pg."""
    from dataclasses import replace

    import pandas as pd

    from rmteacher.core import paths
    from rmteacher.lm.experiments.rloo import RlooParams, base_config, chosen_learning_rate
    from rmteacher.lm.experiments.sec42_eval import Sec42EvalParams
    from rmteacher.lm.experiments.sec42_policies import Sec42PoliciesParams
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

    policies = list(Sec42PoliciesParams.from_file().policies)
    evaluated = Sec42EvalParams.from_file().reward_models
    missing = [rm for rm in params.reward_models if rm not in evaluated]
    if missing:
        raise ValueError(
            f"sec42_pg.reward_models: {', '.join(missing)} not in sec42_eval.reward_models"
        )
    rloo = RlooParams.from_file()
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
    plan = TrainingPlan.build(
        prompts,
        rloo.eval_prompts,
        rloo.eval_samples,
        rloo.num_generations,
        rloo.prompts_per_step,
        params.epochs,
        params.evals_per_epoch,
    )
    base = base_config(rloo, world, chosen_learning_rate(rloo))
    curves, logs = [], []
    for policy in policies:
        initial = InitialPolicy.load(policy, str(policy_path(policy)), world.generation())
        runs = []
        for variant in params.variants:
            settings = VARIANTS[variant]
            grpo = settings["algorithm"] == "grpo"
            for seed in params.grpo_seeds if grpo else params.seeds:
                cfg = replace(
                    base, seed=seed, beta=params.grpo_beta if grpo else rloo.beta, **settings
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
