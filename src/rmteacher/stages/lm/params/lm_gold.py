"""Stage lm_gold's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param


@dataclass(frozen=True)
class GoldParams(StageParams):
    """The ground-truth reward r_G: a GPT-2 regressor of the VADER compound sentiment of prompt +
    response, trained once on passages of pretraining documents with corpus and base-LM responses
    and committed (models/gold_rm)."""

    STAGE = "lm_gold"
    seed: int = param(
        0, "seed of the passages, the base-LM samples, initialisation and order", ge=0
    )
    n_passages: int = param(30000, "passages (each with one response per source)", ge=100)
    min_prompt_words: int = param(8, "shortest prompt, in words", ge=1)
    max_prompt_words: int = param(24, "longest prompt, in words", ge=1)
    continuation_words: int = param(16, "words of the corpus continuation", ge=1)
    max_new_tokens: int = param(16, "tokens of each base-LM response", ge=1)
    temperatures: tuple[float, ...] = param(
        (0.7, 1.0, 1.3), "temperatures of the base-LM responses (one source each)", gt=0
    )
    n_embd: int = param(128, "width of the reward model", ge=8)
    n_layer: int = param(4, "transformer blocks", ge=1)
    n_head: int = param(4, "attention heads", ge=1)
    epochs: float = param(2.0, "passes over the training examples", gt=0)
    learning_rate: float = param(1e-3, "peak learning rate (cosine schedule)", gt=0)
    batch_size: int = param(128, "examples per step", ge=1)
    heldout_fraction: float = param(0.05, "passages held out to measure agreement", gt=0, lt=0.5)

    def check(self) -> None:
        if self.min_prompt_words > self.max_prompt_words:
            raise ParamsError(f"{self.STAGE}.min_prompt_words: must be <= max_prompt_words")
        if self.n_embd % self.n_head:
            raise ParamsError(f"{self.STAGE}.n_head: must divide n_embd={self.n_embd}")
