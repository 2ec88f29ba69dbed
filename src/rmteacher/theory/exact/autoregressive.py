"""Autoregressive policies over Y = V^L (Eq. 2), enumerated exactly.

pi_theta(y|x) = prod_l softmax(f_theta(x, y_<l))_{y_l}. Two logit maps f_theta:
  * `PrefixTableLogits`: one free logit vector per (prompt, prefix); its Jacobian is a selection
    matrix, so J_x = 1 exactly.
  * `SharedMLPLogits`: one small tanh MLP shared by all prompts and positions, so parameters are
    shared and J_x must be computed (`jacobian_norms`).
All sequences have length L (shorter outputs would be padded, as in the paper).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

DTYPE = torch.float64


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread inside the block. The tensors here are tiny, so intra-op threads
    cost more than they save (about 5x more on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class SequenceSpace:
    """All |V|^L sequences, and for each (sequence, position l) the index of its prefix y_<l."""

    vocab_size: int
    seq_len: int
    sequences: np.ndarray  # [N, L] token ids, lexicographic order
    prefix_index: np.ndarray  # [N, L] index into `prefixes`
    prefixes: tuple[tuple[int, ...], ...]  # all prefixes of length 0..L-1

    @classmethod
    def build(cls, vocab_size: int, seq_len: int) -> SequenceSpace:
        if vocab_size < 2 or seq_len < 1:
            raise ValueError(f"need vocab_size >= 2 and seq_len >= 1, got {vocab_size}, {seq_len}")
        if vocab_size**seq_len > 20_000:
            raise ValueError(f"|V|^L = {vocab_size**seq_len} is too large to enumerate (max 20000)")
        prefixes = tuple(
            p
            for length in range(seq_len)
            for p in itertools.product(range(vocab_size), repeat=length)
        )
        position = {p: i for i, p in enumerate(prefixes)}
        sequences = np.array(list(itertools.product(range(vocab_size), repeat=seq_len)))
        prefix_index = np.array(
            [[position[tuple(s[:pos])] for pos in range(seq_len)] for s in sequences]
        )
        return cls(vocab_size, seq_len, sequences, prefix_index, prefixes)

    @property
    def n_sequences(self) -> int:
        return self.sequences.shape[0]


class PrefixTableLogits(nn.Module):
    """f_theta(x, y_<l) = theta[x, prefix]: a free logit vector per prompt and prefix."""

    def __init__(self, space: SequenceSpace, n_prompts: int, init_scale: float, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        shape = (n_prompts, len(space.prefixes), space.vocab_size)
        self.table = nn.Parameter(init_scale * torch.randn(shape, generator=gen, dtype=DTYPE))

    def forward(self) -> torch.Tensor:
        """Logits for every (prompt, prefix): [|S|, n_prefixes, |V|]."""
        return self.table


class SharedMLPLogits(nn.Module):
    """f_theta(x, y_<l) = W2 tanh(W1 phi(x, y_<l) + b1) + b2 with features phi = [one-hot prompt,
    one-hot token at each earlier position (zeros if absent), one-hot prefix length]."""

    def __init__(
        self, space: SequenceSpace, n_prompts: int, hidden: int, init_scale: float, seed: int
    ):
        super().__init__()
        self.features = prefix_features(space, n_prompts)
        gen = torch.Generator().manual_seed(seed)
        d_in = self.features.shape[-1]
        self.w1 = nn.Parameter(init_scale * torch.randn(d_in, hidden, generator=gen, dtype=DTYPE))
        self.b1 = nn.Parameter(0.1 * torch.randn(hidden, generator=gen, dtype=DTYPE))
        scale_out = init_scale / np.sqrt(hidden)
        self.w2 = nn.Parameter(
            scale_out * torch.randn(hidden, space.vocab_size, generator=gen, dtype=DTYPE)
        )
        self.b2 = nn.Parameter(torch.zeros(space.vocab_size, dtype=DTYPE))

    def forward(self) -> torch.Tensor:
        return torch.tanh(self.features @ self.w1 + self.b1) @ self.w2 + self.b2


def prefix_features(space: SequenceSpace, n_prompts: int) -> torch.Tensor:
    """Input features phi(x, y_<l) for every prompt and prefix: [|S|, n_prefixes, d_in]."""
    slots = max(space.seq_len - 1, 0)
    d_in = n_prompts + slots * space.vocab_size + space.seq_len
    feats = torch.zeros(n_prompts, len(space.prefixes), d_in, dtype=DTYPE)
    for p_idx, prefix in enumerate(space.prefixes):
        for pos, token in enumerate(prefix):
            feats[:, p_idx, n_prompts + pos * space.vocab_size + token] = 1.0
        feats[:, p_idx, n_prompts + slots * space.vocab_size + len(prefix)] = 1.0
    for x in range(n_prompts):
        feats[x, :, x] = 1.0
    return feats


def sequence_log_probs(logits: torch.Tensor, space: SequenceSpace) -> torch.Tensor:
    """ln pi(y|x) for every prompt and sequence, [|S|, N], from prefix logits [|S|, P, |V|]."""
    log_p = torch.log_softmax(logits, dim=-1)
    prefix_idx = torch.as_tensor(space.prefix_index)
    tokens = torch.as_tensor(space.sequences)
    per_position = log_p[:, prefix_idx, tokens]  # [|S|, N, L]
    return per_position.sum(dim=-1)


def rlhf_objective(
    model: nn.Module,
    space: SequenceSpace,
    reward: torch.Tensor,
    log_pi_ref: torch.Tensor,
    lam: float,
    prompt_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """phi(theta) = sum_x w_x [E_pi r(x, .) - lambda KL(pi(.|x) || pi_ref(.|x))], w uniform by
    default (Eq. 1); a one-hot w gives the single-prompt objective phi(theta; x)."""
    log_pi = sequence_log_probs(model(), space)
    pi = log_pi.exp()
    per_prompt = (pi * reward).sum(-1) - lam * (pi * (log_pi - log_pi_ref)).sum(-1)
    if prompt_weights is None:
        return per_prompt.mean()
    return (prompt_weights * per_prompt).sum()


def flat_parameters(model: nn.Module) -> np.ndarray:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().copy()


def set_flat_parameters(model: nn.Module, values: np.ndarray) -> None:
    torch.nn.utils.vector_to_parameters(torch.as_tensor(values, dtype=DTYPE), model.parameters())


def objective_gradient(
    model: nn.Module,
    space: SequenceSpace,
    reward: torch.Tensor,
    log_pi_ref: torch.Tensor,
    lam: float,
    prompt_weights: torch.Tensor | None = None,
) -> np.ndarray:
    """grad_theta phi by autograd, flattened in `model.parameters()` order."""
    params = list(model.parameters())
    value = rlhf_objective(model, space, reward, log_pi_ref, lam, prompt_weights)
    grads = torch.autograd.grad(value, params)
    return torch.cat([g.reshape(-1) for g in grads]).numpy()


def per_prompt_gradients(
    model: nn.Module,
    space: SequenceSpace,
    reward: torch.Tensor,
    log_pi_ref: torch.Tensor,
    lam: float,
) -> np.ndarray:
    """grad_theta phi(theta; x) of every single-prompt objective, [|S|, n_params], in one
    reverse-mode Jacobian (rows in `model.parameters()` order)."""
    names, values = zip(*[(n, p.detach()) for n, p in model.named_parameters()], strict=True)

    def per_prompt(*tensors: torch.Tensor) -> torch.Tensor:
        logits = torch.func.functional_call(model, dict(zip(names, tensors, strict=True)), ())
        log_pi = sequence_log_probs(logits, space)
        pi = log_pi.exp()
        return (pi * reward).sum(-1) - lam * (pi * (log_pi - log_pi_ref)).sum(-1)

    jac = torch.func.jacrev(per_prompt, argnums=tuple(range(len(values))))(*values)
    n_prompts = jac[0].shape[0]
    return torch.cat([j.reshape(n_prompts, -1) for j in jac], dim=1).numpy()


def policy_gradient_expectation(
    model: nn.Module,
    space: SequenceSpace,
    reward: torch.Tensor,
    log_pi_ref: torch.Tensor,
    lam: float,
    prompt: int,
) -> np.ndarray:
    """Log-derivative form of grad phi(theta; x): E_{y~pi}[r^KL(x, y) grad ln pi(y|x)],
    built from per-sequence gradients (the identity behind Proposition 2's proof)."""
    params = list(model.parameters())
    log_pi = sequence_log_probs(model(), space)[prompt]
    pi = log_pi.detach().exp()
    r_kl = reward[prompt] - lam * (log_pi.detach() - log_pi_ref[prompt])
    total = np.zeros(sum(p.numel() for p in params))
    for n in range(space.n_sequences):
        grads = torch.autograd.grad(log_pi[n], params, retain_graph=True)
        total += float(pi[n] * r_kl[n]) * torch.cat([g.reshape(-1) for g in grads]).numpy()
    return total


def jacobian_norms(model: nn.Module) -> torch.Tensor:
    """||J_{f_theta}(x, y_<l)||_2 (spectral norm of d logits / d theta) for every prompt and
    prefix: [|S|, n_prefixes]. J_x of Proposition 2 is the max over prefixes of row x."""
    names, values = zip(*[(n, p.detach()) for n, p in model.named_parameters()], strict=True)

    def logits_of(*tensors: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, dict(zip(names, tensors, strict=True)), ())

    jac = torch.func.jacrev(logits_of, argnums=tuple(range(len(values))))(*values)
    s, p, v = jac[0].shape[:3]
    full = torch.cat([j.reshape(s, p, v, -1) for j in jac], dim=-1)
    return torch.linalg.matrix_norm(full, ord=2)
