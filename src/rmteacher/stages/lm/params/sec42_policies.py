"""Stage sec42_policies's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param
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

    def check(self) -> None:
        if len(set(self.policies)) != len(self.policies) or len(self.policies) < 2:
            raise ParamsError(f"{self.STAGE}.policies: at least two distinct policies")
