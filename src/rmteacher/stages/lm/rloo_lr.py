"""Stage rloo_lr: the learning rate of every Section 4.1 run, chosen on r_G alone (never per RM),
before any proxy is trained on. RLOO on r_G runs at each candidate rate; the rule, fixed here
before the run, picks the rate with the largest mean r_G increase at `epochs` among the rates
whose mean KL to the initial policy there stays at or below `max_kl` (a larger KL means the policy
has drifted far enough for r_G itself to be hacked)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rmteacher.core import paths
from rmteacher.lm.pg.ensemble import run_runs
from rmteacher.lm.pg.settings import run_config
from rmteacher.lm.pg.sweep import InitialPolicy, TrainingPlan
from rmteacher.lm.rm.evaluation import load_normalizations, load_suite
from rmteacher.lm.world.prompts import World
from rmteacher.stages.lm.params.rloo_lr import RlooLrParams

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LrResult:
    """`curves`: the runs' evaluation curves; `summary`: per rate, mean r_G increase and KL at
    `epochs` and whether it qualifies; `chosen`: the rate; `metrics`."""

    curves: pd.DataFrame
    summary: pd.DataFrame
    chosen: float
    metrics: dict


def choose(summary: pd.DataFrame, max_kl: float) -> float:
    """The rule: the largest mean r_G increase among rates with mean KL <= max_kl (if none
    qualifies, the smallest rate)."""
    allowed = summary[summary.kl <= max_kl]
    if allowed.empty:
        return float(summary.learning_rate.min())
    return float(allowed.loc[allowed.gold_increase.idxmax(), "learning_rate"])


def run(params: RlooLrParams) -> LrResult:
    """RLOO on r_G at every rate and seed, in the rest of Section 4.1's regime (the pg fields, the
    threads included); writes artifacts/rloo_lr/choice.json."""
    world = World.load()
    norms = load_normalizations()
    suite = load_suite()
    policy = InitialPolicy.load("sft", world.policy_dir, world.generation())
    plan = TrainingPlan.for_settings(world.prompt_texts("pg_train"), params, params.epochs)
    base = run_config(params, world.generation(), learning_rate=params.learning_rates[0])
    runs = [
        {
            "rm": "gold",
            "proxy": suite["gold"],
            "norm": norms["gold"],
            "cfg": replace(base, learning_rate=lr, seed=seed),
            "tags": {"learning_rate": lr},
        }
        for lr in params.learning_rates
        for seed in params.seeds
    ]
    curves, _, _ = run_runs(
        policy, plan, runs, suite["gold"], norms["gold"], threads=params.threads
    )  # one ensemble of every rate and seed (GPT-2 in one process), else the solo loop
    last = curves[curves.step == curves.step.max()]  # every run ends at `epochs`
    summary = last.groupby("learning_rate")[["gold_increase", "kl"]].mean().reset_index()
    summary["qualifies"] = summary.kl <= params.max_kl
    chosen = choose(summary, params.max_kl)
    paths.RLOO_LR.mkdir(parents=True, exist_ok=True)
    paths.LR_CHOICE.write_text(json.dumps({"learning_rate": chosen}) + "\n")
    metrics = {
        "chosen_learning_rate": chosen,
        "runs": len(runs),
        "threads": int(params.threads),
        **{
            f"lr{row.learning_rate:g}_gold_increase": float(row.gold_increase)
            for row in summary.itertuples()
        },
        **{f"lr{row.learning_rate:g}_kl": float(row.kl) for row in summary.itertuples()},
    }
    return LrResult(curves, summary, chosen, metrics)
