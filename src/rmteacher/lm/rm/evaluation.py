"""Reward models measured on a policy's own samples (paper Table 1): every RM's reward variance
and on-/off-policy accuracy, the normalisation constants (fixed from initial-policy samples) that
policy gradient uses, and reading back what rm_eval and sec42_eval saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rmteacher.core import paths
from rmteacher.lm.rm.training import read_manifest
from rmteacher.metrics.rm_metrics import (
    accuracy,
    gold_tie_fraction,
    onpolicy_properties,
    untied_accuracy,
)
from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import PromptScaledReward, Reward, load_reward

# Column order of Table 1 (metrics/rm_table.csv keeps the first four).
TABLE1_COLUMNS = [
    "rm",
    "reward_variance",
    "onpolicy_accuracy",
    "offpolicy_accuracy",
    "onpolicy_accuracy_untied",
    "offpolicy_accuracy_untied",
    "raw_mean",
    "raw_std",
    "raw_per_prompt_variance",
]


def scaled_prompts(world, fraction: float, seed: int) -> list[str]:
    """The policy-gradient prompts whose r_G the perfect-accuracy RM scales down (seeded)."""
    prompts = world.prompt_texts("pg_train")
    order = np.random.default_rng(seed).permutation(len(prompts))
    return [prompts[i] for i in order[: int(len(prompts) * fraction)]]


def reward_suite(
    perfect_prompts: list[str], perfect_factor: float, perfect_shift: float = 0.0
) -> dict[str, object]:
    """{name: reward} for the trained proxies (manifest order), 'perfect' and 'gold'."""
    manifest = read_manifest()
    suite = {rm["name"]: load_reward(rm["path"], rm["name"]) for rm in manifest["rms"]}
    gold = load_reward(manifest["gold"], "gold")
    suite["perfect"] = PromptScaledReward(gold, set(perfect_prompts), perfect_factor, perfect_shift)
    suite["gold"] = gold
    return suite


def score_matrix(reward, prompts: list[str], responses: list[list[str]]) -> np.ndarray:
    """[P, n] rewards of responses[p][i]."""
    if isinstance(reward, Reward):
        return reward.matrix(prompts, responses)
    n = len(responses[0])
    flat_p = [p for p in prompts for _ in range(n)]
    return np.asarray(reward(flat_p, [r for rs in responses for r in rs])).reshape(len(prompts), n)


def rm_table(suite: dict, prompts, responses, off_prompts, off_responses, off_gold):
    """(Table 1 as a DataFrame, raw reward matrices, normalisations) for every RM in `suite`."""
    matrices = {name: score_matrix(r, prompts, responses) for name, r in suite.items()}
    gold = matrices["gold"]
    rows, norms = [], {}
    for name, raw in matrices.items():
        norm = Normalization.from_rewards(raw)
        norms[name] = norm
        off = score_matrix(suite[name], off_prompts, off_responses)
        rows.append(
            {
                "rm": name,
                **onpolicy_properties(raw, norm(raw), gold),
                "offpolicy_accuracy": accuracy(off, off_gold),
                "offpolicy_accuracy_untied": untied_accuracy(off, off_gold),
            }
        )
    table = pd.DataFrame(rows)[TABLE1_COLUMNS]
    table.attrs["gold_tie_fraction"] = gold_tie_fraction(gold)
    return table, matrices, norms


def save_reward_matrices(matrices: dict, norms: dict, prompts, responses, out_dir: Path) -> None:
    """rewards_<rm>.npy [P, n] (same prompt and sample order for all), normalization.json and
    samples.json; `out_dir` is created."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, raw in matrices.items():
        np.save(paths.reward_matrix(name, out_dir), np.asarray(raw, dtype=np.float64))
    (out_dir / paths.NORMALIZATIONS.name).write_text(
        json.dumps({k: v.to_dict() for k, v in norms.items()}, indent=1) + "\n"
    )
    (out_dir / "samples.json").write_text(
        json.dumps({"prompts": prompts, "responses": responses}, ensure_ascii=False) + "\n"
    )


def save_eval(
    matrices: dict,
    norms: dict,
    prompts,
    responses,
    perfect_prompts,
    perfect_factor: float,
    perfect_shift: float,
    out_dir: Path = paths.RM_EVAL,
) -> None:
    """save_reward_matrices plus perfect_rm.json (the perfect-accuracy RM's prompts and factor)."""
    save_reward_matrices(matrices, norms, prompts, responses, out_dir)
    (out_dir / paths.PERFECT_RM.name).write_text(
        json.dumps(
            {"factor": perfect_factor, "shift": perfect_shift, "prompts": perfect_prompts}, indent=0
        )
        + "\n"
    )


def load_suite(out_dir: Path = paths.RM_EVAL) -> dict[str, object]:
    """The reward suite exactly as rm_eval evaluated it (same perfect-RM prompts and factor)."""
    path = out_dir / paths.PERFECT_RM.name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the rm_eval stage first")
    perfect = json.loads(path.read_text())
    return reward_suite(perfect["prompts"], perfect["factor"], perfect["shift"])


def load_normalizations(out_dir: Path = paths.RM_EVAL, stage: str = "rm_eval") -> dict:
    """{rm: Normalization} that `stage` measured and saved in `out_dir`."""
    path = out_dir / paths.NORMALIZATIONS.name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the {stage} stage first")
    return {k: Normalization(**v) for k, v in json.loads(path.read_text()).items()}


def load_policy_normalizations(policy: str) -> dict[str, Normalization]:
    """The per-RM normalisations that sec42_eval measured on `policy`'s own samples."""
    return load_normalizations(paths.policy_eval(policy), "sec42_eval")


def load_eval_matrices(names, out_dir: Path = paths.RM_EVAL) -> dict[str, np.ndarray]:
    """Raw initial-policy reward matrices [P, n] of the named RMs, as rm_eval saved them."""
    out = {}
    for name in names:
        path = paths.reward_matrix(name, out_dir)
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run the rm_eval stage first")
        out[name] = np.load(path)
    return out


def reward_specs(names, manifest: dict) -> dict[str, str]:
    """The reward spec of each RM name: a Section 4.1 RM's name maps to its directory (from
    rm_train's manifest); anything else (scorer name, path, Hub id) is its own spec."""
    trained = {rm["name"]: rm["path"] for rm in manifest["rms"]}
    return {name: trained.get(name, name) for name in names}
