"""Section 4.2: policy gradient from several initial policies on several off-the-shelf reward
models, each RM normalised with constants measured on the policy it trains (as in the paper,
whose normalisation is per language model)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rmteacher.lm.pg_sweep import InitialPolicy, TrainingPlan, tracked_run
from rmteacher.lm.policies import policy_path
from rmteacher.lm.policy_gradient import PgRunConfig
from rmteacher.rewards.normalize import Normalization

SEC42_EVAL_DIR = Path("artifacts/sec42_eval")
# How each policy-gradient variant maps onto the trl trainers (GRPO's reward scaling is always
# chosen explicitly: "group" divides out the very per-prompt scale the paper studies).
VARIANTS = {
    "rloo": {"algorithm": "rloo"},
    "grpo": {"algorithm": "grpo", "scale_rewards": "none"},
    "grpo_group": {"algorithm": "grpo", "scale_rewards": "group"},
}


def reward_specs(names, manifest: dict) -> dict[str, str]:
    """The reward spec of each RM name: a Section 4.1 RM's name maps to its directory (from
    rm_train's manifest); anything else (scorer name, path, Hub id) is its own spec."""
    trained = {rm["name"]: rm["path"] for rm in manifest["rms"]}
    return {name: trained.get(name, name) for name in names}


def policy_eval_dir(policy: str) -> Path:
    return SEC42_EVAL_DIR / policy


def load_policy_normalizations(policy: str) -> dict[str, Normalization]:
    """The per-RM normalisations that sec42_eval measured on `policy`'s own samples."""
    path = policy_eval_dir(policy) / "normalization.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the sec42_eval stage first")
    return {k: Normalization(**v) for k, v in json.loads(path.read_text()).items()}


def variant_config(variant: str, params, seed: int, generation: dict) -> PgRunConfig:
    """The run settings of one variant ('rloo', 'grpo' or 'grpo_group') from Sec42PgParams."""
    settings = VARIANTS[variant]
    beta = params.beta if settings["algorithm"] == "rloo" else params.grpo_beta
    return PgRunConfig(
        num_generations=params.num_generations,
        prompts_per_step=params.prompts_per_step,
        beta=beta,
        learning_rate=params.learning_rate,
        seed=seed,
        **settings,
        **generation,
    )


def sweep_policies(params, policies, world, rewards: dict, gold, norms: dict):
    """(curves with increases, per-step logs) for every policy x variant x seed x RM.
    `norms[policy][rm]` normalises RM `rm` (and 'gold') on that policy's samples."""
    from rmteacher.lm.pg_sweep import increases

    prompts = world.prompt_texts("pg_train")[: params.n_train_prompts]
    plan = TrainingPlan.for_params(prompts, params)
    curves, logs = [], []
    for policy in policies:
        initial = InitialPolicy.load(policy, str(policy_path(policy)), world.generation())
        for variant in params.variants:
            for seed in params.seeds:
                for rm, proxy in rewards.items():
                    cfg = variant_config(variant, params, seed, world.generation())
                    curve, log = tracked_run(
                        initial,
                        plan,
                        rm,
                        proxy,
                        norms[policy][rm],
                        gold,
                        norms[policy]["gold"],
                        cfg,
                        tags={"variant": variant},
                    )
                    curves.append(curve)
                    logs.append(log)
    return increases(pd.concat(curves, ignore_index=True)), pd.concat(logs, ignore_index=True)
