"""Checks on local model directories that go beyond `models.check_model_source` (which only looks
at config.json): a tokenizer is saved beside the weights, a policy has a chat template, and a
reward model has exactly one output. All read small JSON files; nothing is loaded."""

from __future__ import annotations

import json
from pathlib import Path

from rmteacher.lm.models import check_model_source

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
