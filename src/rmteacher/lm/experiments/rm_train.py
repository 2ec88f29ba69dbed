"""Stage rm_train: preference pairs labelled by the ground truth r_G (ties dropped) and five
Bradley-Terry proxy RMs (trl RewardTrainer) trained on mixes of on- and off-policy pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param

if TYPE_CHECKING:
    import pandas as pd

MIX_FRACTIONS = (1.0, 0.75, 0.5, 0.25, 0.0)


def mix_rm_name(fraction: float) -> str:
    """Name of the proxy RM trained with this on-policy fraction: 1.0 -> 'rm_onpolicy_100'."""
    return f"rm_onpolicy_{round(100 * fraction)}"


@dataclass(frozen=True)
class RmTrainParams(StageParams):
    """Preference pairs labelled by the ground truth r_G - on-policy (two initial-policy samples)
    and off-policy (best of several other writers' responses vs a random other) - and five
    Bradley-Terry RMs trained on mixes of them with equal pair counts (trl RewardTrainer)."""

    STAGE = "rm_train"
    seed: int = param(0, "seed of sampling, of the on-policy mix and of training", ge=0)
    gold: str = param(
        "models/gold_rm", "ground-truth reward r_G: model path, scorer name or Hub id"
    )
    onpolicy_fractions: tuple[float, ...] = param(
        MIX_FRACTIONS, "on-policy fraction of each proxy RM's prompts", ge=0, le=1
    )
    offpolicy_temperatures: tuple[float, ...] = param(
        (1.0, 1.3),
        "temperatures of the base-LM off-policy candidates (the corpus continuation is another; "
        "UltraFeedback's own two responses are, and the paper samples none: [])",
        gt=0,
        may_be_empty=True,
    )
    init: str = param(
        "policy",
        "what every proxy RM starts from: 'policy' (the initial policy with a new one-output "
        "head, as the paper), 'gold' (r_G itself, a model that already scores prompts: "
        "Bradley-Terry training cannot remove its between-prompt spread), 'gold_body' (r_G's "
        "body with a new head) or a reward-model directory",
    )
    n_pairs: int = param(20000, "preference pairs of every RM (ties never count)", ge=10)
    epochs: float = param(1.0, "reward-model training epochs", gt=0)
    learning_rate: float = param(5e-4, "reward-model learning rate (constant)", gt=0)
    batch_size: int = param(64, "pairs per step", ge=1)
    center_rewards_coefficient: float = param(0.01, "trl's reward-centering penalty", ge=0)

    def check(self) -> None:
        names = [mix_rm_name(f) for f in self.onpolicy_fractions]
        if len(set(names)) != len(names):
            raise ParamsError(f"{self.STAGE}.onpolicy_fractions: values must be distinct")
        from rmteacher.rewards.registry import check_reward_spec

        check_reward_spec(self.gold, f"{self.STAGE}.gold")
        from rmteacher.lm.rm.training import INITS
        from rmteacher.rewards.registry import loads_a_model

        if self.init in INITS[1:] and not loads_a_model(self.gold):
            raise ParamsError(
                f"{self.STAGE}.init={self.init!r} starts from r_G's weights, but "
                f"{self.STAGE}.gold={self.gold!r} is not a model"
            )
        if self.init not in INITS:
            check_reward_spec(self.init, f"{self.STAGE}.init")


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
    import pandas as pd

    from rmteacher.core import paths
    from rmteacher.core.hf import load_policy
    from rmteacher.lm.rm.preferences import candidate_pairs, mix_pairs
    from rmteacher.lm.rm.training import init_source, train_reward_model, write_manifest
    from rmteacher.lm.world.prompts import World
    from rmteacher.rewards.registry import load_reward

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
