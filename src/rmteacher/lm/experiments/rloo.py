"""Stage rloo: RLOO (k samples per prompt, leave-one-out baseline, KL weight beta inside the
reward; `rmteacher.lm.pg.loop`) from the same initial policy on every RM of Section 4.1, each
reward normalised with the constants rm_eval measured, at the learning rate rloo_lr chose on r_G.

Each run is its own DVC-cached unit: the matrix stages rloo_main, rloo_beta0 and rloo_noclip run
one (RM, seed) each, rloo_family one seed of every family member (the members are defined
together by rm_eval), all through `rmteacher pg-run rloo UNIT` (`run_unit`), with
`accelerate launch` when `num_processes` > 1. The rloo stage (`run`) joins them. Adding a seed
or an RM to these params reruns only the new units; what they all read (rm_eval's normalisations
of every RM, the learning rate, the initial policy) reruns them all.

Runs: the five mixes and the controls (r_G, the perfect RM with and without the shift) with
`seeds`; the perfect RM at beta = 0 with `seeds`; every member of rm_eval's controlled family with
`family_seeds` for `family_epochs`; and the ablation without gradient clipping (`noclip_rms`,
`noclip_seeds`, `noclip_epochs`). Every run is evaluated at the same points on the same prompts,
with the VADER sentiment of prompt + response beside r_G as a check that r_G is not being hacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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
    beta0_rms: tuple[str, ...] = param(
        ("perfect",),
        "RMs also trained at beta = 0 (`seeds`; [] for none)",
        may_be_empty=True,
    )
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
    num_processes: int = param(
        1,
        "processes per run (> 1: accelerate launch, data parallel; one per GPU, gloo on CPU)",
        ge=1,
    )

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
        if self.prompts_per_step % self.num_processes:
            raise ParamsError(
                f"{self.STAGE}.prompts_per_step={self.prompts_per_step} does not divide among "
                f"num_processes={self.num_processes}"
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


UNITS = ("main", "beta0", "family", "noclip")  # the matrix stages rloo_<unit>


def run_specs(params: RlooParams, family: list[str]) -> list[dict]:
    """Every run as {unit, rm, variant, seed, epochs, beta, clip}, in the order the stage joins
    them: variant 'main' (mixes and controls; the family's runs, unit 'family', are 'main' too),
    'beta0' and 'noclip'."""
    specs = [
        {"unit": "main", "rm": rm, "variant": "main", "seed": seed, "epochs": params.epochs}
        for seed in params.seeds
        for rm in params.rms
    ]
    specs += [
        {
            "unit": "beta0",
            "rm": rm,
            "variant": "beta0",
            "seed": seed,
            "epochs": params.epochs,
            "beta": 0.0,
        }
        for seed in params.seeds
        for rm in params.beta0_rms
    ]
    specs += [
        {
            "unit": "family",
            "rm": rm,
            "variant": "main",
            "seed": seed,
            "epochs": params.family_epochs,
        }
        for seed in params.family_seeds
        for rm in family
    ]
    specs += [
        {
            "unit": "noclip",
            "rm": rm,
            "variant": "noclip",
            "seed": seed,
            "epochs": params.noclip_epochs,
            "clip": None,
        }
        for seed in params.noclip_seeds
        for rm in params.noclip_rms
    ]
    return specs


def unit_key(spec: dict) -> tuple[str, int, str | None]:
    """(unit, seed, rm) of the cached unit a run belongs to (rm None: every family member)."""
    return spec["unit"], spec["seed"], None if spec["unit"] == "family" else spec["rm"]


def unit_dir(unit: str, seed: int, rm: str | None = None):
    """artifacts/rloo_runs/<unit>/<rm>/seed_<seed> (family: <unit>/seed_<seed>), as dvc.yaml's
    matrix stages declare them."""
    from rmteacher.core import paths

    base = paths.RLOO_RUNS / unit
    return base / f"seed_{seed}" if rm is None else base / rm / f"seed_{seed}"


def unit_timings(unit: str, seed: int, rm: str | None = None):
    """Untracked artifacts/timings/rloo_runs/<unit>-<rm or family>-seed_<seed>.csv."""
    from rmteacher.core import paths

    return paths.timings(f"rloo_runs/{unit}-{rm or 'family'}-seed_{seed}")


def family_names() -> list[str]:
    """The controlled family's members, as rm_eval defined them (no model is loaded)."""
    from rmteacher.lm.rm.evaluation import suite_definition
    from rmteacher.lm.rm.suite import FamilyMember

    return [FamilyMember(**fields).name for fields in suite_definition()["family"]]


def unit_specs(params: RlooParams, unit: str, seed: int, rm: str | None) -> list[dict]:
    """The runs of one cached unit; ParamsError when params.yaml lists no such unit (the matrix
    stages and params.yaml disagree, or a hand-typed command names a run that is not planned)."""
    if unit not in UNITS:
        raise ParamsError(f"rloo: unknown unit '{unit}'; units: {', '.join(UNITS)}")
    if (unit == "family") != (rm is None):
        raise ParamsError(
            "rloo: a family unit takes no RM (it runs every member)"
            if unit == "family"
            else f"rloo: a {unit} unit needs an RM"
        )
    family = family_names() if unit == "family" else []
    specs = [s for s in run_specs(params, family) if unit_key(s) == (unit, seed, rm)]
    if not specs:
        what = f"{unit} run of '{rm}'" if rm else "family unit"
        raise ParamsError(f"rloo: params.yaml plans no {what} with seed {seed}")
    return specs


def run_unit(
    params: RlooParams,
    unit: str,
    seed: int,
    rm: str | None = None,
    accelerator=None,
    out=None,
):
    """Train the runs of one cached unit (`run_grid`, so a family unit's runs share the untrained
    policy's evaluation) and write their curves with increases, logs and kept samples to `out`
    (default `unit_dir`; the main process only, when data parallel)."""
    from dataclasses import replace

    from rmteacher.lm.pg.sweep import InitialPolicy, check_rms, run_grid, write_train_logs
    from rmteacher.lm.rm.evaluation import load_normalizations, load_suite
    from rmteacher.lm.rm.gold import vader_passage
    from rmteacher.lm.world.prompts import World

    specs = unit_specs(params, unit, seed, rm)
    world = World.load()
    norms = load_normalizations()
    check_rms(sorted({s["rm"] for s in specs}), list(norms))  # before loading or training
    suite = load_suite(mixes={s["rm"] for s in specs})
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    base = base_config(params, world, chosen_learning_rate(params))
    runs = [
        {
            "rm": spec["rm"],
            "proxy": suite[spec["rm"]],
            "norm": norms[spec["rm"]],
            "cfg": replace(
                base,
                seed=seed,
                beta=spec.get("beta", params.beta),
                max_grad_norm=spec.get("clip", params.max_grad_norm),
            ),
            "tags": {"variant": spec["variant"]},
        }
        for spec in specs
    ]
    curves, logs, samples = run_grid(
        policy,
        training_plan(world, params, specs[0]["epochs"]),  # a unit's runs share their length
        runs,
        suite["gold"],
        norms["gold"],
        extras={"vader": vader_passage},
        keep=params.keep_samples if seed == 0 else 0,  # the samples to read are seed 0's
        accelerator=accelerator,
    )
    if accelerator is not None and not accelerator.is_main_process:
        return
    target = Path(out) if out is not None else unit_dir(unit, seed, rm)
    target.mkdir(parents=True, exist_ok=True)
    curves.to_csv(target / "curves.csv", index=False)
    write_train_logs(
        logs,
        "rloo",
        path=target / "train_logs.csv",
        timings_path=unit_timings(unit, seed, rm) if out is None else target / "timings.csv",
    )
    samples.to_csv(target / "samples.csv", index=False)


def _read_unit_csv(path):
    """A unit's CSV exactly as written: floats round-trip, text stays text ("None", "")."""
    import pandas as pd

    return pd.read_csv(path, float_precision="round_trip", keep_default_na=False)


def run(params: RlooParams) -> RlooResult:
    """Join the units of every run of `run_specs` (in that order) into artifacts/rloo's curves,
    train_logs and samples (seed 0's runs keep some), and the stage's
    metrics."""
    import pandas as pd

    from rmteacher.core import paths
    from rmteacher.lm.world.prompts import World

    family = family_names() if params.family_seeds else []
    specs = run_specs(params, family)
    keys = list(dict.fromkeys(unit_key(s) for s in specs))
    missing = [unit_dir(*key) for key in keys if not (unit_dir(*key) / "samples.csv").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} run(s) missing, e.g. {missing[0]}: run `dvc repro rloo`"
        )
    parts = {name: [] for name in ("curves", "train_logs", "samples")}
    for key in keys:
        for name, frames in parts.items():
            frames.append(_read_unit_csv(unit_dir(*key) / f"{name}.csv"))
    curves = pd.concat(parts["curves"], ignore_index=True)
    logs = pd.concat(parts["train_logs"], ignore_index=True)
    samples = pd.concat(parts["samples"], ignore_index=True)  # seed 0's runs keep samples
    paths.RLOO.mkdir(parents=True, exist_ok=True)
    curves.to_csv(paths.curves("rloo"), index=False)
    logs.to_csv(paths.train_logs("rloo"), index=False)
    samples.to_csv(paths.RLOO_SAMPLES, index=False)
    _join_timings(keys)
    world = World.load()
    plan = training_plan(world, params, params.epochs)
    learning_rate = chosen_learning_rate(params)
    main = curves[curves.variant == "main"]
    final = (
        main[main.step == main.groupby(["rm", "seed"]).step.transform("max")]
        .groupby("rm")[["proxy_increase", "gold_increase", "kl"]]
        .mean()
    )
    metrics = {
        "runs": int(curves.groupby(["rm", "variant", "seed"]).ngroups),
        "learning_rate": learning_rate,
        "steps_per_epoch": float(plan.steps_per_epoch),
        "steps_main": int(plan.max_steps),
        "epochs": float(params.epochs),
        **{f"final_gold_increase_{rm}": float(v) for rm, v in final.gold_increase.items()},
        **{f"final_proxy_increase_{rm}": float(v) for rm, v in final.proxy_increase.items()},
        **{f"final_kl_{rm}": float(v) for rm, v in final.kl.items()},
    }
    return RlooResult(curves, logs, samples, metrics)


def _join_timings(keys) -> None:
    """artifacts/timings/rloo.csv from the units' timings, when every unit has one here (they
    are untracked: a `dvc checkout` brings back results without them)."""
    import pandas as pd

    from rmteacher.core import paths

    files = [unit_timings(*key) for key in keys]
    if all(f.is_file() for f in files):
        pd.concat([pd.read_csv(f) for f in files], ignore_index=True).to_csv(
            paths.timings("rloo"), index=False
        )
