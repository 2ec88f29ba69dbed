"""The Section 4.1 world written by the lm_sft stage and read by every later stage: the prompt
splits, the initial policy and the generation settings.

Splits: `sft` (fine-tuning examples) and `rm_train` (one preference pair each) are passages of
pretraining documents; `pg_train` (policy gradient, RM evaluation) and `test` (held-out pairs)
are passages of documents held out of pretraining, `pg_train` and `test` from different
documents.

Each prompt opens with an instruction on the mood of the continuation - the mood the passage
actually goes on in (VADER sentiment of its true continuation beyond +-`mood_threshold`), or a
plain "Continue:" - so that, as with an instruction-following policy, what the policy writes, and
therefore every reward of it, depends on the prompt."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from rmteacher.core.paths import BASE_LM, SFT_POLICY, WORLD
from rmteacher.lm.world.corpus import Passage, windows
from rmteacher.lm.world.ultrafeedback import ultrafeedback_splits

MOODS = {"happy": "In a happy mood, continue:", "sad": "In a sad mood, continue:"}
PLAIN = "Continue:"


def with_instruction(passage: Passage, sentiment: float, threshold: float) -> Passage:
    """The passage with its mood instruction before the prompt."""
    mood = "happy" if sentiment >= threshold else "sad" if sentiment <= -threshold else None
    head = MOODS[mood] if mood else PLAIN
    return Passage(f"{head} {passage.prompt}", passage.continuation, passage.source)


@dataclass
class World:
    """Everything later stages need to sample from the initial policy the same way."""

    prompts: dict[str, list[Passage]]
    max_new_tokens: int
    temperature: float
    policy_dir: str = str(SFT_POLICY)
    base_dir: str = str(BASE_LM)

    def save(self, path: Path = WORLD) -> Path:
        payload = asdict(self)
        for passages in payload["prompts"].values():  # corpus passages have no `rejected`
            for passage in passages:
                if passage["rejected"] is None:
                    del passage["rejected"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, path: Path = WORLD) -> World:
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run the lm_sft stage first")
        data = json.loads(path.read_text())
        data["prompts"] = {k: [Passage(**p) for p in v] for k, v in data["prompts"].items()}
        return cls(**data)

    def prompt_texts(self, split: str) -> list[str]:
        return [p.prompt for p in self.prompts[split]]

    def require(self, split: str, n: int, what: str) -> None:
        """Raise a one-line ValueError if `split` has fewer than `n` prompts (`what` names the
        parameter asking for them)."""
        have = len(self.prompts[split])
        if n > have:
            raise ValueError(f"{what}={n} exceeds the {have} '{split}' prompts (lm_sft params)")

    def generation(self) -> dict:
        """Keyword arguments of `sampling.sample_batches` for on-policy samples."""
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature}


def instruct(passages: list[Passage], params) -> list[Passage]:
    """The passages with their mood instructions, if lm_sft's `params` ask for them."""
    if not params.mood_instructions:
        return list(passages)
    vader = SentimentIntensityAnalyzer()
    return [
        with_instruction(
            p, vader.polarity_scores(p.continuation)["compound"], params.mood_threshold
        )
        for p in passages
    ]


def _passages(docs, params, rng) -> list[Passage]:
    found = [
        w
        for d in docs
        for w in windows(d, params.prompt_words, params.continuation_words, params.window_stride)
    ]
    return instruct([found[i] for i in rng.permutation(len(found))], params)


def make_world(params, tokenizer=None) -> World:
    """Seeded, disjoint prompt splits from `LmSftParams` (see the module docstring), or with
    `params.prompt_data` UltraFeedback's (`ultrafeedback.ultrafeedback_splits`; `tokenizer`, the
    base policy's, measures lengths); a split that cannot be filled is a one-line ValueError."""
    if params.prompt_data:
        prompts = ultrafeedback_splits(params, tokenizer)
        return World(
            prompts, params.max_new_tokens, params.temperature, base_dir=params.base_policy
        )

    # torch and transformers (~2 s): sec42_policies' params import this module (through
    # lm.world.policies) for `rmteacher check`, which must not load them
    from rmteacher.lm.world.base_lm import heldout_documents
    from rmteacher.lm.world.sft import training_documents

    rng = np.random.default_rng(params.seed)
    heldout = heldout_documents()
    order = rng.permutation(len(heldout))
    n_test_docs = max(
        1,
        round(len(heldout) * params.n_test_prompts / (params.n_test_prompts + params.n_pg_prompts)),
    )
    test_docs = [heldout[i] for i in order[:n_test_docs]]
    pg_docs = [heldout[i] for i in order[n_test_docs:]]
    train = _passages(training_documents(), params, rng)
    pools = {
        "sft": (train, 0, params.n_sft_examples),
        "rm_train": (train, params.n_sft_examples, params.n_rm_prompts),
        "pg_train": (_passages(pg_docs, params, rng), 0, params.n_pg_prompts),
        "test": (_passages(test_docs, params, rng), 0, params.n_test_prompts),
    }
    prompts = {}
    for split, (pool, start, size) in pools.items():
        if start + size > len(pool):
            raise ValueError(
                f"lm_sft: the '{split}' split needs {size} passages, only {len(pool) - start} "
                f"are available (lower lm_sft.window_stride or the split sizes)"
            )
        prompts[split] = pool[start : start + size]
    return World(prompts, params.max_new_tokens, params.temperature, base_dir=params.base_policy)
