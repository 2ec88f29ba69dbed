"""Building, loading and checking the GPT-2-style policies; device choice (CUDA when present)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch


def device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def check_model_source(spec: str, what: str, *, kind: str = "causal-lm") -> None:
    """Raise a one-line ValueError unless `spec` is a local model directory of the right kind or,
    when online, a plausible Hugging Face Hub id."""
    path = Path(spec)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise ValueError(f"{what}: {spec} has no config.json, so it is not a saved model")
        archs = json.loads(config.read_text()).get("architectures") or []
        suffixes = {
            "causal-lm": ("ForCausalLM", "LMHeadModel"),
            "seq-cls": ("ForSequenceClassification",),
        }[kind]
        if archs and not any(a.endswith(suffixes) for a in archs):
            raise ValueError(f"{what}: {spec} is a {archs[0]}, expected a *{suffixes[0]} model")
        return
    looks_like_hub_id = spec.count("/") <= 1 and not spec.startswith((".", "/", "~"))
    if not looks_like_hub_id or path.suffix:
        raise ValueError(f"{what}: no model directory at {spec}")
    if offline():
        raise ValueError(
            f"{what}: '{spec}' is not a local directory, and Hugging Face Hub ids cannot be "
            "fetched offline (HF_HUB_OFFLINE=1); download it first and pass its path"
        )


def load_tokenizer(spec: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_policy(spec: str, what: str = "policy"):
    """(causal LM in eval mode on `device()`, tokenizer) from a directory or (online) a Hub id."""
    from transformers import AutoModelForCausalLM

    check_model_source(spec, what)
    model = AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32).to(device()).eval()
    return model, load_tokenizer(spec)


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
