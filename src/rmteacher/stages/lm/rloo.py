"""Stage rloo: RLOO (k samples per prompt, leave-one-out baseline, KL weight beta inside the
reward; `rmteacher.lm.pg.loop`) from the same initial policy on every RM of Section 4.1, each
reward normalised with the constants rm_eval measured, at the learning rate rloo_lr chose on r_G.

The runs are DVC-cached units, one per seed and group, each trained as one ensemble
(`lm.pg.ensemble.run_runs`; the solo loop for other model families, data parallel or GPU): the
matrix stage rloo_main runs one seed of every mix and control and of the beta = 0 runs,
rloo_family one seed of every controlled-family member (rm_eval defines them together),
rloo_noclip one seed of the ablation without clipping, all through `rmteacher pg-run rloo UNIT
--seed S` (`run_unit`), with `accelerate launch` when `pg.num_processes` > 1. The rloo stage
itself trains nothing: `run` joins the units' curves, logs and samples. Adding a seed to these
params runs only that seed's units; changing a group's list of RMs reruns every unit of that
group (a member's numbers do not depend on its co-members, so the runs that stay are recomputed
to the same values); what they all read (rm_eval's normalisations of every RM, the learning rate,
the initial policy) reruns them all.

Runs: the five mixes and the controls (r_G, the perfect RM with and without the shift) with
`seeds`; the perfect RM at beta = 0 with `seeds`; every member of rm_eval's controlled family with
`family_seeds` for `family_epochs`; and the ablation without gradient clipping (`noclip_rms`,
`noclip_seeds`, `noclip_epochs`). Every run is evaluated at the same points on the same prompts,
with the VADER sentiment of prompt + response beside r_G as a check that r_G is not being hacked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from rmteacher.core import paths
from rmteacher.core.params import ParamsError
from rmteacher.lm.pg.ensemble import run_runs
from rmteacher.lm.pg.settings import PgRunConfig, chosen_learning_rate, run_config
from rmteacher.lm.pg.sweep import (
    InitialPolicy,
    TrainingPlan,
    check_rms,
    write_train_logs,
)
from rmteacher.lm.rm.evaluation import load_normalizations, load_suite, suite_definition
from rmteacher.lm.rm.gold import vader_passage
from rmteacher.lm.rm.suite import FamilyMember
from rmteacher.lm.world.prompts import World
from rmteacher.stages.lm.params.rloo import RlooParams


@dataclass(frozen=True)
class RlooResult:
    """`curves`: one row per run and evaluation point (normalised proxy and r_G reward, their
    increases since step 0, KL to the initial policy, VADER of prompt + response); `logs`: the
    loop's per-step logs; `samples`: a few kept samples per evaluation (seed 0); `metrics`."""

    curves: pd.DataFrame
    logs: pd.DataFrame
    samples: pd.DataFrame
    metrics: dict


UNITS = ("main", "family", "noclip")  # the matrix stages rloo_<unit>, one unit per seed


