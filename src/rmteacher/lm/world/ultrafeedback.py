"""Preference pairs and prompts from a local JSONL file in the schema of UltraFeedback as the paper
uses it (`HuggingFaceH4/ultrafeedback_binarized`): one record per prompt with `prompt`,
`chosen` and `rejected` conversations (lists of {role, content}; the response is the last,
assistant, message) and optional `score_chosen` / `score_rejected`. Nothing is downloaded: a
user exports the split to JSONL once, online, and points the code at the file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

COLUMNS = ["prompt", "chosen", "rejected", "score_chosen", "score_rejected"]


def read_pairs(path: str | Path) -> pd.DataFrame:
    """One row per record: prompt, chosen and rejected responses, their scores (NaN if absent).
    ValueError naming the file and line for a record that does not fit the schema."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"{where} is not valid JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise ValueError(f'{where} has no "prompt" string')
        rows.append(
            {
                "prompt": record["prompt"].strip(),
                "chosen": _response(record, "chosen", where),
                "rejected": _response(record, "rejected", where),
                "score_chosen": float(record.get("score_chosen", "nan")),
                "score_rejected": float(record.get("score_rejected", "nan")),
            }
        )
    if not rows:
        raise ValueError(f"{path} holds no records")
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
