"""Stage sec42_eval: every policy x reward model, on that policy's own samples, before any policy
gradient - the normalisation (global mean and std), reward variance, on-policy accuracy against
r_G (tie rule and untied), off-policy accuracy and the report's predicted teacher ranking - with
the same functions as `rmteacher report`, which the stage also runs once on examples/prompts.txt.
The manipulation checks (artifacts/sec42_eval/checks.csv): does some RM's reward variance differ
across policies by more than its sampling noise, and does the order of two RMs by variance flip
between two policies by more than twice the noise of each gap (Theorem 6's construction)? The
Section 4.1 policy's samples and scores are rm_eval's, reused."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rmteacher.core import paths
from rmteacher.core.hf import load_policy
from rmteacher.lm.analysis.sec42 import ordering_flips, sec42_checks
from rmteacher.lm.rm.evaluation import (
    load_eval_matrices,
    load_suite,
    reward_specs,
    save_reward_matrices,
    score_matrix,
)
from rmteacher.lm.rm.preferences import offpolicy_eval_pairs
from rmteacher.lm.rm.teacher import (
    PolicyReport,
    evaluate_rewards_on_policy,
    predicted_ranking,
    rm_rows,
)
from rmteacher.lm.rm.teacher_inputs import read_prompts
from rmteacher.lm.rm.training import read_manifest
from rmteacher.lm.world.policies import policy_path
from rmteacher.lm.world.prompts import World
from rmteacher.lm.world.sampling import sample_responses
from rmteacher.metrics.rm_metrics import reward_variance
from rmteacher.report import write_report
from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import check_reward_spec, load_reward
from rmteacher.stages.lm.params.sec42_eval import Sec42EvalParams

EXAMPLE_PROMPTS = "examples/prompts.txt"


@dataclass(frozen=True)
class Sec42EvalResult:
    """`table`: one row per policy x RM (gold rows included) with Table 1's columns, the variance's
    noise, the predicted rank and the gold tie fraction; `checks`: per RM, its variance across
    policies against its noise; `flips`: every flip of two RMs' variance order across two
    policies, with gaps and noise (strongest first); `manipulation`: the named manipulation
    checks (check, what, requirement, value, passed), also in artifacts/sec42_eval/checks.csv;
    `example`: the report of the example command; `example_command`: that command;
    `metrics`."""

    table: pd.DataFrame
    checks: pd.DataFrame
    flips: pd.DataFrame
    manipulation: pd.DataFrame
    example: PolicyReport
    example_command: str
    metrics: dict


def variance_noise(raw: np.ndarray, n_boot: int, seed: int) -> float:
    """Std of the reward variance when the prompts are resampled (the normalisation refitted)."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        sample = raw[rng.integers(0, len(raw), len(raw))]
        draws.append(reward_variance(Normalization.from_rewards(sample)(sample)))
    return float(np.std(draws))


def reusable_samples(prompts, n_samples: int, seed: int):
    """rm_eval's samples of the Section 4.1 policy on these prompts, if it drew them the same way
    (same seed and samples per prompt, as its artifacts/rm_eval/sampling.json records; prompts a
    prefix of its own), else None."""
    samples = paths.RM_EVAL / "samples.json"
    if not (samples.is_file() and paths.EVAL_SAMPLING.is_file()):
        return None
    drawn = json.loads(paths.EVAL_SAMPLING.read_text())
    if drawn != {"seed": seed, "n_samples": n_samples}:
        return None
    saved = json.loads(samples.read_text())
    if saved["prompts"][: len(prompts)] != list(prompts):
        return None
    return saved["responses"][: len(prompts)]


