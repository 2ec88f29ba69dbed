"""Stage rm_train: preference pairs labelled by the ground truth r_G (ties dropped) and five
Bradley-Terry proxy RMs (trl RewardTrainer) trained on mixes of on- and off-policy pairs."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rmteacher.core import paths
from rmteacher.core.hf import load_policy
from rmteacher.lm.rm.names import init_source, mix_rm_name
from rmteacher.lm.rm.preferences import candidate_pairs, mix_pairs
from rmteacher.lm.rm.training import train_reward_model, write_manifest
from rmteacher.lm.world.prompts import World
from rmteacher.rewards.registry import load_reward
from rmteacher.stages.lm.params.rm_train import RmTrainParams


@dataclass(frozen=True)
class RmTrainResult:
    """`candidates`: the first candidate pairs of the RM-training split; `logs`: trl's per-step
    RM training logs; `summary`: one row per RM (pairs, on-policy pairs, final training accuracy
    and loss); `metrics`: tie fractions and pair counts."""

    candidates: pd.DataFrame
    logs: pd.DataFrame
    summary: pd.DataFrame
    metrics: dict


def run(params: RmTrainParams) -> RmTrainResult:
    """Sample and label candidate pairs for the RM-training and test prompts, then train one RM
    per on-policy fraction; writes the candidates, the RMs and the manifest under
    artifacts/rm_train."""
    world = World.load()
    gold = load_reward(params.gold, "gold", what="rm_train.gold")
    policy, tokenizer = load_policy(world.policy_dir, "initial policy")
    base = load_policy(world.base_dir, "base LM")[0] if params.offpolicy_temperatures else None
    candidates = {
        split: candidate_pairs(
            world,
            split,
            policy,
            base,
            tokenizer,
            gold,
            offpolicy_temperatures=params.offpolicy_temperatures,
            seed=params.seed + 10 * i,
        )
        for i, split in enumerate(("rm_train", "test"))
    }
    paths.RM_TRAIN.mkdir(parents=True, exist_ok=True)
    for split, frame in candidates.items():
        frame.to_json(paths.candidates(split), orient="records", lines=True, force_ascii=False)
    init_dir, new_head = init_source(params.init, world.policy_dir, params.gold)
    logs, summary = [], []
    for fraction in params.onpolicy_fractions:
        name = mix_rm_name(fraction)
        pairs = mix_pairs(candidates["rm_train"], fraction, params.n_pairs, params.seed)
        log = train_reward_model(
            init_dir,
            paths.reward_model(name),
            pairs,
            epochs=params.epochs,
            learning_rate=params.learning_rate,
            batch_size=params.batch_size,
            center_rewards_coefficient=params.center_rewards_coefficient,
            seed=params.seed,
            name=name,
            new_head=new_head,
        )
        logs.append(log)
        summary.append(
            {
                "rm": name,
                "onpolicy_fraction": fraction,
                "pairs": len(pairs),
                "onpolicy_pairs": int((pairs.source == "on").sum()),
                "mean_gold_gap": float(pairs.gap.mean()),
                "final_train_accuracy": float(log["accuracy"].tail(20).mean())
                if "accuracy" in log
                else float("nan"),
                "final_train_loss": float(log["loss"].tail(20).mean()),
            }
        )
    logs = pd.concat(logs, ignore_index=True)
    summary = pd.DataFrame(summary)
    write_manifest(paths.RM_TRAIN, params.gold, summary)
    cand = candidates["rm_train"]
    on_gap = (cand.gold_on_a - cand.gold_on_b).abs()
    off_gap = cand.gold_off_chosen - cand.gold_off_rejected
    metrics = {
        "rm_train_prompts": len(cand),
        "onpolicy_gold_tie_fraction": float((on_gap == 0).mean()),
        "offpolicy_gold_tie_fraction": float((off_gap == 0).mean()),
        "onpolicy_median_gold_gap": float(on_gap.median()),
        "offpolicy_median_gold_gap": float(off_gap.median()),
        **{f"{r.rm}_pairs": int(r.pairs) for r in summary.itertuples()},
        **{f"{r.rm}_train_accuracy": r.final_train_accuracy for r in summary.itertuples()},
    }
    return RmTrainResult(cand.head(), logs, summary, metrics)
