"""Stage sec42_pg: policy gradient from every initial policy on every reward model, each RM
normalised on the policy it trains (sec42_eval's constants), in Section 4.1's regime (its
learning rate, batch, k, KL weight and clipping): RLOO as in the paper, and as labelled variants
GRPO without reward scaling and GRPO with trl's per-group std scaling.

The runs are DVC-cached units, one per seed: the matrix stage sec42_pg_rloo trains one RLOO
seed of every policy and RM, sec42_pg_grpo one seed of the GRPO variants, through `rmteacher
pg-run sec42_pg UNIT --seed S` (`run_unit`); each policy's runs of a unit train as one ensemble
(`lm.pg.ensemble.run_runs`; the solo loop for other model families or a GPU). The sec42_pg stage
itself trains nothing: `run` joins the units. Adding a seed runs only that seed's unit; changing
the RMs reruns every unit (a member's numbers do not depend on its co-members, so the runs that
stay are recomputed to the same values)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from rmteacher.core import paths
from rmteacher.core.params import ParamsError
from rmteacher.lm.pg.ensemble import run_runs
from rmteacher.lm.pg.settings import PgRunConfig, run_config
from rmteacher.lm.pg.sweep import (
    VARIANTS,
    InitialPolicy,
    TrainingPlan,
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

UNITS = ("rloo", "grpo")  # the matrix stages sec42_pg_<unit>, one unit per seed
RUNS = paths.ARTIFACTS / "sec42_pg_runs"  # one folder per cached unit


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
    if not paths.POLICY_RM_EVAL.is_file():
        raise FileNotFoundError(f"{paths.POLICY_RM_EVAL} missing: run the sec42_eval stage first")
    table = pd.read_csv(paths.POLICY_RM_EVAL)
    return list(dict.fromkeys(table.policy)), set(table.rm)


def run_specs(params: Sec42PgParams, policies: list[str]) -> list[dict]:
    """Every run as {unit, policy, variant, seed, rm}, in the order the stage joins them (per
    policy, variant, seed, RM): RLOO with `seeds` (unit 'rloo'), the GRPO variants with
    `grpo_seeds` (unit 'grpo')."""
    specs = []
    for policy in policies:
        for variant in params.variants:
            grpo = VARIANTS[variant]["algorithm"] == "grpo"
            for seed in params.grpo_seeds if grpo else params.seeds:
                specs += [
                    {
                        "unit": "grpo" if grpo else "rloo",
                        "policy": policy,
                        "variant": variant,
                        "seed": seed,
                        "rm": rm,
                    }
                    for rm in params.reward_models
                ]
    return specs


def unit_dir(unit: str, seed: int) -> Path:
    """artifacts/sec42_pg_runs/<unit>/seed_<seed>, as dvc.yaml's matrix stages declare them."""
    return RUNS / unit / f"seed_{seed}"


def unit_timings(unit: str, seed: int) -> Path:
    """Untracked artifacts/timings/sec42_pg_runs/<unit>-seed_<seed>.csv."""
    return paths.timings(f"sec42_pg_runs/{unit}-seed_{seed}")


def unit_specs(
    params: Sec42PgParams, unit: str, seed: int, rms: list[str] | None = None
) -> list[dict]:
    """The runs of one cached unit (only those on `rms` when given: a trial run); ParamsError
    when params.yaml plans no such unit or names an RM sec42_eval did not evaluate."""
    if unit not in UNITS:
        raise ParamsError(f"sec42_pg: unknown unit '{unit}'; units: {', '.join(UNITS)}")
    policies, evaluated_rms = evaluated()
    missing = [rm for rm in params.reward_models if rm not in evaluated_rms]
    if missing:
        raise ParamsError(
            f"sec42_pg.reward_models: {', '.join(missing)} not evaluated by sec42_eval "
            "(sec42_eval.reward_models)"
        )
    specs = [s for s in run_specs(params, policies) if (s["unit"], s["seed"]) == (unit, seed)]
    if not specs:
        raise ParamsError(f"sec42_pg: params.yaml plans no {unit} unit with seed {seed}")
    if rms:
        unknown = [rm for rm in rms if rm not in params.reward_models]
        if unknown:
            raise ParamsError(f"sec42_pg: no run of the {unit} unit is on {', '.join(unknown)}")
        specs = [s for s in specs if s["rm"] in rms]
    return specs


@dataclass(frozen=True)
class UnitSetup:
    """What the runs of one unit train with: the `plan` they share, one (policy, rm, variant,
    loop configuration) per run and the torch threads of the process."""

    plan: TrainingPlan
    runs: tuple[tuple[str, str, str, PgRunConfig], ...]
    threads: int


def unit_setup(
    params: Sec42PgParams, specs: list[dict], train_prompts, generation: dict
) -> UnitSetup:
    """The `UnitSetup` of a unit's runs: the first `n_train_prompts` prompts, Section 4.1's
    settings (GRPO at `grpo_beta`). Only the params it reads are the unit's params in dvc.yaml
    (tests/test_architecture.py perturbs each key and compares)."""
    prompts = list(train_prompts)[: params.n_train_prompts]
    plan = TrainingPlan.for_settings(prompts, params, params.epochs, params.evals_per_epoch)
    base = run_config(params, generation)  # pg.learning_rate, or rloo_lr's choice
    runs = []
    for spec in specs:
        settings = VARIANTS[spec["variant"]]
        beta = params.grpo_beta if settings["algorithm"] == "grpo" else params.beta
        cfg = replace(base, seed=spec["seed"], beta=beta, **settings)
        runs.append((spec["policy"], spec["rm"], spec["variant"], cfg))
    return UnitSetup(plan, tuple(runs), params.threads)