def run_specs(params: RlooParams, family: list[str]) -> list[dict]:
    """Every run as {unit, rm, variant, seed, epochs, beta, clip}, in the order the stage joins
    them: variant 'main' (mixes and controls; the family's runs, unit 'family', are 'main' too),
    'beta0' (trained in the main units: same seeds and length) and 'noclip'."""
    specs = [
        {"unit": "main", "rm": rm, "variant": "main", "seed": seed, "epochs": params.epochs}
        for seed in params.seeds
        for rm in params.rms
    ]
    specs += [
        {
            "unit": "main",
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


def unit_key(spec: dict) -> tuple[str, int]:
    """(unit, seed) of the cached unit a run belongs to."""
    return spec["unit"], spec["seed"]


def unit_dir(unit: str, seed: int):
    """artifacts/rloo_runs/<unit>/seed_<seed>, as dvc.yaml's matrix stages declare them."""
    return paths.RLOO_RUNS / unit / f"seed_{seed}"


def unit_timings(unit: str, seed: int):
    """Untracked artifacts/timings/rloo_runs/<unit>-seed_<seed>.csv."""
    return paths.timings(f"rloo_runs/{unit}-seed_{seed}")


def family_names() -> list[str]:
    """The controlled family's members, as rm_eval defined them (no model is loaded)."""
    return [FamilyMember(**fields).name for fields in suite_definition()["family"]]


def unit_specs(
    params: RlooParams, unit: str, seed: int, rms: tuple[str, ...] | None = None
) -> list[dict]:
    """The runs of one cached unit (only those on `rms` when given: a trial run of some of them);
    ParamsError when params.yaml plans no such unit (the matrix stages and params.yaml
    disagree, or a hand-typed command names a run that is not planned)."""
    if unit not in UNITS:
        raise ParamsError(f"rloo: unknown unit '{unit}'; units: {', '.join(UNITS)}")
    family = family_names() if unit == "family" else []
    specs = [s for s in run_specs(params, family) if unit_key(s) == (unit, seed)]
    if not specs:
        raise ParamsError(f"rloo: params.yaml plans no {unit} unit with seed {seed}")
    if rms:
        unknown = [rm for rm in rms if rm not in {s["rm"] for s in specs}]
        if unknown:
            raise ParamsError(
                f"rloo: the {unit} unit with seed {seed} trains no run on {', '.join(unknown)}"
            )
        specs = [s for s in specs if s["rm"] in rms]
    return specs


@dataclass(frozen=True)
class UnitSetup:
    """What the runs of one unit train with: their shared `plan` (a unit's runs share their
    length), one (rm, variant, loop configuration) per run (beta = 0 and no clipping where the
    run says so), the samples kept per evaluation (the samples to read are seed 0's) and the
    torch threads of the process."""

    plan: TrainingPlan
    runs: tuple[tuple[str, str, PgRunConfig], ...]
    keep: int
    threads: int


def unit_setup(params: RlooParams, specs: list[dict], train_prompts, generation: dict) -> UnitSetup:
    """The `UnitSetup` of a unit's runs. Only the params it reads, and `num_processes` (how the
    unit is launched), are the unit's params in dvc.yaml (tests/test_architecture.py perturbs
    each key and compares)."""
    base = run_config(params, generation)  # pg.learning_rate, or rloo_lr's choice when null
    runs = tuple(
        (
            spec["rm"],
            spec["variant"],
            replace(
                base,
                seed=spec["seed"],
                beta=spec.get("beta", params.beta),
                max_grad_norm=spec.get("clip", params.max_grad_norm),
            ),
        )
        for spec in specs
    )
    evals = params.noclip_evals_per_epoch if specs[0]["unit"] == "noclip" else None
    plan = TrainingPlan.for_settings(train_prompts, params, specs[0]["epochs"], evals)
    keep = params.keep_samples if specs[0]["seed"] == 0 else 0
    return UnitSetup(plan, runs, keep, params.threads)


def run_unit(
    params: RlooParams,
    unit: str,
    seed: int,
    rms: tuple[str, ...] | None = None,
    accelerator=None,
    out=None,
):
    """Train the runs of one cached unit (`run_runs`: as one ensemble where it can, else the solo
    loop, whose runs of one seed share the untrained policy's evaluation) and write their
    curves with increases, logs and kept samples to `out` (default `unit_dir`; the main process
    only, when data parallel). `rms`: only the runs on these RMs (a trial run, with `out`)."""
    if rms and out is None:
        raise ParamsError("rloo: a unit's DVC output holds all its runs; train some with --out")
    specs = unit_specs(params, unit, seed, rms)
    world = World.load()
    norms = load_normalizations()
    check_rms(sorted({s["rm"] for s in specs}), list(norms))  # before loading or training
    suite = load_suite(mixes={s["rm"] for s in specs})
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    setup = unit_setup(params, specs, world.prompt_texts("pg_train"), world.generation())
    runs = [
        {
            "rm": rm,
            "proxy": suite[rm],
            "norm": norms[rm],
            "cfg": cfg,
            "tags": {"variant": variant},
        }
        for rm, variant, cfg in setup.runs
    ]
    curves, logs, samples = run_runs(
        policy,
        setup.plan,
        runs,
        suite["gold"],
        norms["gold"],
        accelerator=accelerator,
        extras={"vader": vader_passage},
        keep=setup.keep,
        threads=setup.threads,
    )
    if accelerator is not None and not accelerator.is_main_process:
        return
    target = Path(out) if out is not None else unit_dir(unit, seed)
    target.mkdir(parents=True, exist_ok=True)
    curves.to_csv(target / "curves.csv", index=False)
    write_train_logs(
        logs,
        "rloo",
        path=target / "train_logs.csv",
        timings_path=unit_timings(unit, seed) if out is None else target / "timings.csv",
    )
    samples.to_csv(target / "samples.csv", index=False)


def _read_unit_csv(path):
    """A unit's CSV exactly as written: floats round-trip, text stays text ("None", "")."""
    return pd.read_csv(path, float_precision="round_trip", keep_default_na=False)


def run(params: RlooParams) -> RlooResult:
    """Join the units of every run of `run_specs` (in that order) into artifacts/rloo's curves,
    train_logs and samples (seed 0's runs keep some), and the stage's
    metrics."""
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
    curves, logs, samples = (
        in_run_order(pd.concat(frames, ignore_index=True), specs) for frames in parts.values()
    )  # seed 0's runs keep samples
    paths.RLOO.mkdir(parents=True, exist_ok=True)
    curves.to_csv(paths.curves("rloo"), index=False)
    logs.to_csv(paths.train_logs("rloo"), index=False)
    samples.to_csv(paths.RLOO_SAMPLES, index=False)
    _join_timings(keys, specs)
    world = World.load()
    plan = TrainingPlan.for_settings(world.prompt_texts("pg_train"), params, params.epochs)
    learning_rate = chosen_learning_rate(params.learning_rate)
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
        "units": len(keys),
        "threads": int(params.threads),
        **{f"final_gold_increase_{rm}": float(v) for rm, v in final.gold_increase.items()},
        **{f"final_proxy_increase_{rm}": float(v) for rm, v in final.proxy_increase.items()},
        **{f"final_kl_{rm}": float(v) for rm, v in final.kl.items()},
    }
    return RlooResult(curves, logs, samples, metrics)


def in_run_order(frame: pd.DataFrame, specs: list[dict]) -> pd.DataFrame:
    """`frame`'s rows grouped by run in the order of `specs` (variant, rm, seed), each run's
    rows in their own order: the join's order whatever the units' grouping."""
    order = {(s["variant"], s["rm"], s["seed"]): i for i, s in enumerate(specs)}
    rank = [order[key] for key in zip(frame.variant, frame.rm, frame.seed, strict=True)]
    return frame.iloc[pd.Series(rank).argsort(kind="stable").to_numpy()].reset_index(drop=True)


def _join_timings(keys, specs) -> None:
    """artifacts/timings/rloo.csv from the units' timings, when every unit has one here (they
    are untracked: a `dvc checkout` brings back results without them)."""
    files = [unit_timings(*key) for key in keys]
    if all(f.is_file() for f in files):
        joined = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
        in_run_order(joined, specs).to_csv(paths.timings("rloo"), index=False)
