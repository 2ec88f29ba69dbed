"""The ground-truth reward r_G of the language world: a transformer reward model trained once, by
regression, to predict the VADER compound sentiment of a whole passage (the prompt followed by the
response), and committed like the base LM - the role ArmoRM plays in the paper.

Why learned and why the whole passage: VADER alone scores many short responses exactly 0, so it
ties a large share of sample pairs and its accuracy counts ties; read on the response only, it
leaves the prompt no say, so almost none of a reward's spread lies between prompts. A smooth
model of VADER on prompt + response has neither problem: it never ties, and a prompt's own
sentiment moves every response's reward, as ArmoRM's scores move with the instruction.

Training examples are passages of pretraining documents (prompt lengths drawn from a range, so the
model does not depend on one length) with responses from several sources: the corpus continuation
and base-LM samples at several temperatures. Everything is formatted with the chat template, so
r_G reads exactly what a policy's sample looks like.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from scipy import stats
from transformers import (
    DataCollatorWithPadding,
    GPT2Config,
    GPT2ForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from rmteacher.lm.trainers import CoarseProgress, log_table, quiet, trainer_kwargs
from rmteacher.lm.world.corpus import Passage, windows
from rmteacher.lm.world.sampling import sample_responses


def passages_of_varied_length(
    docs: list[dict], n: int, min_words: int, max_words: int, continuation_words: int, seed: int
) -> list[Passage]:
    """`n` passages with a prompt of `min_words`..`max_words` words (uniform, seeded)."""
    rng = np.random.default_rng(seed)
    found = [w for d in docs for w in windows(d, max_words, continuation_words, stride=8)]
    if len(found) < n:
        raise ValueError(f"lm_gold.n_passages={n} exceeds the {len(found)} available passages")
    chosen = [found[i] for i in rng.permutation(len(found))[:n]]
    out = []
    for passage, k in zip(chosen, rng.integers(min_words, max_words + 1, size=n), strict=True):
        words = passage.prompt.split() + passage.continuation.split()
        out.append(
            Passage(
                " ".join(words[:k]),
                " ".join(words[k : k + continuation_words]),
                passage.source,
            )
        )
    return out


def vader_passage(prompts, responses) -> np.ndarray:
    """VADER compound sentiment of each prompt followed by its response."""

    analyzer = SentimentIntensityAnalyzer()
    return np.array(
        [
            analyzer.polarity_scores(f"{p} {r}")["compound"]
            for p, r in zip(prompts, responses, strict=True)
        ]
    )


def training_examples(
    base, tokenizer, passages, temperatures, max_new_tokens, seed
) -> pd.DataFrame:
    """One row per (passage, response source): prompt, response, source and the VADER label."""

    prompts = [p.prompt for p in passages]
    frames = [
        pd.DataFrame(
            {"prompt": prompts, "response": [p.continuation for p in passages], "source": "corpus"}
        )
    ]
    for index, temperature in enumerate(temperatures):
        samples = sample_responses(
            base,
            tokenizer,
            prompts,
            1,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed + 1 + index,
            chat=False,
            batch_size=512,
            desc=f"base LM samples at temperature {temperature:g}",
        )
        frames.append(
            pd.DataFrame(
                {
                    "prompt": prompts,
                    "response": [s[0] for s in samples],
                    "source": f"base_t{temperature:g}",
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    return frame.assign(label=vader_passage(frame.prompt, frame.response))


def new_reward_model(tokenizer, n_embd: int, n_layer: int, n_head: int, n_positions: int, seed):
    """A freshly initialised one-output GPT-2 regressor on `tokenizer`'s vocabulary."""

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        num_labels=1,
        problem_type="regression",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(seed)
    return GPT2ForSequenceClassification(config)


def chat_texts(tokenizer, prompts, responses) -> list[str]:
    """The text a reward model reads: the user turn and the assistant's response."""
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False
        )
        for p, r in zip(prompts, responses, strict=True)
    ]


def fit(model, tokenizer, train: pd.DataFrame, *, epochs, learning_rate, batch_size, seed):
    """Regress the labels with transformers' Trainer (mean squared error); returns the log."""

    encoded = tokenizer(
        chat_texts(tokenizer, train.prompt, train.response),
        add_special_tokens=False,
        truncation=True,
        max_length=model.config.n_positions,
    )
    dataset = Dataset.from_dict({**encoded, "labels": train.label.astype("float32").tolist()})
    with tempfile.TemporaryDirectory() as scratch:
        kwargs = trainer_kwargs(scratch, seed)
        kwargs.pop("gradient_checkpointing")
        kwargs["logging_steps"] = 10
        args = TrainingArguments(
            **kwargs,
            per_device_train_batch_size=batch_size,
            num_train_epochs=epochs,
            learning_rate=learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=0.05,
            weight_decay=0.01,
        )
        collator = DataCollatorWithPadding(tokenizer, padding=True)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=collator,
            callbacks=[CoarseProgress("r_G regression")],
        )
        quiet(trainer).train()
    return log_table(trainer)


def save(model, tokenizer, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def agreement(scores: np.ndarray, labels: np.ndarray, pairs: np.ndarray) -> dict:
    """How well r_G reproduces VADER on held-out examples: Pearson and Spearman correlation, and
    on response pairs of the same prompt that VADER does not tie, the fraction r_G orders the
    same way."""

    a, b = pairs[:, 0], pairs[:, 1]
    vader_sign = np.sign(labels[a] - labels[b])
    untied = vader_sign != 0
    same = np.sign(scores[a] - scores[b])[untied] == vader_sign[untied]
    return {
        "pearson_with_vader": float(stats.pearsonr(scores, labels)[0]),
        "spearman_with_vader": float(stats.spearmanr(scores, labels)[0]),
        "pair_agreement_with_vader": float(same.mean()),
        "vader_tie_fraction": float(1 - untied.mean()),
        "gold_tie_fraction": float((scores[a] == scores[b]).mean()),
    }
