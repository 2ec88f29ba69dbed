"""Gradient flow (Eq. 4) of the shared-MLP autoregressive policy (Eq. 2) used by the escape-time
stage: its ground truth over V^L, one run's t_gamma, and the Jacobian constant along the path."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rmteacher.theory.exact import autoregressive as ar
from rmteacher.theory.exact import flow


def mlp_policy(p) -> tuple[ar.SequenceSpace, ar.SharedMLPLogits]:
    """V^L and the shared MLP logit map f_theta at theta(0) = theta_ref (seeded by p.seed)."""
    space = ar.SequenceSpace.build(p.vocab_size, p.seq_len)
    return space, ar.SharedMLPLogits(space, p.n_prompts, p.mlp_hidden, p.init_scale, p.seed)


def mlp_ground_truth(p, space: ar.SequenceSpace) -> np.ndarray:
    """r_G(x, y) for every prompt and sequence, [|S|, |V|^L]: a part shared by all prompts plus
    prompt-specific noise (std 0.3), clipped to [-1, 1], so the prompts are related, as a shared
    logit map assumes."""
    rng = np.random.default_rng(p.seed + 1)
    shared = rng.uniform(-1, 1, space.n_sequences)
    noise = 0.3 * rng.standard_normal((p.n_prompts, space.n_sequences))
    return np.clip(shared + noise, -1, 1)


def initial_probabilities(model: torch.nn.Module, space: ar.SequenceSpace) -> np.ndarray:
    """pi_theta(y|x) at the model's current parameters, [|S|, |V|^L]."""
    with torch.no_grad():
        return ar.sequence_log_probs(model(), space).exp().numpy()


@dataclass(frozen=True)
class MLPRun:
    """t_gamma of one run (inf if not reached by the horizon) and J_{t_gamma} estimated on the
    path: the largest ||J_{f_theta}(x, y_<l)||_2 over all prompts and prefixes at the sampled
    states."""

    t_gamma: float
    jacobian_sup: float


def mlp_time_to_gamma(
    model: torch.nn.Module,
    space: ar.SequenceSpace,
    reward: np.ndarray,
    gold: np.ndarray,
    *,
    gamma: float,
    lam: float,
    horizon: float,
    rtol: float,
    n_path: int,
    prompt: int = 0,
) -> MLPRun:
    """Gradient flow on phi (Eq. 1) with r_RM = `reward` [|S|, |V|^L] from the model's current
    parameters, which are also theta_ref; t_gamma is the first time E_pi[r_G(x, .)] on `prompt`
    is gamma above its start.

    Theorem 4's J_{t_gamma} is a sup over the path [0, t_gamma]; it is estimated by the max over
    `n_path` evenly spaced states of the dense solution (over [0, horizon] if gamma is not
    reached). A sampled max cannot exceed the sup, and the bound falls with J, so the bound
    computed from it is at least the theorem's: checking t_gamma against it is conservative.
    The model's parameters are restored on return.
    """
    theta0 = ar.flat_parameters(model)
    with torch.no_grad():
        log_ref = ar.sequence_log_probs(model(), space)
    reward_t = torch.as_tensor(reward, dtype=ar.DTYPE)
    gold_t = torch.as_tensor(gold[prompt], dtype=ar.DTYPE)
    target = float(log_ref[prompt].exp() @ gold_t) + gamma

    def rhs(theta: np.ndarray) -> np.ndarray:
        ar.set_flat_parameters(model, theta)
        return ar.objective_gradient(model, space, reward_t, log_ref, lam)

    def progress(theta: np.ndarray) -> float:
        ar.set_flat_parameters(model, theta)
        with torch.no_grad():
            return float(ar.sequence_log_probs(model(), space)[prompt].exp() @ gold_t)

    try:
        result = flow.integrate(
            rhs,
            theta0,
            horizon,
            progress=progress,
            target=target,
            n_points=n_path,
            rtol=rtol,
            atol=rtol * 1e-3,
        )
        j_sup = 0.0
        for state in result.states:
            ar.set_flat_parameters(model, state)
            j_sup = max(j_sup, float(ar.jacobian_norms(model).max()))
    finally:
        ar.set_flat_parameters(model, theta0)
    return MLPRun(result.t_gamma, j_sup)