def run_unit(
    params: Sec42PgParams,
    unit: str,
    seed: int,
    rms: list[str] | None = None,
    accelerator=None,
    out=None,
) -> None:
    """Train the runs of one cached unit, each policy's as one ensemble where it can (`run_runs`),
    and write their curves with increases and logs to `out` (default `unit_dir`). `rms`: only the
    runs on these RMs (a trial run, with `out`). Runs in one process (`accelerator` must be
    None: Section 4.2 has no data-parallel setting)."""
    if rms and out is None:
        raise ParamsError("sec42_pg: a unit's DVC output holds all its runs; train some with --out")
    if accelerator is not None:
        raise ParamsError("sec42_pg: units run in one process")
    specs = unit_specs(params, unit, seed, rms)
    world = World.load()
    world.require("pg_train", params.n_train_prompts, "sec42_pg.n_train_prompts")
    names = list(dict.fromkeys(s["rm"] for s in specs))
    suite = load_suite()
    from_specs = reward_specs([n for n in names if n not in suite], read_manifest())
    rewards = {n: suite[n] if n in suite else load_reward(from_specs[n], n) for n in names}
    setup = unit_setup(params, specs, world.prompt_texts("pg_train"), world.generation())
    curves, logs = [], []
    for policy in dict.fromkeys(p for p, *_ in setup.runs):
        norms = load_policy_normalizations(policy)
        initial = InitialPolicy.load(policy, str(policy_path(policy)), world.generation())
        runs = [
            {
                "rm": rm,
                "proxy": rewards[rm],
                "norm": norms[rm],
                "cfg": cfg,
                "tags": {"variant": variant},
            }
            for name, rm, variant, cfg in setup.runs
            if name == policy
        ]
        curve, log, _ = run_runs(
            initial, setup.plan, runs, suite["gold"], norms["gold"], threads=setup.threads
        )
        curves.append(curve)
        logs.append(log)
    target = Path(out) if out is not None else unit_dir(unit, seed)
    target.mkdir(parents=True, exist_ok=True)
    pd.concat(curves, ignore_index=True).to_csv(target / "curves.csv", index=False)
    write_train_logs(
        pd.concat(logs, ignore_index=True),
        "sec42_pg",
        path=target / "train_logs.csv",
        timings_path=unit_timings(unit, seed) if out is None else target / "timings.csv",
    )


def _read_unit_csv(path) -> pd.DataFrame:
    """A unit's CSV exactly as written: floats round-trip, text stays text."""
    return pd.read_csv(path, float_precision="round_trip", keep_default_na=False)


def in_run_order(frame: pd.DataFrame, specs: list[dict]) -> pd.DataFrame:
    """`frame`'s rows grouped by run in the order of `specs`, each run's rows in their order."""
    keys = ("policy", "variant", "seed", "rm")
    order = {tuple(s[k] for k in keys): i for i, s in enumerate(specs)}
    rank = [order[key] for key in zip(*(frame[k] for k in keys), strict=True)]
    return frame.iloc[pd.Series(rank).argsort(kind="stable").to_numpy()].reset_index(drop=True)


def run(params: Sec42PgParams) -> Sec42PgResult:
    """Join the units of every run of `run_specs` into artifacts/sec42_pg's curves and logs, and
    the stage's metrics."""
    policies, _ = evaluated()
    specs = run_specs(params, policies)
    keys = list(dict.fromkeys((s["unit"], s["seed"]) for s in specs))
    missing = [unit_dir(*key) for key in keys if not (unit_dir(*key) / "curves.csv").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} unit(s) missing, e.g. {missing[0]}: run `dvc repro sec42_pg`"
        )
    curves = in_run_order(
        pd.concat([_read_unit_csv(unit_dir(*k) / "curves.csv") for k in keys]), specs
    )
    logs = in_run_order(
        pd.concat([_read_unit_csv(unit_dir(*k) / "train_logs.csv") for k in keys]), specs
    )
    paths.SEC42_PG.mkdir(parents=True, exist_ok=True)
    curves.to_csv(paths.curves("sec42_pg"), index=False)
    logs.to_csv(paths.train_logs("sec42_pg"), index=False)
    timings = [unit_timings(*key) for key in keys]
    if all(f.is_file() for f in timings):  # untracked: a `dvc checkout` brings none back
        joined = pd.concat([pd.read_csv(f) for f in timings], ignore_index=True)
        in_run_order(joined, specs).to_csv(paths.timings("sec42_pg"), index=False)
    last = curves[curves.step == curves.step.max()]
    metrics = {
        "runs": int(curves.groupby(["policy", "variant", "rm", "seed"]).ngroups),
        "units": len(keys),
        "threads": int(params.threads),
        "steps_per_run": int(curves.step.max()),
        "epochs": float(curves.epoch.max()),
        **{
            f"{v}_mean_gold_increase": float(g.gold_increase.mean())
            for v, g in last.groupby("variant")
        },
    }
    return Sec42PgResult(curves, logs, metrics)
