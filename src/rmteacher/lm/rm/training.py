"""Bradley-Terry reward models (trl RewardTrainer), initialised as in the paper from the initial
policy with a new one-output sequence-classification head, or from a model that already scores
prompts (r_G, with its head or a new one; see rm_train's `init`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification
from trl import RewardConfig, RewardTrainer

from rmteacher.core.hf import context_length, load_tokenizer
from rmteacher.core.paths import RM_MANIFEST, RM_TRAIN
from rmteacher.lm.trainers import CoarseProgress, log_table, quiet, trainer_kwargs


def preference_dataset(pairs: pd.DataFrame):

    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r.prompt}],
                "chosen": [{"role": "assistant", "content": r.chosen}],
                "rejected": [{"role": "assistant", "content": r.rejected}],
            }
            for r in pairs.itertuples(index=False)
        ]
    )


def train_reward_model(
    init_dir: str,
    out_dir: Path,
    pairs: pd.DataFrame,
    *,
    epochs: float,
    learning_rate: float,
    batch_size: int,
    center_rewards_coefficient: float,
    seed: int,
    name: str,
    new_head: bool = False,
) -> pd.DataFrame:
    """Train on `pairs` (prompt, chosen, rejected) with loss -log sigma(r_c - r_r) plus
    `center_rewards_coefficient` * mean((r_c + r_r)^2), starting from the model in `init_dir`
    (a causal LM gets a new one-output head; a one-output reward model keeps its head unless
    `new_head`); save to `out_dir`; return the log."""

    tokenizer = load_tokenizer(init_dir)
    torch.manual_seed(seed)  # a new head is drawn here: fixed by the seed, not by earlier steps
    model = AutoModelForSequenceClassification.from_pretrained(init_dir, num_labels=1)
    if new_head and hasattr(model, "score"):
        with torch.no_grad():
            model.score.weight.normal_(0.0, model.config.initializer_range)
            if model.score.bias is not None:
                model.score.bias.zero_()
    model.config.pad_token_id = tokenizer.pad_token_id
    with tempfile.TemporaryDirectory() as scratch:
        args = RewardConfig(
            **trainer_kwargs(scratch, seed),
            per_device_train_batch_size=batch_size,
            num_train_epochs=epochs,
            learning_rate=learning_rate,
            lr_scheduler_type="constant",
            max_length=context_length(model.config),  # mix_pairs kept only pairs that fit
            center_rewards_coefficient=center_rewards_coefficient,
        )
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=preference_dataset(pairs),
            processing_class=tokenizer,
            callbacks=[CoarseProgress(name)],
        )
        quiet(trainer).train()
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return log_table(trainer).assign(rm=name)


def write_manifest(rm_dir: Path, gold_spec: str, summary) -> Path:
    """artifacts/rm_train/manifest.json: the ground-truth spec and, per trained RM, its on-policy
    fraction, pair count and directory (`summary` has columns rm, onpolicy_fraction, pairs)."""
    payload = {
        "gold": gold_spec,
        "rms": [
            {
                "name": row.rm,
                "onpolicy_fraction": float(row.onpolicy_fraction),
                "pairs": int(row.pairs),
                "path": str(rm_dir / row.rm),
            }
            for row in summary.itertuples(index=False)
        ],
    }
    path = rm_dir / RM_MANIFEST.name
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def read_manifest(rm_dir: Path = RM_TRAIN) -> dict:
    path = rm_dir / RM_MANIFEST.name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the rm_train stage first")
    return json.loads(path.read_text())
