"""Stage sec42_policies's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.lm.rm.specs import check_reward_fields
from rmteacher.lm.world.policies import POLICY_SOURCES


@dataclass(frozen=True)
class Sec42PoliciesParams(StageParams):
    """Several initial policies: the Section 4.1 SFT policy and the base LM fine-tuned on
    different parts of the corpus (trl SFTTrainer), with a profile of each one's outputs."""

    STAGE = "sec42_policies"
    seed: int = param(0, "seed of the fine-tuning data and order", ge=0)
    policies: tuple[str, ...] = param(
        tuple(POLICY_SOURCES),
        "initial policies ('sft' reuses lm_sft's)",
        choices=tuple(POLICY_SOURCES),
    )
    n_sft_examples: int = param(8000, "fine-tuning examples of each new policy", ge=8)
    epochs: float = param(1.0, "fine-tuning epochs", gt=0)
    learning_rate: float = param(1e-3, "fine-tuning learning rate", gt=0)
    batch_size: int = param(32, "fine-tuning batch size", ge=1)
    profile_prompts: int = param(128, "test prompts sampled to profile each policy", ge=2)
    profile_samples: int = param(4, "samples per profiling prompt", ge=2)
    own_rm_policies: tuple[str, ...] = param(
        ("sft_austen", "sft_quotes"),
        "policies that get an RM of their own, 'rm_own_<policy>': Bradley-Terry on r_G-labelled "
        "pairs of two of that policy's samples, so each RM is sensitive to what only its "
        "policy writes (Theorem 6's construction; [] for none)",
        choices=tuple(POLICY_SOURCES),
        may_be_empty=True,
    )
    own_rm_pairs: int = param(8000, "training pairs of each own RM (ties dropped)", ge=10)
    own_rm_init: str = param(
        "gold_body",
        "what each own RM starts from, as rm_train.init: policy (that policy, new head), gold, "
        "gold_body or a reward-model directory",
        reward="init",
    )
    own_rm_learning_rate: float = param(
        2.5e-5,
        "own RMs' learning rate (constant; small, so that the between-prompt part of the start "
        "survives, as in the design search's gold_body_lowlr)",
        gt=0,
    )
    own_rm_batch_size: int = param(64, "own RMs' pairs per step", ge=1)

    def check(self) -> None:
        check_reward_fields(self)  # the one check of every field that names a reward
        if len(set(self.policies)) != len(self.policies) or len(self.policies) < 2:
            raise ParamsError(f"{self.STAGE}.policies: at least two distinct policies")
        missing = [p for p in self.own_rm_policies if p not in self.policies]
        if missing or len(set(self.own_rm_policies)) != len(self.own_rm_policies):
            raise ParamsError(
                f"{self.STAGE}.own_rm_policies: distinct names among policies, got {missing}"
            )
