"""Per-member gradient clipping and optimizer steps on stacked weights [E, ...].

Each member keeps its own learning rate, clipping threshold, optimizer and state; the arithmetic
per element is torch's: Adam as `torch.optim.AdamW` without weight decay (trl's optimizer, the
single-tensor path: m <- lerp(m, g, 1 - beta1), v <- beta2 v + (1 - beta2) g^2, p <- p -
(lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)), plain SGD as `torch.optim.SGD`
(p <- p - lr g), and clipping as `torch.nn.utils.clip_grad_norm_` (g <- g * min(1, c / (||g|| +
1e-6)) with the norm over all of a member's weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


def member_grad_norms(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """[E] the 2-norm of each member's whole gradient (every tensor's slice e together)."""
    per_tensor = torch.stack([g.flatten(1).norm(dim=1) for g in grads])  # [tensors, E]
    return per_tensor.norm(dim=0)


def clip_member_grads(grads: Sequence[torch.Tensor], max_norms: torch.Tensor) -> torch.Tensor:
    """Scale each member's gradient to norm at most max_norms[e] (inf: no clipping), in place;
    returns the norms before clipping [E]."""
    norms = member_grad_norms(grads)
    coef = torch.clamp(max_norms / (norms + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))
    return norms


class StackedOptimizer:
    """Adam or SGD per member on stacked weights. `kinds[e]` is 'adam' or 'sgd', `lrs[e]` the
    member's learning rate."""

    def __init__(self, params: Sequence[torch.Tensor], kinds: Sequence[str], lrs: Sequence[float]):
        unknown = sorted(set(kinds) - {"adam", "sgd"})
        if unknown:
            raise ValueError(f"optimizer: expected adam or sgd, got {unknown}")
        self.params = list(params)
        self.lrs = [float(lr) for lr in lrs]
        adam = [kind == "adam" for kind in kinds]
        self.adam_rows = torch.tensor([e for e, a in enumerate(adam) if a], dtype=torch.long)
        self.sgd_rows = torch.tensor([e for e, a in enumerate(adam) if not a], dtype=torch.long)
        self.exp_avg = [p.new_zeros(len(self.adam_rows), *p.shape[1:]) for p in self.params]
        self.exp_avg_sq = [p.new_zeros(len(self.adam_rows), *p.shape[1:]) for p in self.params]
        self.steps = 0

    def _per_member(self, values: list[float], rows: torch.Tensor, like: torch.Tensor):
        picked = torch.tensor([values[e] for e in rows.tolist()], dtype=torch.float32)
        return picked.view(-1, *[1] * (like.dim() - 1))

    @torch.no_grad()
    def step(self) -> None:
        """One step with the gradients in `p.grad`."""
        self.steps += 1
        beta1, beta2 = BETAS
        bias1 = 1 - beta1**self.steps
        bias2_sqrt = math.sqrt(1 - beta2**self.steps)
        # -lr / (1 - beta1^t) in double, then float32, as torch's `value=-step_size`
        neg_step = [-lr / bias1 for lr in self.lrs]
        neg_lr = [-lr for lr in self.lrs]
        for i, p in enumerate(self.params):
            g = p.grad
            if len(self.adam_rows):
                rows = self.adam_rows
                grad = g.index_select(0, rows)
                m, v = self.exp_avg[i], self.exp_avg_sq[i]
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (v.sqrt() / bias2_sqrt).add_(EPS)
                update = self._per_member(neg_step, rows, p) * m / denom
                p.index_copy_(0, rows, p.index_select(0, rows) + update)
            if len(self.sgd_rows):
                rows = self.sgd_rows
                update = self._per_member(neg_lr, rows, p) * g.index_select(0, rows)
                p.index_copy_(0, rows, p.index_select(0, rows) + update)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
