"""Stage lm_sft's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rmteacher.core.hf import check_model_source, check_tokenizer_files
from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.lm.world.ultrafeedback import TEST_SPLIT, TRAIN_SPLIT, check_data_source


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
