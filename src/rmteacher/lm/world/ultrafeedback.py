"""The paper's own data, read from records: UltraFeedback in the schema the paper uses
(`HuggingFaceH4/ultrafeedback_binarized`: one record per prompt with `prompt`, `chosen` and
`rejected` conversations - lists of {role, content} whose last, assistant, message is the
response - and optional `score_chosen` / `score_rejected`), and supervised fine-tuning data
(AlpacaFarm's `instruction` / `input` / `output`, chat `messages`, or UltraFeedback's
`prompt` / `chosen`).

A data source is a JSONL file, a folder holding `<split>.jsonl` files, or (online) a Hub
dataset id read with `datasets.load_dataset(id, split=split)`. Offline, export the splits to
JSONL once and point the parameters at the folder.

`ultrafeedback_splits` builds the paper's Section 4.1 splits (App. F.1): records whose prompt or
either response is longer than `max_text_tokens` policy tokens are dropped, and the training
records are split 80/20 into RM-training pairs and policy-gradient prompts as `datasets`'
`train_test_split(test_size=0.2, seed=1283)` splits them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rmteacher.core.hf import offline
from rmteacher.lm.world.corpus import Passage

if TYPE_CHECKING:  # pandas is imported where used: `rmteacher check` reads this module
    import pandas as pd

COLUMNS = ["prompt", "chosen", "rejected", "score_chosen", "score_rejected"]
TRAIN_SPLIT, TEST_SPLIT = "train_prefs", "test_prefs"


def split_file(source: str | Path, split: str) -> Path | None:
    """The local JSONL file holding `split` of a source (the file itself, or `<split>.jsonl`
    in a folder); None for a Hub dataset id."""
    path = Path(source)
    if path.is_dir():
        return path / f"{split}.jsonl"
    hub_like = str(source).count("/") == 1 and not str(source).startswith((".", "/", "~"))
    if path.exists() or path.suffix in (".jsonl", ".json") or not hub_like:
        return path
    return None


def check_data_source(source: str, splits: tuple[str, ...], what: str) -> None:
    """A one-line ValueError unless every split of `source` is a local JSONL file or, online,
    `source` looks like a Hub dataset id (nothing is read or downloaded)."""
    for split in splits:
        local = split_file(source, split)
        if local is not None and not local.is_file():
            raise ValueError(f"{what}: no {split} data at {local}")
    if split_file(source, splits[0]) is None:
        if offline():
            raise ValueError(
                f"{what}: '{source}' is not a local file or folder, and Hub datasets cannot be "
                "fetched offline (HF_HUB_OFFLINE=1); export its splits to JSONL first"
            )


def load_records(source: str | Path, split: str, config: str = "") -> tuple[list[dict], str]:
    """(records of one split, a label for error messages); `config` names a Hub dataset's
    configuration."""
    local = split_file(source, split)
    if local is None:
        # datasets (~0.7 s), for Hub data only: lm_sft's params import this module for
        # `rmteacher check`
        from datasets import load_dataset

        records = load_dataset(str(source), config or None, split=split)
        return list(records), f"{source}[{split}]"
    records = []
    for number, line in enumerate(local.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(f"{local}:{number} is not valid JSON") from None
    if not records:
        raise ValueError(f"{local} holds no records")
    return records, str(local)


def read_pairs(path: str | Path, split: str = TRAIN_SPLIT) -> pd.DataFrame:
    """One row per record: prompt, chosen and rejected responses, their scores (NaN if absent).
    ValueError naming the file and record for one that does not fit the schema."""
    records, where = load_records(path, split)
    return pairs_frame(records, where)


def pairs_frame(records: list[dict], where: str) -> pd.DataFrame:
    """The pairs of `records` (see `read_pairs`); `where` names their source in errors."""
    import pandas as pd  # ~0.4 s: lm_sft's params import this module for `rmteacher check`

    rows = []
    for number, record in enumerate(records, start=1):
        at = f"{where}:{number}"
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise ValueError(f'{at} has no "prompt" string')
        rows.append(
            {
                "prompt": record["prompt"].strip(),
                "chosen": _response(record, "chosen", at),
                "rejected": _response(record, "rejected", at),
                "score_chosen": float(record.get("score_chosen", "nan")),
                "score_rejected": float(record.get("score_rejected", "nan")),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _response(record: dict, key: str, where: str) -> str:
    messages = record.get(key)
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not (isinstance(last, dict) and last.get("role") == "assistant"):
        raise ValueError(f'{where}: "{key}" must be a conversation ending in an assistant message')
    return str(last.get("content", "")).strip()


def sft_rows(pairs: pd.DataFrame) -> list[dict]:
    """Chat examples for supervised fine-tuning on the preferred responses, as the paper's SFT
    on UltraFeedback's RM-training split (prompt -> chosen)."""
    return [
        {
            "messages": [
                {"role": "user", "content": row.prompt},
                {"role": "assistant", "content": row.chosen},
            ]
        }
        for row in pairs.itertuples(index=False)
    ]


