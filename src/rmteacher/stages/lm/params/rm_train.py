"""Stage rm_train's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.lm.rm.names import INITS, MIX_FRACTIONS, mix_rm_name
from rmteacher.lm.rm.specs import check_reward_fields
from rmteacher.rewards.registry import loads_a_model


@dataclass(frozen=True)
class RmTrainParams(StageParams):
    """Preference pairs labelled by the ground truth r_G - on-policy (two initial-policy samples)
    and off-policy (best of several other writers' responses vs a random other) - and five
    Bradley-Terry RMs trained on mixes of them with equal pair counts (trl RewardTrainer)."""

    STAGE = "rm_train"
    seed: int = param(0, "seed of sampling, of the on-policy mix and of training", ge=0)
    gold: str = param(
        "models/gold_rm",
        "ground-truth reward r_G: model path, scorer name or Hub id",
        reward="spec",
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
        reward="init",
    )
    n_pairs: int = param(20000, "preference pairs of every RM (ties never count)", ge=10)
    epochs: float = param(1.0, "reward-model training epochs", gt=0)
    learning_rate: float = param(5e-4, "reward-model learning rate (constant)", gt=0)
    batch_size: int = param(64, "pairs per step", ge=1)
    center_rewards_coefficient: float = param(0.01, "trl's reward-centering penalty", ge=0)

    def check(self) -> None:
        check_reward_fields(self)  # the one check of every field that names a reward
        names = [mix_rm_name(f) for f in self.onpolicy_fractions]
        if len(set(names)) != len(names):
            raise ParamsError(f"{self.STAGE}.onpolicy_fractions: values must be distinct")
        if self.init in INITS[1:] and not loads_a_model(self.gold):
            raise ParamsError(
                f"{self.STAGE}.init={self.init!r} starts from r_G's weights, but "
                f"{self.STAGE}.gold={self.gold!r} is not a model"
            )
