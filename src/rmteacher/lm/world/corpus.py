"""The committed corpus (data/corpus/corpus.jsonl.gz), its seeded split into pretraining text and
held-out documents, and the prompt task: continue a passage from its first words."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rmteacher.core.paths import CORPUS


@dataclass(frozen=True)
class Passage:
    """A corpus document cut into a prompt (its first words) and the true continuation; or, in
    the UltraFeedback world, a prompt with its preferred response as `continuation` and the
    other one as `rejected` (None for corpus passages)."""

    prompt: str
    continuation: str
    source: str
    rejected: str | None = None


def load_documents(path: str | Path = CORPUS) -> list[dict]:
    """All documents as {"source", "text"} dicts, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"corpus not found at {path}; rebuild it with scripts/build_corpus.py"
        )
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle if line.strip()]
    if not docs:
        raise ValueError(f"{path}: the corpus is empty")
    return docs


def to_passage(doc: dict, prompt_words: int, continuation_words: int) -> Passage:
    words = doc["text"].split()
    return Passage(
        prompt=" ".join(words[:prompt_words]),
        continuation=" ".join(words[prompt_words : prompt_words + continuation_words]),
        source=doc["source"],
    )


def windows(doc: dict, prompt_words: int, continuation_words: int, stride: int) -> list[Passage]:
    """Every passage of `prompt_words` + `continuation_words` words that starts at a multiple
    of `stride` words into the document."""
    words = doc["text"].split()
    need = prompt_words + continuation_words
    return [
        Passage(
            prompt=" ".join(words[start : start + prompt_words]),
            continuation=" ".join(words[start + prompt_words : start + need]),
            source=doc["source"],
        )
        for start in range(0, len(words) - need + 1, stride)
    ]


def split_corpus(
    docs: list[dict], n_heldout: int, min_words: int, seed: int
) -> tuple[list[dict], list[int]]:
    """(training documents, sorted indices of held-out documents). Held-out documents are drawn
    (seeded) among those with at least `min_words` words, so each can give a prompt and a
    continuation; they never appear in pretraining or fine-tuning text."""
    eligible = [i for i, d in enumerate(docs) if len(d["text"].split()) >= min_words]
    if n_heldout > len(eligible):
        raise ValueError(f"asked for {n_heldout} held-out passages, only {len(eligible)} eligible")
    rng = np.random.default_rng(seed)
    heldout = set(rng.choice(eligible, size=n_heldout, replace=False).tolist())
    train = [d for i, d in enumerate(docs) if i not in heldout]
    return train, sorted(heldout)
