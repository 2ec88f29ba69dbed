"""Stage lm_pretrain's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param


@dataclass(frozen=True)
class LmPretrainParams(StageParams):
    """Corpus split, byte-level BPE tokenizer and GPT-2-style base LM pretrained on the committed
    corpus; writes models/base_lm (committed, so a fresh clone skips this stage)."""

    STAGE = "lm_pretrain"
    seed: int = param(0, "seed of the held-out split, initialisation and batch order", ge=0)
    heldout_passages: int = param(
        2000,
        "documents held out of pretraining; policy-gradient and test prompts come from them",
        ge=10,
    )
    min_passage_words: int = param(40, "minimum words of a held-out document", ge=4)
    vocab_size: int = param(2048, "BPE vocabulary size", ge=300, le=65536)
    n_embd: int = param(64, "model width", ge=8)
    n_layer: int = param(4, "transformer blocks", ge=1)
    n_head: int = param(4, "attention heads", ge=1)
    n_positions: int = param(64, "maximum sequence length of the model", ge=16)
    block_size: int = param(64, "tokens per training sequence", ge=8)
    batch_size: int = param(64, "sequences per step", ge=1)
    epochs: float = param(8.0, "passes over the training tokens", gt=0)
    learning_rate: float = param(3e-3, "peak AdamW learning rate", gt=0)
    warmup_steps: int = param(200, "linear warm-up steps", ge=1)
    weight_decay: float = param(0.1, "AdamW weight decay", ge=0)
    val_fraction: float = param(0.01, "fraction of token blocks kept for validation", gt=0, lt=0.5)
    eval_every: int = param(500, "steps between validation losses", ge=1)

    def check(self) -> None:
        if self.n_embd % self.n_head:
            raise ParamsError(f"{self.STAGE}.n_head: must divide n_embd={self.n_embd}")
        if self.block_size > self.n_positions:
            raise ParamsError(f"{self.STAGE}.block_size: must be <= n_positions")
