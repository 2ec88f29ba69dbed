"""Stage lm_sft: the prompt splits (RM training / policy gradient / test) and the initial policy,
the base LM fine-tuned with trl's SFTTrainer to continue a prompt in the chat format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LmSftParams(StageParams):
    """Prompt splits (SFT examples, RM training, policy gradient, test) and the initial policy:
    supervised fine-tuning (trl SFTTrainer) of the base LM to continue a passage in the chat
    format - or, with `prompt_data`, the paper's own setting: UltraFeedback prompts and pairs and
    a fine-tuned Hub policy such as Pythia (the `paper` profile)."""

    STAGE = "lm_sft"
    seed: int = param(0, "seed of the prompt splits and of fine-tuning", ge=0)
    base_policy: str = param(
        "models/base_lm",
        "causal LM fine-tuned into the initial policy: this world's base LM, a model folder or "
        "(online) a Hub id such as EleutherAI/pythia-2.8b",
    )
    prompt_data: str = param(
        "",
        "empty: prompts cut from this world's corpus; else UltraFeedback in the "
        "ultrafeedback_binarized schema (a folder of train_prefs.jsonl and test_prefs.jsonl, or "
        "online a Hub dataset id), split as the paper does",
    )
    sft_data: str = param(
        "",
        "empty: fine-tune on the world's own examples (corpus passages, or UltraFeedback's "
        "preferred responses of the RM-training split); else a JSONL file, folder or Hub dataset "
        "id of chat messages, AlpacaFarm instruction/input/output or prompt/chosen records",
    )
    sft_config: str = param(
        "", "configuration of a Hub sft_data (AlpacaFarm's is 'alpaca_instructions')"
    )
    sft_split: str = param("sft", "split of sft_data read (AlpacaFarm's is 'sft')")
    max_text_tokens: int = param(
        512, "UltraFeedback: drop pairs whose prompt or a response is longer (paper: 512)", ge=1
    )
    pg_fraction: float = param(
        0.2, "UltraFeedback: share of train_prefs held for policy gradient", gt=0, lt=1
    )
    split_seed: int = param(1283, "UltraFeedback: seed of the RM / policy-gradient split", ge=0)
    prompt_words: int = param(16, "corpus world: words of a passage shown as the prompt", ge=1)
    continuation_words: int = param(12, "words of the reference continuation", ge=1)
    window_stride: int = param(6, "words between the starts of passages cut from a document", ge=1)
    mood_instructions: bool = param(
        True, "open each prompt with the mood the passage continues in (happy, sad or plain)"
    )
    mood_threshold: float = param(
        0.3, "VADER sentiment of the true continuation beyond which a mood is named", gt=0, lt=1
    )
    n_rm_prompts: int = param(24000, "RM-training prompts (at most one preference pair each)", ge=4)
    n_pg_prompts: int = param(2048, "policy-gradient prompts (all are evaluated by rm_eval)", ge=4)
    n_test_prompts: int = param(1024, "test prompts (held-out preference pairs)", ge=4)
    n_sft_examples: int = param(
        16000, "fine-tuning examples (passages of training documents)", ge=8
    )
    epochs: float = param(1.0, "fine-tuning epochs", gt=0)
    learning_rate: float = param(1e-3, "fine-tuning learning rate", gt=0)
    batch_size: int = param(32, "fine-tuning batch size", ge=1)
    max_new_tokens: int = param(16, "response length used by every later stage", ge=1, le=2048)
    temperature: float = param(1.0, "sampling temperature used by every later stage", gt=0)

    def check(self) -> None:
        from rmteacher.core.hf import check_model_source, check_tokenizer_files
        from rmteacher.lm.world.ultrafeedback import TEST_SPLIT, TRAIN_SPLIT, check_data_source

        try:
            if self.base_policy != LmSftParams.base_policy:  # the default is lm_pretrain's output
                check_model_source(self.base_policy, f"{self.STAGE}.base_policy")
                check_tokenizer_files(self.base_policy, f"{self.STAGE}.base_policy")
            if self.prompt_data:
                if Path(self.prompt_data).is_file():
                    raise ValueError(
                        f"{self.STAGE}.prompt_data: {self.prompt_data} is a file; expected a "
                        f"folder holding {TRAIN_SPLIT}.jsonl and {TEST_SPLIT}.jsonl, or a Hub "
                        "dataset id"
                    )
                check_data_source(
                    self.prompt_data, (TRAIN_SPLIT, TEST_SPLIT), f"{self.STAGE}.prompt_data"
                )
            if self.sft_data:
                check_data_source(self.sft_data, (self.sft_split,), f"{self.STAGE}.sft_data")
        except ValueError as err:
            raise ParamsError(str(err)) from None


@dataclass(frozen=True)
class SftResult:
    """`log`: trl's per-step SFT log; `samples`: initial-policy and base-LM samples beside the
    corpus continuation for a few test prompts; `metrics`: SFT fit and r_G of the samples."""

    log: pd.DataFrame
    samples: pd.DataFrame
    metrics: dict


def run(params: LmSftParams, quicklook_prompts: int = 256) -> SftResult:
    """Split the prompts, fine-tune and save the initial policy and the world description, then
    sample both policies on `quicklook_prompts` test prompts. In this world r_G scores the
    samples and the sentiment (VADER) of the policy's responses per mood instruction shows
    whether it follows the instructions; with UltraFeedback the samples stand beside the
    recorded preferred response (its ground truth is rm_train's)."""
    import numpy as np
    import pandas as pd

    from rmteacher.core import paths
    from rmteacher.core.hf import load_policy, load_tokenizer
    from rmteacher.lm.world.prompts import make_world
    from rmteacher.lm.world.sampling import sample_responses
    from rmteacher.lm.world.sft import train_policy

    tokenizer = load_tokenizer(params.base_policy) if params.prompt_data else None
    world = make_world(params, tokenizer)  # fails fast if lm_pretrain has not run
    log = train_policy(
        paths.SFT_POLICY,
        world.prompts["sft"],
        params,
        epochs=params.epochs,
        learning_rate=params.learning_rate,
        batch_size=params.batch_size,
        seed=params.seed,
    )
    world.save()
    policy, tokenizer = load_policy(str(paths.SFT_POLICY), "initial policy")
    base, _ = load_policy(world.base_dir, "base LM")
    passages = world.prompts["test"][:quicklook_prompts]
    prompts = [p.prompt for p in passages]
    gen = world.generation()
    sft_samples = sample_responses(policy, tokenizer, prompts, 4, seed=params.seed, **gen)
    base_samples = sample_responses(
        base, tokenizer, prompts, 4, seed=params.seed, chat=False, **gen
    )
    reference = "preferred (UltraFeedback)" if params.prompt_data else "corpus"
    samples = pd.DataFrame(
        {
            "prompt": prompts[:6],
            "initial policy": [s[0] for s in sft_samples[:6]],
            "base LM": [s[0] for s in base_samples[:6]],
            reference: [p.continuation for p in passages[:6]],
        }
    )
    sentiment, gold = (
        ({}, {})
        if params.prompt_data
        else _corpus_metrics(prompts, passages, sft_samples, base_samples)
    )
    metrics = {
        **sentiment,
        "sft_final_loss": float(log["loss"].tail(20).mean()),
        "sft_final_token_accuracy": float(log["mean_token_accuracy"].tail(20).mean()),
        "sft_steps": int(log["step"].max()),
        **gold,
        "mean_response_words": float(np.mean([len(s.split()) for ss in sft_samples for s in ss])),
        **{f"n_{split}_prompts": len(ps) for split, ps in world.prompts.items()},
    }
    return SftResult(log, samples, metrics)


def _corpus_metrics(prompts, passages, sft_samples, base_samples) -> tuple[dict, dict]:
    """(the policy's VADER sentiment per mood instruction, r_G of the policy, base-LM and corpus
    responses), in this world only."""
    import numpy as np

    from rmteacher.core import paths
    from rmteacher.lm.world.prompts import MOODS
    from rmteacher.rewards.registry import load_reward

    gold = load_reward(str(paths.GOLD_RM), "gold")
    vader = load_reward("vader")
    mood = np.array(
        [next((m for m, head in MOODS.items() if p.startswith(head)), "plain") for p in prompts]
    )
    response_sentiment = vader.matrix(prompts, sft_samples).mean(axis=1)
    sentiment = {
        f"initial_policy_sentiment_{m}": float(response_sentiment[mood == m].mean())
        for m in ("happy", "sad", "plain")
        if (mood == m).any()
    }
    return sentiment, {
        "initial_policy_mean_gold": float(gold.matrix(prompts, sft_samples).mean()),
        "base_lm_mean_gold": float(gold.matrix(prompts, base_samples).mean()),
        "corpus_mean_gold": float(gold(prompts, [p.continuation for p in passages]).mean()),
    }
