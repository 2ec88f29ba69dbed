"""Several initial policies for Section 4.2: the same base LM fine-tuned on different parts of the
corpus, so their output distributions differ the way Pythia-1B SFT, Llama-3.2-1B SFT and
Llama-3.2-1B-Instruct differ in the paper.

* `sft`: the Section 4.1 initial policy (lm_sft), fine-tuned on the whole corpus;
* `sft_austen`: fine-tuned on Jane Austen's paragraphs only (long, formal sentences);
* `sft_quotes`: fine-tuned on WordNet examples and quotations only (short, modern sentences).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from rmteacher.core.paths import SEC42_POLICIES, SFT_POLICY
from rmteacher.lm.world.prompts import instruct

POLICY_SOURCES: dict[str, tuple[str, ...] | None] = {
    "sft": None,
    "sft_austen": ("austen/",),
    "sft_quotes": ("wordnet", "fortunes/"),
}


def policy_path(name: str) -> Path:
    """Where policy `name` is saved: lm_sft's directory for 'sft', else the sec42 stage's."""
    if name not in POLICY_SOURCES:
        raise ValueError(f"unknown policy '{name}'; known: {', '.join(POLICY_SOURCES)}")
    return SFT_POLICY if POLICY_SOURCES[name] is None else SEC42_POLICIES / name


def unigram_distribution(texts: list[str]) -> Counter:
    return Counter(w.lower().strip(".,;:!?\"'()") for t in texts for w in t.split())


def jensen_shannon(a: Counter, b: Counter) -> float:
    """Jensen-Shannon divergence (bits, in [0, 1]) between two word-count distributions."""
    words = sorted(set(a) | set(b))
    p = np.array([a[w] for w in words], dtype=float)
    q = np.array([b[w] for w in words], dtype=float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x, y):
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / y[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def output_profile(responses: list[list[str]], gold_matrix: np.ndarray) -> dict:
    """Summary of a policy's samples: length, distinct words, and r_G statistics."""
    flat = [r for rs in responses for r in rs]
    words = [len(r.split()) for r in flat]
    vocab = unigram_distribution(flat)
    return {
        "mean_words": float(np.mean(words)),
        "distinct_word_ratio": len(vocab) / max(1, sum(vocab.values())),
        "gold_mean": float(gold_matrix.mean()),
        "gold_zero_fraction": float((gold_matrix == 0).mean()),
        "gold_within_prompt_std": float(gold_matrix.std(axis=1, ddof=1).mean()),
    }


def train_variant(
    name: str, sft, n_examples: int, epochs: float, learning_rate: float, batch_size: int, seed: int
):
    """Fine-tune the base LM into policy `name` on its corpus sources only, with the prompt
    format and lengths of the Section 4.1 SFT (`sft`: lm_sft's `SftRecipe`)."""
    # transformers (~2 s): sec42_policies' params import this module (POLICY_SOURCES) for
    # `rmteacher check`, which must not load it
    from rmteacher.lm.world.sft import document_passages, train_policy, training_documents

    sources = POLICY_SOURCES[name]
    if sources is None:
        raise ValueError(f"policy '{name}' is trained by the lm_sft stage, not here")
    passages = instruct(
        document_passages(
            training_documents(sources), n_examples, sft.prompt_words, sft.continuation_words, seed
        ),
        sft,
    )
    return train_policy(
        policy_path(name),
        passages,
        sft,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        seed=seed,
    )
