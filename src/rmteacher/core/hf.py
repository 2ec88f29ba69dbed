"""Generic Hugging Face helpers shared by every track: device choice (CUDA when present), offline
mode, checks on model sources (local directories or Hub ids) that read only small JSON files, and
loading a causal LM with its tokenizer."""

from __future__ import annotations

import json
import os
from pathlib import Path


def device():
    """The torch device to compute on: CUDA when available, else CPU."""
    # torch (~1 s): `rmteacher check` imports this module and must not load it
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


# Names ending so are files, not Hub ids.
FILE_SUFFIXES = (".json", ".jsonl", ".bin", ".pt", ".pth", ".safetensors", ".txt", ".csv", ".npy")


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
            "any": ("",),
        }[kind]
        if archs and not any(a.endswith(suffixes) for a in archs):
            raise ValueError(f"{what}: {spec} is a {archs[0]}, expected a *{suffixes[0]} model")
        return
    looks_like_hub_id = spec.count("/") <= 1 and not spec.startswith((".", "/", "~"))
    if not looks_like_hub_id or path.suffix in FILE_SUFFIXES:  # (pythia-2.8b is an id)
        raise ValueError(f"{what}: no model directory at {spec}")
    if offline():
        raise ValueError(
            f"{what}: '{spec}' is not a local directory, and Hugging Face Hub ids cannot be "
            "fetched offline (HF_HUB_OFFLINE=1); download it first and pass its path"
        )


def load_tokenizer(spec: str):
    # transformers (~0.6 s): `rmteacher check` imports this module and must not load it
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    tok.truncation_side = "left"  # a prompt cut to fit the context keeps the words it continues
    return tok


def load_policy(spec: str, what: str = "policy"):
    """(causal LM in eval mode on `device()`, tokenizer) from a directory or (online) a Hub id."""
    # torch and transformers (~1.5 s): `rmteacher check` imports this module, never them
    import torch
    from transformers import AutoModelForCausalLM

    check_model_source(spec, what)
    model = AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32).to(device()).eval()
    return model, load_tokenizer(spec)


def context_length(config) -> int | None:
    """Tokens the model reads at most: GPT-2's `n_positions`, or `max_position_embeddings` for
    the other families (GPT-NeoX/Pythia, Llama, ...); None when the config states neither."""
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


# Any of these means `AutoTokenizer.from_pretrained(dir)` has something to load.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
)


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{what}: cannot read {path} ({type(err).__name__})") from None


def check_tokenizer_files(spec: str, what: str) -> None:
    """A local model directory must hold its tokenizer (Hub ids are not checked)."""
    path = Path(spec)
    if path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ValueError(
            f"{what}: {spec} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer next to the model"
        )


def has_chat_template(directory: Path) -> bool:
    """Whether a saved tokenizer carries a chat template (transformers 5 writes a .jinja file)."""
    if (directory / "chat_template.jinja").is_file() or (
        directory / "chat_template.json"
    ).is_file():
        return True
    config = directory / "tokenizer_config.json"
    return config.is_file() and bool(_read_json(config, str(directory)).get("chat_template"))


def check_policy_source(spec: str, what: str = "policy") -> None:
    """A causal LM directory (or, online, Hub id) whose tokenizer can format chat prompts."""
    check_model_source(spec, what, kind="causal-lm")
    check_tokenizer_files(spec, what)
    path = Path(spec)
    if path.is_dir() and not has_chat_template(path):
        raise ValueError(
            f"{what}: the tokenizer in {spec} has no chat template, so prompts "
            "cannot be formatted as a user turn"
        )


def n_outputs(config: dict) -> int:
    """Number of logits of a saved sequence-classification head (transformers' default is 2)."""
    labels = config.get("id2label")
    return len(labels) if labels else int(config.get("num_labels", 2))


def check_reward_model_dir(spec: str, what: str = "reward model") -> None:
    """A local sequence-classification directory must have one output and a tokenizer (call after
    `check_model_source(spec, what, kind="seq-cls")`; Hub ids pass unchecked)."""
    path = Path(spec)
    if not path.is_dir():
        return
    outputs = n_outputs(_read_json(path / "config.json", what))
    if outputs != 1:
        raise ValueError(f"{what}: {spec} has {outputs} outputs, expected a one-output reward head")
    check_tokenizer_files(spec, what)
