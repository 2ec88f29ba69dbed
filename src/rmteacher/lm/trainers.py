"""Settings shared by every trl trainer here: CPU-safe precision, no checkpointing, no reporting,
coarse progress, and NaN/Inf guards on logged losses."""

from __future__ import annotations

import math

import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback


def trainer_kwargs(output_dir: str, seed: int) -> dict:
    """TrainingArguments fields we always set (trl's defaults assume a GPU with bf16)."""
    cuda = torch.cuda.is_available()
    return dict(
        output_dir=output_dir,
        use_cpu=not cuda,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
    )


class CoarseProgress(TrainerCallback):
    """One tqdm bar per training run, refreshed at most every `interval` seconds; raises on a
    non-finite logged loss so a diverged run stops with a clear message."""

    def __init__(self, desc: str, interval: float = 15.0):
        self.desc, self.interval, self.bar = desc, interval, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = tqdm(total=state.max_steps, desc=self.desc, mininterval=self.interval)

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "train_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise FloatingPointError(
                    f"{self.desc}: {key} became {value} at step {state.global_step}"
                )

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()


def quiet(trainer):
    """Drop the per-step log printer (logging_steps=1 would print every step into notebooks)."""

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def log_table(trainer):
    """trainer.state.log_history as a DataFrame of per-step training logs."""

    rows = [h for h in trainer.state.log_history if "loss" in h and "train_runtime" not in h]
    return pd.DataFrame(rows)
