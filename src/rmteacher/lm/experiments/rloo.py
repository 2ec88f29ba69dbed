"""Stage rloo: RLOO (trl RLOOTrainer: k samples per prompt, leave-one-out baseline, KL weight beta
inside the reward) on every RM of the suite and on r_G itself, from the same initial policy, each
reward normalised with the constants rm_eval measured; evaluated at evenly spaced points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.lm.experiments.rm_train import MIX_FRACTIONS, mix_rm_name

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RlooParams(StageParams):
    """RLOO (trl RLOOTrainer, k samples per prompt, KL weight beta) on every RM and on r_G, with
    rewards normalised by the constants of rm_eval; evaluated at evenly spaced points."""

    STAGE = "rloo"
    seeds: tuple[int, ...] = param((0, 1, 2), "training seeds (one run per RM and seed)", ge=0)
    rms: tuple[str, ...] = param(
        (
            "rm_onpolicy_100",
            "rm_onpolicy_75",
            "rm_onpolicy_50",
            "rm_onpolicy_25",
            "rm_onpolicy_0",
            "perfect",
            "gold",
        ),
        "reward models to train on ('perfect' = scaled r_G, 'gold' = r_G itself)",
    )
    epochs: float = param(6.0, "passes over the policy-gradient prompts (k samples each)", gt=0)
    evals_per_epoch: int = param(1, "evaluations per epoch (plus one at the start)", ge=1)
    num_generations: int = param(2, "k, samples per prompt (paper: 2)", ge=2)
    prompts_per_step: int = param(32, "prompts per optimizer step", ge=1)
    beta: float = param(0.05, "KL coefficient lambda (paper: 0.05)", ge=0)
    learning_rate: float = param(3e-4, "Adam learning rate (constant)", gt=0)
    eval_prompts: int = param(128, "fixed policy-gradient prompts used for evaluation", ge=2)
    eval_samples: int = param(4, "samples per evaluation prompt", ge=1)

    def check(self) -> None:
        if len(set(self.seeds)) != len(self.seeds):
            raise ParamsError(f"{self.STAGE}.seeds: values must be distinct")
        if len(set(self.rms)) != len(self.rms):
            raise ParamsError(f"{self.STAGE}.rms: values must be distinct")
        allowed = [mix_rm_name(f) for f in MIX_FRACTIONS] + ["perfect", "perfect_unshifted", "gold"]
        for name in self.rms:
            if name not in allowed and not name.startswith("rm_onpolicy_"):
                raise ParamsError(
                    f"{self.STAGE}.rms: unknown RM '{name}'; allowed: {', '.join(allowed)}"
                )


@dataclass(frozen=True)
class RlooResult:
    """`curves`: one row per run and evaluation point (proxy and r_G reward, their increases
    since step 0, KL to the initial policy); `logs`: trl's per-step logs of every run;
    `metrics`: final increases and KL per RM."""

    curves: pd.DataFrame
    logs: pd.DataFrame
    metrics: dict


def run(params: RlooParams) -> RlooResult:
    """One tracked RLOO run per RM and seed; writes the curves and logs under artifacts/rloo."""
    from rmteacher.core import paths
    from rmteacher.lm.pg.sweep import check_rms, increases, sweep
    from rmteacher.lm.rm.evaluation import load_normalizations, load_suite
    from rmteacher.lm.world.prompts import World

    world = World.load()
    norms = load_normalizations()
    check_rms(params.rms, list(norms))  # before loading or training anything
    suite = load_suite()
    curves, logs = sweep(params, world, suite, norms)
    curves = increases(curves)
    paths.RLOO.mkdir(parents=True, exist_ok=True)
    curves.to_csv(paths.curves("rloo"), index=False)
    logs.to_csv(paths.train_logs("rloo"), index=False)
    final = (
        curves[curves.step == curves.step.max()]
        .groupby("rm")[["proxy_increase", "gold_increase", "kl"]]
        .mean()
    )
    metrics = {
        "runs": int(curves.groupby(["rm", "seed"]).ngroups),
        "steps_per_run": int(curves.step.max()),
        "epochs": float(curves.epoch.max()),
        **{f"final_gold_increase_{rm}": float(v) for rm, v in final.gold_increase.items()},
        **{f"final_proxy_increase_{rm}": float(v) for rm, v in final.proxy_increase.items()},
        **{f"final_kl_{rm}": float(v) for rm, v in final.kl.items()},
    }
    return RlooResult(curves, logs, metrics)
