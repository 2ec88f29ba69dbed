"""The initial policy: supervised fine-tuning of the base LM (trl SFTTrainer, completion-only
loss) on prompt -> continuation exchanges cut from training documents, or on the paper's SFT data
(AlpacaFarm, UltraFeedback's preferred responses) for a Hub policy."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

from rmteacher.core import paths
from rmteacher.core.hf import context_length, load_tokenizer
from rmteacher.lm.trainers import CoarseProgress, log_table, quiet, trainer_kwargs
from rmteacher.lm.world.corpus import Passage, load_documents, to_passage


@dataclass(frozen=True)
class SftRecipe:
    """How lm_sft fine-tuned the initial policy, as far as another policy fine-tuned "the same
    way" needs it (sec42_policies): the base policy, the passage format (prompt and continuation
    words, mood instructions and their VADER threshold) and the lengths. lm_sft saves it beside
    its outputs (artifacts/lm_sft/recipe.json), so a later stage reads it as a declared
    dependency rather than lm_sft's params."""

    base_policy: str
    prompt_data: str
    sft_data: str
    max_text_tokens: int
    prompt_words: int
    continuation_words: int
    mood_instructions: bool
    mood_threshold: float
    max_new_tokens: int

    @classmethod
    def of(cls, params) -> SftRecipe:
        """The recipe of lm_sft's params (any object with these fields)."""
        return cls(**{name: getattr(params, name) for name in cls.__dataclass_fields__})

    def save(self, path: Path = paths.SFT_RECIPE) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Path = paths.SFT_RECIPE) -> SftRecipe:
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run the lm_sft stage first")
        return cls(**json.loads(path.read_text()))


def document_passages(
    docs: list[dict], n: int, prompt_words: int, continuation_words: int, seed: int
) -> list[Passage]:
    """`n` passages, one per document drawn without replacement (seeded): its first words as the
    prompt - `prompt_words`, or fewer in a short document so that at least three words are left
    to continue - and up to `continuation_words` words after them."""
    eligible = [d for d in docs if len(d["text"].split()) >= 6]
    if not eligible:
        raise ValueError("no training document is long enough for a prompt and a continuation")
    order = np.random.default_rng(seed).permutation(len(eligible))[:n]
    passages = []
    for i in order:
        words = len(eligible[i]["text"].split())
        passages.append(to_passage(eligible[i], min(prompt_words, words - 3), continuation_words))
    return passages


def chat_rows(passages: list[Passage]) -> list[dict]:
    """One chat example per passage: the user turn is the prompt, the assistant's the
    continuation."""
    return [
        {
            "messages": [
                {"role": "user", "content": passage.prompt},
                {"role": "assistant", "content": passage.continuation},
            ]
        }
        for passage in passages
    ]


# The paper's chat format for a tokenizer that has none (Pythia):
# `<|user|>x<eos><|assistant|>y<eos>` with the markers as plain text, as the official code
# formats it; the assistant turn is marked for trl's completion-only loss.
PAPER_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}{{ eos_token }}"
    "{% elif message['role'] == 'assistant' %}<|assistant|>{% generation %}"
    "{{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def marks_completions(template: str) -> bool:
    """Whether a chat template marks the assistant turn for trl's `assistant_only_loss`."""
    return "generation %}" in template


def prompt_completion_rows(rows: list[dict]) -> list[dict]:
    """Chat rows as trl's conversational prompt/completion examples (loss on the completion)."""
    return [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]


def finetune(
    base_dir: str,
    out_dir: Path,
    rows: list[dict],
    *,
    epochs: float,
    learning_rate: float,
    batch_size: int,
    max_length: int,
    seed: int,
):
    """Fine-tune the causal LM at `base_dir` on chat `rows` (loss on the assistant turn); save
    model and tokenizer to `out_dir`. A tokenizer without a chat template gets the paper's; one
    whose template does not mark the assistant turn trains on prompt/completion examples.
    Returns the per-step log (loss, grad_norm, mean_token_accuracy, ...)."""

    tokenizer = load_tokenizer(base_dir)
    if not tokenizer.chat_template:
        tokenizer.chat_template = PAPER_CHAT_TEMPLATE
    marked = marks_completions(tokenizer.chat_template)
    if not marked:
        rows = prompt_completion_rows(rows)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    max_length = min(max_length, context_length(model.config) or max_length)
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            **trainer_kwargs(scratch, seed),
            per_device_train_batch_size=batch_size,
            num_train_epochs=epochs,
            learning_rate=learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=0.05,
            max_length=max_length,
            assistant_only_loss=marked,
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[CoarseProgress("sft")],
        )
        quiet(trainer).train()
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return log_table(trainer)


def training_documents(sources: tuple[str, ...] | None = None) -> list[dict]:
    """Pretraining documents (never the held-out prompt passages of lm_pretrain), optionally
    only those whose source starts with one of `sources`."""

    path = paths.HELDOUT_DOCUMENTS
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the lm_pretrain stage first")
    heldout = set(json.loads(path.read_text()))
    docs = [d for i, d in enumerate(load_documents()) if i not in heldout]
    if sources is not None:
        docs = [d for d in docs if d["source"].startswith(tuple(sources))]
    if not docs:
        raise ValueError(f"no training document comes from {', '.join(sources or [])}")
    return docs


def train_policy(
    out_dir: Path,
    passages: list[Passage],
    sft,
    *,
    epochs: float,
    learning_rate: float,
    batch_size: int,
    seed: int,
):
    """Fine-tune `sft.base_policy` (lm_sft's validated params) on the passages as prompt ->
    continuation exchanges, long enough for its texts; returns the log."""
    return finetune(
        sft.base_policy,
        out_dir,
        chat_rows(passages),
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_length=sft_max_length(sft),
        seed=seed,
    )


def sft_max_length(sft) -> int:
    """Tokens of one fine-tuning example at most: a corpus prompt (about three tokens a word)
    and a response, or an UltraFeedback prompt and response of `max_text_tokens` each, with the
    chat markers."""
    if sft.prompt_data or sft.sft_data:
        return 2 * sft.max_text_tokens + 16
    return sft.prompt_words * 3 + sft.max_new_tokens + 8
