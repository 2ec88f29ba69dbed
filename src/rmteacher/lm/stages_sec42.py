"""Parameters of the Section 4.2 stages and of the robustness variants: one documented, validated
dataclass per DVC stage.

Stage graph: (lm_sft, rm_train) -> sec42_policies -> sec42_eval -> sec42_pg -> sec42_report;
(rm_eval) -> alt_normalization; (rm_eval) -> reward_scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.lm.policies import POLICY_SOURCES
from rmteacher.params import ParamsError, StageParams, param

PG_VARIANTS = ("rloo", "grpo", "grpo_group")
DEFAULT_RMS = ("afinn", "textblob", "minilm_sentiment", "rm_onpolicy_100")


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


@dataclass(frozen=True)
class Sec42EvalParams(StageParams):
    """For every policy x reward model, on that policy's own samples: the normalisation (global
    mean and std), reward variance, on-policy accuracy against r_G and off-policy accuracy -
    the same code path as `rmteacher report`."""

    STAGE = "sec42_eval"
    seed: int = param(0, "seed of the evaluation samples", ge=0)
    reward_models: tuple[str, ...] = param(
        DEFAULT_RMS, "off-the-shelf RMs: scorer names, model paths or Section 4.1 RM names"
    )
    n_prompts: int = param(500, "policy-gradient prompts evaluated (paper: 500)", ge=2)
    n_samples: int = param(10, "samples per prompt (paper: 10)", ge=2)

    def check(self) -> None:
        if len(set(self.reward_models)) != len(self.reward_models):
            raise ParamsError(f"{self.STAGE}.reward_models: values must be distinct")
        if "vader" in self.reward_models or "gold" in self.reward_models:
            raise ParamsError(f"{self.STAGE}.reward_models: r_G itself is not an off-the-shelf RM")


@dataclass(frozen=True)
class Sec42PgParams(StageParams):
    """Policy gradient from every initial policy on every off-the-shelf RM (normalised per
    policy): RLOO as in the paper, GRPO without reward scaling, and GRPO with trl's per-group
    std scaling as a labelled ablation."""

    STAGE = "sec42_pg"
    seeds: tuple[int, ...] = param((0, 1, 2), "training seeds", ge=0)
    variants: tuple[str, ...] = param(
        PG_VARIANTS,
        "rloo; grpo (scale_rewards='none'); grpo_group (scale_rewards='group')",
        choices=PG_VARIANTS,
    )
    epochs: float = param(2.0, "trl epochs (paper 4.2: 2, one pass over the prompts)", gt=0)
    evals_per_epoch: int = param(1, "evaluations per epoch (plus one at the start)", ge=1)
    num_generations: int = param(2, "k, samples per prompt (paper: 2)", ge=2)
    prompts_per_step: int = param(32, "prompts per optimizer step", ge=1)
    n_train_prompts: int = param(
        256, "policy-gradient prompts used for training (2 epochs = one pass)", ge=2
    )
    beta: float = param(0.05, "KL coefficient of RLOO (paper: 0.05)", ge=0)
    grpo_beta: float = param(
        0.0, "KL coefficient of GRPO (the paper's GRPO KL term carried no gradient)", ge=0
    )
    learning_rate: float = param(3e-4, "Adam learning rate (constant)", gt=0)
    eval_prompts: int = param(64, "training prompts used for evaluation", ge=2)
    eval_samples: int = param(4, "samples per evaluation prompt", ge=1)

    def check(self) -> None:
        if len(set(self.seeds)) != len(self.seeds):
            raise ParamsError(f"{self.STAGE}.seeds: values must be distinct")
        if self.eval_prompts > self.n_train_prompts:
            raise ParamsError(f"{self.STAGE}.eval_prompts: must be <= n_train_prompts")


@dataclass(frozen=True)
class Sec42ReportParams(StageParams):
    """Table 10 and Table 12 analogs, the policy x RM heatmap, the best RM of each policy and
    whether reward variance and accuracy predict it."""

    STAGE = "sec42_report"
    n_bootstrap: int = param(2000, "bootstrap resamples over seeds", ge=10)
    seed: int = param(0, "bootstrap seed", ge=0)


@dataclass(frozen=True)
class AltNormalizationParams(StageParams):
    """Table 9 analog: the Section 4.1 RMs normalised by the square root of their mean
    per-prompt variance instead of the global std, RLOO up to the correlation epoch, and Table 2
    recomputed."""

    STAGE = "alt_normalization"
    seeds: tuple[int, ...] = param((0, 1, 2), "training seeds", ge=0)
    epochs: float = param(1.0, "trl epochs (the correlations use epoch 1)", gt=0)
    n_bootstrap: int = param(2000, "bootstrap resamples over seeds", ge=10)


@dataclass(frozen=True)
class RewardScalingParams(StageParams):
    """Claim 12: multiply a normalised reward by c; under Adam the runs nearly coincide, under
    plain SGD time rescales by 1/c (gradient clipping off in both)."""

    STAGE = "reward_scaling"
    rm: str = param("rm_onpolicy_100", "Section 4.1 RM to train on")
    scales: tuple[float, ...] = param((0.25, 1.0, 4.0), "reward multipliers c", gt=0)
    seeds: tuple[int, ...] = param((0, 1), "training seeds", ge=0)
    epochs: float = param(2.0, "trl epochs", gt=0)
    evals_per_epoch: int = param(2, "evaluations per epoch (plus one at the start)", ge=1)
    beta: float = param(
        0.0, "KL weight; 0 so that scaling the reward scales the whole objective", ge=0
    )
    adam_learning_rate: float = param(3e-4, "Adam learning rate", gt=0)
    sgd_learning_rate: float = param(0.01, "plain SGD learning rate", gt=0)
    prompts_per_step: int = param(32, "prompts per optimizer step", ge=1)
    eval_prompts: int = param(64, "training prompts used for evaluation", ge=2)
    eval_samples: int = param(4, "samples per evaluation prompt", ge=1)
