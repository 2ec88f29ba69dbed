"""Stage rloo: RLOO (k samples per prompt, leave-one-out baseline, KL weight beta inside the
reward; `rmteacher.lm.pg.loop`) from the same initial policy on every RM of Section 4.1, each
reward normalised with the constants rm_eval measured, at the learning rate rloo_lr chose on r_G.

Runs: the five mixes and the controls (r_G, the perfect RM with and without the shift) with
`seeds`; the perfect RM at beta = 0 with `seeds`; every member of rm_eval's controlled family with
`family_seeds` for `family_epochs`; and the ablation without gradient clipping (`noclip_rms`,
`noclip_seeds`, `noclip_epochs`). Every run is evaluated at the same points on the same prompts,
with the VADER sentiment of prompt + response beside r_G as a check that r_G is not being hacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.lm.experiments.rm_train import MIX_FRACTIONS, mix_rm_name

if TYPE_CHECKING:
    import pandas as pd

MIXES = tuple(mix_rm_name(f) for f in MIX_FRACTIONS)
CONTROLS = ("gold", "perfect", "perfect_unshifted")


@dataclass(frozen=True)
class RlooParams(StageParams):
    """RLOO from the initial policy on the mixes, the controls (r_G, the perfect RM with and
    without the shift, the perfect RM at beta = 0), the controlled family and an ablation without
    gradient clipping, rewards normalised by rm_eval's constants, at rloo_lr's learning rate."""

    STAGE = "rloo"
    seeds: tuple[int, ...] = param(
        (0, 1, 2, 3, 4), "seeds of the mixes and controls (one run per RM and seed)", ge=0
    )
    rms: tuple[str, ...] = param(MIXES + CONTROLS, "mixes and controls trained on with `seeds`")
    beta0_rms: tuple[str, ...] = param(("perfect",), "RMs also trained at beta = 0 (`seeds`)")
    family_seeds: tuple[int, ...] = param(
        (0, 1, 2), "seeds of each controlled-family member (empty: no family runs)", ge=0
    )
    family_epochs: float = param(1.0, "epochs of the family runs", gt=0)
    noclip_rms: tuple[str, ...] = param(
        ("rm_onpolicy_100", "rm_onpolicy_0", "gold", "perfect"),
        "RMs of the ablation without gradient clipping",
    )
    noclip_seeds: tuple[int, ...] = param((0, 1, 2), "seeds of the ablation", ge=0)
    noclip_epochs: float = param(1.0, "epochs of the ablation runs", gt=0)
    epochs: float = param(
        2.0, "epochs of the mixes and controls (1 epoch = as many completions as prompts)", gt=0
    )
    evals_per_epoch: int = param(4, "evaluations per epoch (plus one at the start)", ge=1)
    num_generations: int = param(2, "k, samples per prompt (paper: 2)", ge=2)
    prompts_per_step: int = param(16, "prompts per optimizer step", ge=1)
    beta: float = param(0.05, "KL coefficient lambda (paper: 0.05)", ge=0)
    learning_rate: float | None = param(
        None, "Adam learning rate; null: the rate rloo_lr chose on r_G", gt=0
    )
    max_grad_norm: float = param(
        1.0, "gradient-norm clipping of the main runs (trl's default)", gt=0
    )
    eval_prompts: int = param(128, "fixed policy-gradient prompts used for evaluation", ge=2)
    eval_samples: int = param(4, "samples per evaluation prompt", ge=1)
    keep_samples: int = param(3, "samples per evaluation kept for reading (seed 0 only)", ge=0)

    def check(self) -> None:
        for key in ("seeds", "family_seeds", "noclip_seeds", "rms", "beta0_rms", "noclip_rms"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ParamsError(f"{self.STAGE}.{key}: values must be distinct")
        allowed = MIXES + CONTROLS
        for key in ("rms", "beta0_rms", "noclip_rms"):
            for name in getattr(self, key):
                if name not in allowed and not name.startswith("rm_onpolicy_"):
                    raise ParamsError(
                        f"{self.STAGE}.{key}: unknown RM '{name}'; allowed: {', '.join(allowed)}"
                    )


@dataclass(frozen=True)
class RlooResult:
    """`curves`: one row per run and evaluation point (normalised proxy and r_G reward, their
    increases since step 0, KL to the initial policy, VADER of prompt + response); `logs`: the
    loop's per-step logs; `samples`: a few kept samples per evaluation (seed 0); `metrics`."""

    curves: pd.DataFrame
    logs: pd.DataFrame
    samples: pd.DataFrame
    metrics: dict


def training_plan(world, params: RlooParams, epochs: float):
    """Prompts, length and evaluation points of a run of `epochs` epochs."""
    from rmteacher.lm.pg.sweep import TrainingPlan

    return TrainingPlan.build(
        world.prompt_texts("pg_train"),
        params.eval_prompts,
        params.eval_samples,
        params.num_generations,
        params.prompts_per_step,
        epochs,
        params.evals_per_epoch,
    )


