"""Stage lm_pretrain: the corpus split, a byte-level BPE tokenizer and a GPT-2-style base LM
pretrained on the committed corpus. Its outputs (models/base_lm) are committed to git, so a fresh
clone finds the stage up to date and never retrains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.lm.world.base_lm import build_base_lm
from rmteacher.stages.lm.params.lm_pretrain import LmPretrainParams

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class PretrainResult:
    """`history`: validation and training loss every `eval_every` steps; `metrics`: model size,
    tokens seen and the final validation loss and perplexity."""

    history: pd.DataFrame
    metrics: dict


def run(params: LmPretrainParams) -> PretrainResult:
    """Train the tokenizer and the base LM and save both (and the held-out document indices)."""
    history, summary = build_base_lm(params)
    return PretrainResult(history, summary)
