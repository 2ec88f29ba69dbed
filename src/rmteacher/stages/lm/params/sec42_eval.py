"""Stage sec42_eval's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.lm.rm.specs import check_reward_fields

DEFAULT_RMS = (
    "rm_own_sft_austen",
    "rm_own_sft_quotes",
    "rm_onpolicy_100",
    "rm_onpolicy_0",
    "fam_n1_c1",
    "fam_n0_c0.1",
    "afinn",
    "textblob",
    "minilm_sentiment",
)


@dataclass(frozen=True)
class Sec42EvalParams(StageParams):
    """For every policy x reward model, on that policy's own samples: the normalisation (global
    mean and std), reward variance, on-policy accuracy against r_G (tie rule and untied),
    off-policy accuracy and the predicted teacher ranking of `rmteacher report`; whether each
    RM's variance differs across policies by more than its noise."""

    STAGE = "sec42_eval"
    seed: int = param(0, "seed of the evaluation samples (rm_eval's, to reuse its samples)", ge=0)
    reward_models: tuple[str, ...] = param(
        DEFAULT_RMS,
        "RMs: Section 4.1 mixes and family members and Section 4.2 policies' own RMs "
        "(rm_own_<policy>) by name, scorer names, model paths",
        reward="rm",
    )
    n_prompts: int = param(1024, "policy-gradient prompts evaluated (paper: 500)", ge=2)
    n_samples: int = param(10, "samples per prompt (paper: 10)", ge=2)
    n_bootstrap: int = param(200, "prompt resamples behind each variance's noise", ge=10)
    check_flip_strength: float = param(
        2.0,
        "manipulation check: smallest gap / bootstrap noise for an RM's variance to differ "
        "across policies, and for two RMs' variance order to flip between two policies (each "
        "gap, on both policies)",
        gt=0,
    )
    check_gold_ties: float = param(
        0.05, "manipulation check: largest share of a policy's sample pairs r_G may tie", ge=0, le=1
    )

    def check(self) -> None:
        check_reward_fields(self)  # the one check of every field that names a reward
        if len(set(self.reward_models)) != len(self.reward_models):
            raise ParamsError(f"{self.STAGE}.reward_models: values must be distinct")
        if "gold" in self.reward_models:
            raise ParamsError(f"{self.STAGE}.reward_models: r_G itself is the gold, not an RM")
