"""Next-token pretraining of the base LM on the corpus's training documents."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm


@dataclass(frozen=True)
class PretrainConfig:
    """Optimisation settings of pretraining (AdamW, linear warm-up then cosine decay)."""

    block_size: int
    batch_size: int
    epochs: float
    learning_rate: float
    warmup_steps: int
    weight_decay: float
    eval_every: int
    seed: int


def token_blocks(tokenizer, texts: list[str], block_size: int) -> torch.Tensor:
    """The documents joined by <|endoftext|>, tokenized and cut into [n_blocks, block_size]."""
    sep = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids: list[int] = []
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    for doc in encoded:
        ids.extend(doc)
        ids.append(sep)
    n_blocks = len(ids) // block_size
    if n_blocks == 0:
        raise ValueError("not enough text for one training block")
    return torch.tensor(ids[: n_blocks * block_size]).view(n_blocks, block_size)


@torch.no_grad()
def evaluate_loss(model, blocks: torch.Tensor, batch_size: int) -> float:
    model.eval()
    dev = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        batch = blocks[start : start + batch_size].to(dev)
        total += model(input_ids=batch, labels=batch).loss.item() * len(batch)
        count += len(batch)
    model.train()
    return total / count


def pretrain(model, train: torch.Tensor, val: torch.Tensor, cfg: PretrainConfig) -> list[dict]:
    """Train in place; returns the loss history [{step, tokens, train_loss, val_loss}]."""
    dev = next(model.parameters()).device
    generator = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = max(1, len(train) // cfg.batch_size)
    total_steps = max(1, int(math.ceil(cfg.epochs * steps_per_epoch)))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.95)
    )

    def lr_factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    history, recent = [], []
    model.train()
    order = torch.randperm(len(train), generator=generator)
    cursor = 0
    for step in tqdm(range(total_steps), desc="pretrain", mininterval=10):
        if cursor + cfg.batch_size > len(order):
            order, cursor = torch.randperm(len(train), generator=generator), 0
        batch = train[order[cursor : cursor + cfg.batch_size]].to(dev)
        cursor += cfg.batch_size
        loss = model(input_ids=batch, labels=batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretraining loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        recent.append(loss.item())
        if (step + 1) % cfg.eval_every == 0 or step + 1 == total_steps:
            history.append(
                {
                    "step": step + 1,
                    "tokens": (step + 1) * cfg.batch_size * cfg.block_size,
                    "train_loss": float(np.mean(recent)),
                    "val_loss": evaluate_loss(model, val, 2 * cfg.batch_size),
                }
            )
            recent = []
    model.eval()
    return history