def base_config(params: RlooParams, world, learning_rate: float):
    from rmteacher.lm.pg.loop import PgRunConfig

    return PgRunConfig(
        num_generations=params.num_generations,
        prompts_per_step=params.prompts_per_step,
        beta=params.beta,
        learning_rate=learning_rate,
        max_grad_norm=params.max_grad_norm,
        seed=0,
        **world.generation(),
    )


def chosen_learning_rate(params: RlooParams) -> float:
    """`params.learning_rate`, or the rate rloo_lr chose when it is null."""
    import json

    from rmteacher.core import paths

    if params.learning_rate is not None:
        return params.learning_rate
    if not paths.LR_CHOICE.is_file():
        raise FileNotFoundError(f"{paths.LR_CHOICE} missing: run the rloo_lr stage first")
    return float(json.loads(paths.LR_CHOICE.read_text())["learning_rate"])


def run_specs(params: RlooParams, family: list[str]) -> list[dict]:
    """Every run as {rm, variant, seed, epochs, beta, clip}: variant 'main' (mixes, controls and
    family), 'beta0' and 'noclip'."""
    specs = [
        {"rm": rm, "variant": "main", "seed": seed, "epochs": params.epochs}
        for seed in params.seeds
        for rm in params.rms
    ]
    specs += [
        {"rm": rm, "variant": "beta0", "seed": seed, "epochs": params.epochs, "beta": 0.0}
        for seed in params.seeds
        for rm in params.beta0_rms
    ]
    specs += [
        {"rm": rm, "variant": "main", "seed": seed, "epochs": params.family_epochs}
        for seed in params.family_seeds
        for rm in family
    ]
    specs += [
        {"rm": rm, "variant": "noclip", "seed": seed, "epochs": params.noclip_epochs, "clip": None}
        for seed in params.noclip_seeds
        for rm in params.noclip_rms
    ]
    return specs


def run(params: RlooParams) -> RlooResult:
    """Every run of `run_specs`; writes curves, logs and samples under artifacts/rloo."""
    from dataclasses import replace

    from rmteacher.core import paths
    from rmteacher.lm.pg.sweep import InitialPolicy, check_rms, run_grid, write_train_logs
    from rmteacher.lm.rm.evaluation import load_normalizations, load_suite
    from rmteacher.lm.rm.gold import vader_passage
    from rmteacher.lm.world.prompts import World

    world = World.load()
    norms = load_normalizations()
    requested = {*params.rms, *params.beta0_rms, *params.noclip_rms}
    check_rms(sorted(requested), list(norms))  # before loading or training anything
    learning_rate = chosen_learning_rate(params)
    suite = load_suite()
    family = [name for name in suite if name.startswith("fam_")] if params.family_seeds else []
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    base = base_config(params, world, learning_rate)
    plans = {}
    runs = []
    for spec in run_specs(params, family):
        epochs = spec["epochs"]
        plans.setdefault(epochs, training_plan(world, params, epochs))
        cfg = replace(
            base,
            seed=spec["seed"],
            beta=spec.get("beta", params.beta),
            max_grad_norm=spec.get("clip", params.max_grad_norm),
        )
        runs.append(
            {
                "rm": spec["rm"],
                "proxy": suite[spec["rm"]],
                "norm": norms[spec["rm"]],
                "cfg": cfg,
                "plan": plans[epochs],
                "tags": {"variant": spec["variant"]},
            }
        )
    curves, logs, samples = run_grid(
        policy,
        plans[params.epochs],
        runs,
        suite["gold"],
        norms["gold"],
        extras={"vader": vader_passage},
        keep=params.keep_samples,
    )
    samples = samples[samples.seed == samples.seed.min()] if len(samples) else samples
    paths.RLOO.mkdir(parents=True, exist_ok=True)
    curves.to_csv(paths.curves("rloo"), index=False)
    write_train_logs(logs, "rloo")
    samples.to_csv(paths.RLOO_SAMPLES, index=False)
    main = curves[curves.variant == "main"]
    final = (
        main[main.step == main.groupby(["rm", "seed"]).step.transform("max")]
        .groupby("rm")[["proxy_increase", "gold_increase", "kl"]]
        .mean()
    )
    metrics = {
        "runs": int(curves.groupby(["rm", "variant", "seed"]).ngroups),
        "learning_rate": learning_rate,
        "steps_per_epoch": float(plans[params.epochs].steps_per_epoch),
        "steps_main": int(plans[params.epochs].max_steps),
        "epochs": float(params.epochs),
        **{f"final_gold_increase_{rm}": float(v) for rm, v in final.gold_increase.items()},
        **{f"final_proxy_increase_{rm}": float(v) for rm, v in final.proxy_increase.items()},
        **{f"final_kl_{rm}": float(v) for rm, v in final.kl.items()},
    }
    return RlooResult(curves, logs, samples, metrics)