def sft_passage(record: dict, where: str) -> Passage:
    """One fine-tuning example as (user turn, assistant turn): chat `messages` (the last user
    and assistant turns), AlpacaFarm's instruction (+ input) -> output, or UltraFeedback's
    prompt -> chosen."""
    if isinstance(record.get("messages"), list):
        turns = {m.get("role"): m.get("content") for m in record["messages"] if isinstance(m, dict)}
        if isinstance(turns.get("user"), str) and isinstance(turns.get("assistant"), str):
            return Passage(turns["user"].strip(), turns["assistant"].strip(), "sft_data")
    if isinstance(record.get("instruction"), str) and isinstance(record.get("output"), str):
        parts = [record["instruction"].strip(), str(record.get("input") or "").strip()]
        return Passage("\n\n".join(p for p in parts if p), record["output"].strip(), "sft_data")
    if isinstance(record.get("prompt"), str) and "chosen" in record:
        return Passage(record["prompt"].strip(), _response(record, "chosen", where), "sft_data")
    raise ValueError(
        f"{where}: expected chat `messages`, instruction/output (AlpacaFarm) or prompt/chosen "
        "(UltraFeedback) fields"
    )


def sft_passages(source: str, split: str, n: int, config: str = "") -> list[Passage]:
    """The first `n` fine-tuning examples of a data source; one line if it has fewer."""
    records, where = load_records(source, split, config)
    if len(records) < n:
        raise ValueError(f"lm_sft.n_sft_examples={n} exceeds the {len(records)} records of {where}")
    return [sft_passage(r, f"{where}:{i + 1}") for i, r in enumerate(records[:n])]


def fits(tokenizer, frame: pd.DataFrame, max_tokens: int) -> np.ndarray:
    """Whether the prompt and both responses of each pair are at most `max_tokens` tokens."""
    longest = np.zeros(len(frame), dtype=int)
    for column in ("prompt", "chosen", "rejected"):
        ids = tokenizer(frame[column].tolist(), add_special_tokens=False)["input_ids"]
        longest = np.maximum(longest, [len(i) for i in ids])
    return longest <= max_tokens


def train_test_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices as `datasets.Dataset.train_test_split(test_size=test_fraction,
    seed=seed)` draws them: one permutation, the first ceil(test_fraction * n) are the test."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = math.ceil(test_fraction * n)
    return order[n_test:], order[:n_test]


def ultrafeedback_splits(params, tokenizer) -> dict[str, list[Passage]]:
    """lm_sft's splits from UltraFeedback (see the module docstring): `rm_train` and `pg_train`
    from `train_prefs`, `test` from `test_prefs`, each a prompt with its recorded preferred
    response (`continuation`) and other response (`rejected`); `sft` from `params.sft_data`, or
    the RM-training split's preferred responses when it is empty."""
    splits = {}
    for split in (TRAIN_SPLIT, TEST_SPLIT):
        records, where = load_records(params.prompt_data, split)
        frame = pairs_frame(records, where)
        splits[split] = frame[fits(tokenizer, frame, params.max_text_tokens)].reset_index(drop=True)
    train = splits[TRAIN_SPLIT]
    rm_rows, pg_rows = train_test_split(len(train), params.pg_fraction, params.split_seed)
    pools = {
        "rm_train": (train.iloc[rm_rows], params.n_rm_prompts),
        "pg_train": (train.iloc[pg_rows], params.n_pg_prompts),
        "test": (splits[TEST_SPLIT], params.n_test_prompts),
    }
    prompts = {}
    for split, (frame, size) in pools.items():
        if size > len(frame):
            raise ValueError(
                f"lm_sft: the '{split}' split needs {size} prompts, {params.prompt_data} has "
                f"{len(frame)} within {params.max_text_tokens} tokens (lower the split sizes)"
            )
        prompts[split] = [
            Passage(r.prompt, r.chosen, "ultrafeedback", r.rejected)
            for r in frame.head(size).itertuples(index=False)
        ]
    if params.sft_data:
        prompts["sft"] = sft_passages(
            params.sft_data, params.sft_split, params.n_sft_examples, params.sft_config
        )
    else:
        if params.n_sft_examples > len(prompts["rm_train"]):
            raise ValueError(
                f"lm_sft.n_sft_examples={params.n_sft_examples} exceeds the "
                f"{len(prompts['rm_train'])} RM-training prompts it fine-tunes on"
            )
        prompts["sft"] = prompts["rm_train"][: params.n_sft_examples]
    return {split: prompts[split] for split in ("sft", "rm_train", "pg_train", "test")}
