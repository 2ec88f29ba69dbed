"""Parameters of the Section 4.1 stages: one documented, validated dataclass per DVC stage.

Stage graph: lm_pretrain -> lm_sft -> rm_train -> rm_eval -> rloo -> sec41_report. Paths are
derived from stage names (models/base_lm, artifacts/<stage>/...), never from timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.params import ParamsError, StageParams, param

MIX_FRACTIONS = (1.0, 0.75, 0.5, 0.25, 0.0)


def mix_rm_name(fraction: float) -> str:
    """Name of the proxy RM trained with this on-policy fraction: 1.0 -> 'rm_onpolicy_100'."""
    return f"rm_onpolicy_{round(100 * fraction)}"


@dataclass(frozen=True)
class LmPretrainParams(StageParams):
    """Corpus split, byte-level BPE tokenizer and GPT-2-style base LM pretrained on the committed
    corpus; writes models/base_lm (committed, so a fresh clone skips this stage)."""

    STAGE = "lm_pretrain"
    seed: int = param(0, "seed of the held-out split, initialisation and batch order", ge=0)
    heldout_passages: int = param(4000, "documents held out of pretraining for prompts", ge=10)
    min_passage_words: int = param(12, "minimum words of a held-out document", ge=4)
    vocab_size: int = param(4096, "BPE vocabulary size", ge=300, le=65536)
    n_embd: int = param(128, "model width", ge=8)
    n_layer: int = param(4, "transformer blocks", ge=1)
    n_head: int = param(4, "attention heads", ge=1)
    n_positions: int = param(128, "maximum sequence length of the model", ge=16)
    block_size: int = param(64, "tokens per training sequence", ge=8)
    batch_size: int = param(64, "sequences per step", ge=1)
    epochs: float = param(10.0, "passes over the training tokens", gt=0)
    learning_rate: float = param(2e-3, "peak AdamW learning rate", gt=0)
    warmup_steps: int = param(100, "linear warm-up steps", ge=1)
    weight_decay: float = param(0.1, "AdamW weight decay", ge=0)
    val_fraction: float = param(0.01, "fraction of token blocks kept for validation", gt=0, lt=0.5)
    eval_every: int = param(200, "steps between validation losses", ge=1)

    def check(self) -> None:
        if self.n_embd % self.n_head:
            raise ParamsError(f"{self.STAGE}.n_head: must divide n_embd={self.n_embd}")
        if self.block_size > self.n_positions:
            raise ParamsError(f"{self.STAGE}.block_size: must be <= n_positions")


@dataclass(frozen=True)
class LmSftParams(StageParams):
    """Prompt splits (RM training / policy gradient / test) and the initial policy: supervised
    fine-tuning (trl SFTTrainer) of the base LM to continue a prompt in the chat format."""

    STAGE = "lm_sft"
    seed: int = param(0, "seed of the prompt splits and of fine-tuning", ge=0)
    prompt_words: int = param(5, "words of a passage shown as the prompt", ge=1)
    continuation_words: int = param(16, "words of the reference continuation", ge=1)
    n_rm_prompts: int = param(2400, "RM-training prompts (one preference pair each)", ge=4)
    n_pg_prompts: int = param(512, "policy-gradient prompts (RM evaluation uses a subset)", ge=4)
    n_test_prompts: int = param(512, "test prompts (held-out off-policy pairs)", ge=4)
    n_sft_examples: int = param(16000, "fine-tuning examples cut from training documents", ge=8)
    epochs: float = param(1.0, "fine-tuning epochs", gt=0)
    learning_rate: float = param(1e-3, "fine-tuning learning rate", gt=0)
    batch_size: int = param(32, "fine-tuning batch size", ge=1)
    max_new_tokens: int = param(24, "response length used by every later stage", ge=1, le=256)
    temperature: float = param(1.0, "sampling temperature used by every later stage", gt=0)


@dataclass(frozen=True)
class RmTrainParams(StageParams):
    """Preference pairs labelled by the ground-truth reward r_G (ties dropped) and five
    Bradley-Terry reward models trained on on-/off-policy mixes (trl RewardTrainer)."""

    STAGE = "rm_train"
    seed: int = param(0, "seed of sampling, of the on-policy mix and of training", ge=0)
    gold: str = param("vader", "ground-truth reward r_G: scorer name, model path or Hub id")
    onpolicy_fractions: tuple[float, ...] = param(
        MIX_FRACTIONS, "on-policy fraction of each proxy RM's prompts", ge=0, le=1
    )
    offpolicy_temperature: float = param(
        1.3, "temperature of the base LM's (off-policy) responses", gt=0
    )
    epochs: float = param(2.0, "reward-model training epochs", gt=0)
    learning_rate: float = param(5e-4, "reward-model learning rate (constant)", gt=0)
    batch_size: int = param(32, "pairs per step", ge=1)
    center_rewards_coefficient: float = param(0.01, "trl's reward-centering penalty", ge=0)

    def check(self) -> None:
        names = [mix_rm_name(f) for f in self.onpolicy_fractions]
        if len(set(names)) != len(names):
            raise ParamsError(f"{self.STAGE}.onpolicy_fractions: values must be distinct")
        from rmteacher.rewards.registry import check_reward_spec

        check_reward_spec(self.gold, f"{self.STAGE}.gold")


@dataclass(frozen=True)
class RmEvalParams(StageParams):
    """Table 1: reward variance and on-/off-policy accuracy of every RM under the initial policy,
    plus the normalisation constants (global mean and std) used by policy gradient."""

    STAGE = "rm_eval"
    seed: int = param(0, "seed of the evaluation samples", ge=0)
    n_prompts: int = param(500, "policy-gradient prompts evaluated (paper: 500)", ge=2)
    n_samples: int = param(10, "samples per prompt (paper: 10)", ge=2)
    perfect_fraction: float = param(
        0.5, "fraction of policy-gradient prompts whose r_G is scaled down", ge=0, le=1
    )
    perfect_factor: float = param(0.001, "scale applied to those prompts' r_G", gt=0)
    perfect_seed: int = param(8122, "seed choosing the scaled prompts", ge=0)
    perfect_shift: float = param(
        1.0,
        "constant added to r_G before scaling (VADER is centred; ArmoRM's scores are "
        "positive, and without an offset global normalisation undoes the scaling)",
    )

    def check(self) -> None:
        if self.n_samples * self.n_prompts > 200_000:
            raise ParamsError(f"{self.STAGE}: n_prompts * n_samples must be <= 200000")


@dataclass(frozen=True)
class RlooParams(StageParams):
    """RLOO (trl RLOOTrainer, k samples per prompt, KL weight beta) on every RM and on r_G, with
    rewards normalised by the constants of rm_eval; evaluated at evenly spaced points."""

    STAGE = "rloo"
    seeds: tuple[int, ...] = param((0, 1, 2), "training seeds (one run per RM and seed)", ge=0)
    rms: tuple[str, ...] = param(
        (
            "rm_onpolicy_100",
            "rm_onpolicy_75",
            "rm_onpolicy_50",
            "rm_onpolicy_25",
            "rm_onpolicy_0",
            "perfect",
            "gold",
        ),
        "reward models to train on ('perfect' = scaled r_G, 'gold' = r_G itself)",
    )
    epochs: float = param(6.0, "passes over the policy-gradient prompts (k samples each)", gt=0)
    evals_per_epoch: int = param(1, "evaluations per epoch (plus one at the start)", ge=1)
    num_generations: int = param(2, "k, samples per prompt (paper: 2)", ge=2)
    prompts_per_step: int = param(32, "prompts per optimizer step", ge=1)
    beta: float = param(0.05, "KL coefficient lambda (paper: 0.05)", ge=0)
    learning_rate: float = param(3e-4, "Adam learning rate (constant)", gt=0)
    eval_prompts: int = param(128, "fixed policy-gradient prompts used for evaluation", ge=2)
    eval_samples: int = param(4, "samples per evaluation prompt", ge=1)

    def check(self) -> None:
        if len(set(self.seeds)) != len(self.seeds):
            raise ParamsError(f"{self.STAGE}.seeds: values must be distinct")
        if len(set(self.rms)) != len(self.rms):
            raise ParamsError(f"{self.STAGE}.rms: values must be distinct")
        allowed = [mix_rm_name(f) for f in MIX_FRACTIONS] + ["perfect", "perfect_unshifted", "gold"]
        for name in self.rms:
            if name not in allowed and not name.startswith("rm_onpolicy_"):
                raise ParamsError(
                    f"{self.STAGE}.rms: unknown RM '{name}'; allowed: {', '.join(allowed)}"
                )


@dataclass(frozen=True)
class Sec41ReportParams(StageParams):
    """Table 2 (correlations of RM properties with reward increases), Figures 2 and 4, and the
    verdict on each Section 4.1 claim."""

    STAGE = "sec41_report"
    increase_epoch: float = param(1.0, "epoch at which increases are correlated (paper: 1)", gt=0)
    n_bootstrap: int = param(2000, "bootstrap resamples over seeds", ge=10)
    seed: int = param(0, "bootstrap seed", ge=0)
