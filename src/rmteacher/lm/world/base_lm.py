"""The lm_pretrain stage's work: held-out split, tokenizer, base-LM pretraining, saving."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rmteacher.core.hf import device, n_parameters
from rmteacher.core.paths import BASE_LM, HELDOUT_DOCUMENTS
from rmteacher.lm.world.corpus import load_documents, split_corpus
from rmteacher.lm.world.pretrain import PretrainConfig, pretrain, token_blocks
from rmteacher.lm.world.tokenizer import train_tokenizer


def new_gpt2(tokenizer, n_embd: int, n_layer: int, n_head: int, n_positions: int, seed: int):
    """A freshly initialised GPT-2 whose special token ids come from `tokenizer`."""

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,  # no dropout, like the paper's Pythia models: RL log-probs stay exact
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def build_base_lm(params, out_dir: Path = BASE_LM) -> tuple[pd.DataFrame, dict]:
    """Train tokenizer and base LM from `LmPretrainParams`; save both (and the held-out document
    indices) to `out_dir`. Returns (loss history, summary metrics)."""
    start = time.perf_counter()
    docs = load_documents()
    train_docs, heldout_ids = split_corpus(
        docs, params.heldout_passages, params.min_passage_words, params.seed
    )
    texts = [d["text"] for d in train_docs]
    tokenizer = train_tokenizer(texts, params.vocab_size)
    blocks = token_blocks(tokenizer, texts, params.block_size)
    order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(params.seed))
    n_val = max(1, int(params.val_fraction * len(blocks)))
    val, train = blocks[order[:n_val]], blocks[order[n_val:]]
    model = new_gpt2(
        tokenizer, params.n_embd, params.n_layer, params.n_head, params.n_positions, params.seed
    ).to(device())
    cfg = PretrainConfig(
        block_size=params.block_size,
        batch_size=params.batch_size,
        epochs=params.epochs,
        learning_rate=params.learning_rate,
        warmup_steps=params.warmup_steps,
        weight_decay=params.weight_decay,
        eval_every=params.eval_every,
        seed=params.seed,
    )
    history = pretrain(model, train, val, cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / HELDOUT_DOCUMENTS.name).write_text(json.dumps(heldout_ids))
    final = history[-1]
    summary = {
        "n_parameters": n_parameters(model),
        "vocab_size": len(tokenizer),
        "train_documents": len(train_docs),
        "heldout_documents": len(heldout_ids),
        "train_tokens": int(train.numel()),
        "tokens_seen": final["tokens"],
        "final_val_loss": final["val_loss"],
        "final_val_perplexity": float(np.exp(final["val_loss"])),
        "pretrain_seconds": time.perf_counter() - start,
    }
    return pd.DataFrame(history), summary


def heldout_documents(base_dir: Path = BASE_LM) -> list[dict]:
    """The held-out documents recorded by lm_pretrain (never seen in pretraining)."""
    path = base_dir / HELDOUT_DOCUMENTS.name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the lm_pretrain stage first")
    docs = load_documents()
    return [docs[i] for i in json.loads(path.read_text())]
