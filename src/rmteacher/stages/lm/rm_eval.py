"""Stage rm_eval (paper Table 1 and the manipulation checks): every RM - the five mixes, the
perfect-accuracy controls, the controlled family and r_G - measured on the same initial-policy
samples before any policy gradient: reward variance, on- and off-policy accuracy (tie rule and
untied), held-out accuracy on each mix's own training distribution, the normalisation constants
RLOO uses, and whether the independent variables really vary (each check computed against a
threshold fixed in the parameters)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rmteacher.core import paths
from rmteacher.core.hf import load_policy
from rmteacher.lm.analysis.checks import family_table, manipulation_checks
from rmteacher.lm.rm.evaluation import (
    build_suite,
    rm_table,
    save_reward_matrices,
    save_suite_spec,
    score_matrix,
    suite_spec,
)
from rmteacher.lm.rm.preferences import heldout_pairs
from rmteacher.lm.rm.suite import Memo
from rmteacher.lm.rm.training import read_manifest
from rmteacher.lm.world.prompts import World
from rmteacher.lm.world.sampling import sample_responses
from rmteacher.metrics.rm_metrics import untied_accuracy
from rmteacher.paper import table1_frame
from rmteacher.rewards.registry import load_reward
from rmteacher.stages.lm.params.rm_eval import RmEvalParams


@dataclass(frozen=True)
class RmEvalResult:
    """`table`: Table 1, one row per RM (every column); `paper`: the mixes and controls beside
    the paper's Table 1; `checks`: the manipulation checks (what, requirement, value, passed);
    `family`: the controlled family's variance and accuracy; `tried`: the Section 4.1 world
    designs searched before this one (data/design_search/sec41.csv), judged by this stage's
    thresholds; `metrics`."""

    table: pd.DataFrame
    paper: pd.DataFrame
    checks: pd.DataFrame
    family: pd.DataFrame
    tried: pd.DataFrame
    metrics: dict


DESIGN_RECORD = "data/design_search/sec41.csv"


def designs_tried(params: RmEvalParams, path: str = DESIGN_RECORD) -> pd.DataFrame:
    """The design-search record (scripts/design_search.py: one row per design tried, with its
    reason and check numbers at search scale), each design's mix checks judged by this stage's
    thresholds (`passes`: all four), an empty frame if there is no record."""
    if not Path(path).is_file():
        return pd.DataFrame()
    tried = pd.read_csv(path)
    low, high = params.check_gold_variance
    judged = {
        "span_ok": tried.variance_span >= params.check_variance_span,
        "trend_ok": tried.offpolicy_trend >= params.check_offpolicy_trend,
        "accuracy_ok": tried.min_onpolicy_accuracy_untied >= params.check_onpolicy_accuracy,
        "gold_ok": tried.gold_variance.between(low, high)
        & (tried.gold_ties <= params.check_gold_ties),
    }
    tried = tried.assign(**judged)
    return tried.assign(passes=tried[list(judged)].all(axis=1))


def heldout_scores(reward, candidates, kind: str):
    """(RM scores [M, 2], r_G [M, 2]) of the held-out test pairs of one kind ('on' or 'off')."""
    prompts, responses, gold = heldout_pairs(candidates, kind)
    return score_matrix(reward, prompts, responses), gold


def run(params: RmEvalParams) -> RmEvalResult:
    """Sample the initial policy on every policy-gradient prompt, build the suite (controls and
    family need r_G's per-prompt statistics on these samples), score everything, and save the
    reward matrices, normalisations, suite and Table 1 under artifacts/rm_eval."""
    world = World.load()
    world.require("pg_train", params.n_prompts, "rm_eval.n_prompts")
    manifest = read_manifest()
    gold = Memo(load_reward(manifest["gold"], "gold"))
    policy, tokenizer = load_policy(world.policy_dir, "initial policy")
    prompts = world.prompt_texts("pg_train")[: params.n_prompts]
    responses = sample_responses(
        policy,
        tokenizer,
        prompts,
        params.n_samples,
        seed=params.seed,
        desc="initial-policy samples",
        batch_size=512,
        **world.generation(),
    )
    del policy
    spec = suite_spec(world, params, score_matrix(gold, prompts, responses), prompts)
    suite = build_suite(spec, manifest, gold)
    matrices = {name: score_matrix(reward, prompts, responses) for name, reward in suite.items()}
    test = pd.read_json(paths.candidates("test"), lines=True)
    on_policy_rms = [rm["name"] for rm in manifest["rms"]] + [
        "perfect",
        "perfect_unshifted",
        "gold",
    ]
    heldout = {
        kind: {name: heldout_scores(suite[name], test, kind) for name in on_policy_rms}
        for kind in ("on", "off")
    }
    table, norms = rm_table(matrices, heldout["off"])
    for kind in ("on", "off"):
        accuracies = {name: untied_accuracy(*pair) for name, pair in heldout[kind].items()}
        table[f"heldout_{kind}_accuracy_untied"] = table.rm.map(accuracies)
    fractions = {rm["name"]: rm["onpolicy_fraction"] for rm in manifest["rms"]}
    table["onpolicy_fraction"] = table.rm.map(fractions)
    table["own_distribution_accuracy_untied"] = (
        table.onpolicy_fraction * table.heldout_on_accuracy_untied
        + (1 - table.onpolicy_fraction) * table.heldout_off_accuracy_untied
    )
    save_reward_matrices(matrices, norms, prompts, responses, paths.RM_EVAL)
    save_suite_spec(spec)
    sampling = {"seed": params.seed, "n_samples": params.n_samples}  # for sec42_eval's reuse
    paths.EVAL_SAMPLING.write_text(json.dumps(sampling) + "\n")
    table.to_csv(paths.RM_TABLE, index=False)
    core = [
        "rm",
        "reward_variance",
        "onpolicy_accuracy",
        "onpolicy_accuracy_untied",
        "offpolicy_accuracy",
        "offpolicy_accuracy_untied",
    ]
    shown = table[~table.rm.str.startswith("fam_")]
    paths.METRICS.mkdir(exist_ok=True)
    shown[core].to_csv(paths.RM_TABLE_METRICS, index=False, float_format="%.6f")
    paper = shown[core].merge(table1_frame(), on="rm", how="left")
    family = family_table(table, spec["family"])
    checks = manipulation_checks(table, manifest, params, family)
    checks.to_csv(paths.CHECKS, index=False)
    by_rm = table.set_index("rm")
    metrics = {
        "gold_tie_fraction_onpolicy": table.attrs["gold_tie_fraction"],
        "n_eval_prompts": len(prompts),
        "n_samples": params.n_samples,
        "n_family": len(spec["family"]),
        "checks_passed": int(checks.passed.sum()),
        "checks_total": len(checks),
        **{f"check_{r.check}": bool(r.passed) for r in checks.itertuples()},
        **{f"check_{r.check}_value": float(r.value) for r in checks.itertuples()},
        **{
            f"{rm}_{col}": float(by_rm.loc[rm, col])
            for rm in shown.rm
            for col in core[1:] + ["heldout_on_accuracy_untied"]
            if np.isfinite(by_rm.loc[rm, col])
        },
    }
    tried = designs_tried(params)
    metrics["designs_tried"] = len(tried)
    metrics["designs_passing"] = int(tried.passes.sum()) if len(tried) else 0
    return RmEvalResult(table, paper, checks, family, tried, metrics)