def run(params: Sec42EvalParams) -> Sec42EvalResult:
    """Evaluate every RM on every Section 4.2 policy (matrices and normalisations saved per policy
    under artifacts/sec42_eval/<policy>/), then the example report. The policies are those
    sec42_policies lists in its artifacts/sec42_policies/policies.json."""
    policies = json.loads(paths.POLICY_LIST.read_text())
    world = World.load()
    world.require("pg_train", params.n_prompts, "sec42_eval.n_prompts")
    manifest = read_manifest()
    suite = load_suite()
    specs = reward_specs([n for n in params.reward_models if n not in suite], manifest)
    for name, spec in specs.items():
        check_reward_spec(spec, f"sec42_eval.reward_models ({name})")  # before any compute
    rewards = {
        name: suite[name] if name in suite else load_reward(specs[name], name)
        for name in params.reward_models
    }
    rewards["gold"] = suite["gold"]
    off_prompts, off_responses, off_gold = offpolicy_eval_pairs(
        pd.read_json(paths.candidates("test"), lines=True)
    )
    offpolicy = {
        name: score_matrix(reward, off_prompts, off_responses)
        for name, reward in rewards.items()
        if not name.startswith("fam_")  # the family is defined on policy-gradient prompts only
    }
    prompts = world.prompt_texts("pg_train")[: params.n_prompts]
    tables, by_policy = [], {}
    for policy in policies:
        responses = (
            reusable_samples(prompts, params.n_samples, params.seed) if policy == "sft" else None
        )
        cached = {}
        if responses is None:
            model, tokenizer = load_policy(str(policy_path(policy)), f"policy '{policy}'")
            responses = sample_responses(
                model,
                tokenizer,
                prompts,
                params.n_samples,
                seed=params.seed,
                batch_size=512,
                desc=f"{policy} samples",
                **world.generation(),
            )
        else:
            saved = [n for n in rewards if paths.reward_matrix(n).is_file()]
            cached = {n: m[: len(prompts)] for n, m in load_eval_matrices(saved).items()}
        matrices = {
            name: cached[name] if name in cached else score_matrix(reward, prompts, responses)
            for name, reward in rewards.items()
        }
        by_policy[policy] = matrices
        table, norms = rm_rows(matrices, offpolicy, off_gold)
        ranked = predicted_ranking(table)
        noise = {
            name: variance_noise(matrix, params.n_bootstrap, params.seed)
            for name, matrix in matrices.items()
        }
        save_reward_matrices(matrices, norms, prompts, responses, paths.policy_eval(policy))
        ties = table.attrs["gold_tie_fraction"]
        tables.append(
            ranked.assign(
                policy=policy,
                gold_tie_fraction=ties,
                variance_noise=ranked.rm.map(noise),
                predictor=ranked.attrs["predictor"],
            )
        )
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(paths.POLICY_RM_EVAL, index=False)
    proxies = table[table.rm != "gold"]
    spread = proxies.groupby("rm").agg(
        lowest=("reward_variance", "min"),
        highest=("reward_variance", "max"),
        noise=("variance_noise", "max"),
    )
    checks = spread.assign(
        range=spread.highest - spread.lowest,
        differs=(spread.highest - spread.lowest) > 2 * spread.noise,
    ).reset_index()
    flips = ordering_flips(by_policy, params.n_bootstrap, params.seed)
    manipulation = sec42_checks(table, flips, params)
    manipulation.to_csv(paths.SEC42_EVAL / "checks.csv", index=False)
    flips.to_csv(paths.SEC42_EVAL / "flips.csv", index=False)

    example_policy = str(policy_path("sft"))
    example_specs = {
        n: s
        for n, s in reward_specs(params.reward_models, manifest).items()
        if n not in suite or n.startswith("rm_")
    }
    example = evaluate_rewards_on_policy(
        example_policy,
        example_specs,
        manifest["gold"],
        read_prompts(EXAMPLE_PROMPTS),
        params.n_samples,
        seed=params.seed,
        progress=False,
        **world.generation(),
    )
    write_report(example, paths.REPORT_EXAMPLE)
    command = " \\\n    ".join(  # one option per line, as a reader would type it
        [
            f"rmteacher report --policy {example_policy}",
            "--reward-model " + " ".join(f"{name}={spec}" for name, spec in example_specs.items()),
            f"--gold {manifest['gold']} --prompts {EXAMPLE_PROMPTS}",
            f"--samples {params.n_samples} --seed {params.seed}",
            f"--max-new-tokens {world.max_new_tokens} --out {paths.REPORT_EXAMPLE}",
        ]
    )
    metrics = {
        "n_policies": len(policies),
        "n_reward_models": len(params.reward_models),
        "rms_whose_variance_differs": int(checks.differs.sum()),
        "checks_passed": int(manipulation.passed.sum()),
        "checks_total": len(manipulation),
        **{f"check_{r.check}": bool(r.passed) for r in manipulation.itertuples()},
        **{f"check_{r.check}_value": float(r.value) for r in manipulation.itertuples()},
        "ordering_flips": int((flips.flip_strength >= params.check_flip_strength).sum()),
        **{
            f"{r.policy}_{r.rm}_{col}": float(getattr(r, col))
            for r in table.itertuples()
            for col in ("reward_variance", "onpolicy_accuracy", "onpolicy_accuracy_untied")
        },
        **{
            f"{p}_gold_tie_fraction": float(g.gold_tie_fraction.iloc[0])
            for p, g in table.groupby("policy")
        },
        **{
            f"{p}_predicted_best": str(g.sort_values("predicted_rank").rm.iloc[0])
            for p, g in proxies.groupby("policy")
        },
    }
    return Sec42EvalResult(table, checks, flips, manipulation, example, command, metrics)
