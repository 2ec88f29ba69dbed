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
        check_model_files(path, what)
        archs = _read_json(config, what).get("architectures") or []
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
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        detail = f": {err}" if isinstance(err, json.JSONDecodeError) else ""
        raise ValueError(
            f"{what}: {path} is not valid JSON ({type(err).__name__}{detail})"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{what}: {path} holds a {type(data).__name__}, not a JSON object")
    return data


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def check_safetensors(path: Path, what: str) -> None:
    """The file's header parses and the file holds every byte the header describes (a truncated
    or zeroed file fails here, before any model is built)."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        head = stream.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else 0
        if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(
                f"{what}: {path} is not a readable safetensors file ({size} bytes; its header "
                "is missing, zeroed or cut off)"
            )
        try:
            header = json.loads(stream.read(length))
            ends = [
                int(info["data_offsets"][1])
                for key, info in header.items()
                if key != "__metadata__"
            ]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
            raise ValueError(f"{what}: {path} has a corrupt safetensors header") from None
    needed = 8 + length + max(ends, default=0)
    if size < needed:
        raise ValueError(f"{what}: {path} is truncated ({size} of {needed} bytes)")


def _check_weight_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise ValueError(f"{what}: {path} is missing")
    if path.suffix == ".safetensors":
        check_safetensors(path, what)
        return
    import zipfile  # torch.save's format: the central directory sits at the end

    with path.open("rb") as stream:
        is_zip = stream.read(4) == b"PK\x03\x04"
    if is_zip and not zipfile.is_zipfile(path):
        raise ValueError(
            f"{what}: {path} is truncated or corrupt (its zip directory is unreadable)"
        )
    if path.stat().st_size == 0 or (not is_zip and not path.read_bytes()[:2].startswith(b"\x80")):
        raise ValueError(f"{what}: {path} is not a saved torch state (empty or zeroed)")


def check_model_files(folder: str | Path, what: str) -> None:
    """A saved model folder loads: config.json, every JSON tokenizer file and every weight file
    (or shard) parse, the weights' headers agree with their sizes. One line naming the file and
    what is wrong with it; reads headers only."""
    folder = Path(folder)
    _read_json(folder / "config.json", what)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "special_tokens_map.json",
    ):
        if (folder / name).is_file():
            _read_json(folder / name, what)
    for name in INDEX_FILES:
        if (folder / name).is_file():
            shards = set(_read_json(folder / name, what).get("weight_map", {}).values())
            for shard in sorted(shards):
                _check_weight_file(folder / shard, what)
            return
    present = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        raise ValueError(f"{what}: {folder} has no weights ({', '.join(WEIGHT_FILES)})")
    for path in present:
        _check_weight_file(path, what)


def model_folders(path: Path, depth: int = 3) -> list[Path]:
    """Saved model folders (a config.json beside weights or a tokenizer) at or below `path`."""
    path = Path(path)
    if not path.is_dir():
        return []
    beside = WEIGHT_FILES + INDEX_FILES + TOKENIZER_FILES
    if (path / "config.json").is_file() and any((path / n).is_file() for n in beside):
        return [path]
    if depth == 0:
        return []
    found = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink()):
        found += model_folders(child, depth - 1)
    return found


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
