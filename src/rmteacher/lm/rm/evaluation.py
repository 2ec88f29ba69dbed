"""Reward models measured on a policy's own samples (paper Table 1): every RM's reward variance
and on-/off-policy accuracy, the normalisation constants (fixed from initial-policy samples) that
policy gradient uses, and reading back what rm_eval and sec42_eval saved."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from rmteacher.core import paths
from rmteacher.lm.rm.suite import ControlledReward, FamilyMember, Memo, family_grid, prompt_stats
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


def scaled_prompts(prompts: list[str], fraction: float, seed: int) -> list[str]:
    """The prompts whose r_G the perfect-accuracy RM scales down (seeded)."""
    order = np.random.default_rng(seed).permutation(len(prompts))
    return [prompts[i] for i in order[: int(len(prompts) * fraction)]]


def build_suite(spec: dict, manifest: dict, gold=None, mixes=None) -> dict[str, object]:
    """{name: reward} of Section 4.1 from a suite spec (see `suite_spec`): the trained mixes in
    manifest order (only those named in `mixes`, when given), the perfect-accuracy controls, the
    controlled family and r_G last. r_G (`gold`, loaded from the manifest if not given) is shared
    and memoised, so each sample is scored by the r_G model once however many rewards are built
    on it."""

    rewards = {
        rm["name"]: load_reward(rm["path"], rm["name"])
        for rm in manifest["rms"]
        if mixes is None or rm["name"] in mixes
    }
    if gold is None:
        gold = Memo(load_reward(manifest["gold"], "gold"))
    perfect = spec["perfect"]
    rewards["perfect"] = PromptScaledReward(
        gold, set(perfect["prompts"]), perfect["factor"], perfect["shift"]
    )
    rewards["perfect_unshifted"] = PromptScaledReward(
        gold, set(perfect["prompts"]), perfect["factor"], 0.0
    )
    stats = {p: tuple(v) for p, v in spec["prompt_stats"].items()}
    for fields in spec["family"]:
        member = FamilyMember(**fields)
        rewards[member.name] = ControlledReward(gold, member, stats)
    rewards["gold"] = gold
    return rewards


def suite_spec(world, params, gold_matrix: np.ndarray, prompts: list[str]) -> dict:
    """The controls' and family's definitions (rm_eval's params, r_G's per-prompt mean and std on
    the initial policy's samples), saved so that later stages rebuild exactly these rewards."""

    members = [
        FamilyMember(
            eta, floor, params.family_fraction, params.family_seed, params.seed, ceiling, between
        )
        for eta, floor, ceiling, between in family_grid(params)
        if (eta, floor, ceiling, between) != (0.0, 1.0, 1.0, 1.0)  # that one is r_G itself
    ]
    return {
        "perfect": {
            "prompts": scaled_prompts(prompts, params.perfect_fraction, params.perfect_seed),
            "factor": params.perfect_factor,
            "shift": params.perfect_shift,
        },
        "family": [asdict(m) for m in members],
        "prompt_stats": prompt_stats(prompts, gold_matrix),
    }


def score_matrix(reward, prompts: list[str], responses: list[list[str]]) -> np.ndarray:
    """[P, n] rewards of responses[p][i]."""
    if isinstance(reward, Reward):
        return reward.matrix(prompts, responses)
    n = len(responses[0])
    flat_p = [p for p in prompts for _ in range(n)]
    return np.asarray(reward(flat_p, [r for rs in responses for r in rs])).reshape(len(prompts), n)


def rm_table(matrices: dict, offpolicy: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """(Table 1 as a DataFrame, normalisations) from raw [P, n] matrices of every RM on the
    initial policy's samples (r_G under 'gold'). `offpolicy[name]` = (RM scores [M, 2], r_G
    [M, 2]) of held-out pairs adds the off-policy accuracies (NaN where absent)."""
    gold = matrices["gold"]
    rows, norms = [], {}
    for name, raw in matrices.items():
        norm = Normalization.from_rewards(raw)
        norms[name] = norm
        row = {"rm": name, **onpolicy_properties(raw, norm(raw), gold)}
        if offpolicy is not None and name in offpolicy:
            scores, gold_pairs = offpolicy[name]
            row["offpolicy_accuracy"] = accuracy(scores, gold_pairs)
            row["offpolicy_accuracy_untied"] = untied_accuracy(scores, gold_pairs)
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=TABLE1_COLUMNS)
    table.attrs["gold_tie_fraction"] = gold_tie_fraction(gold)
    return table, norms


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


def save_suite_spec(spec: dict, out_dir: Path = paths.RM_EVAL) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / paths.SUITE.name).write_text(json.dumps(spec) + "\n")


def load_suite(out_dir: Path = paths.RM_EVAL, mixes=None) -> dict[str, object]:
    """The reward suite exactly as rm_eval evaluated it (same controls, family and r_G); of the
    trained mixes, only those in `mixes` when given (each is a model to load)."""
    return build_suite(suite_definition(out_dir), read_manifest(), mixes=mixes)


def suite_definition(out_dir: Path = paths.RM_EVAL) -> dict:
    """The suite spec rm_eval saved (controls' and family's definitions)."""
    path = out_dir / paths.SUITE.name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the rm_eval stage first")
    return json.loads(path.read_text())


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
    rm_train's manifest), a Section 4.2 policy's own RM ('rm_own_<policy>') to its directory
    (from sec42_policies' manifest); anything else (scorer name, path, Hub id) is its own spec."""
    trained = {rm["name"]: rm["path"] for rm in manifest["rms"]}
    own = paths.SEC42_POLICIES / "rm_manifest.json"
    if own.is_file():
        trained.update({rm["name"]: rm["path"] for rm in json.loads(own.read_text())["rms"]})
    return {name: trained.get(name, name) for name in names}
