"""Stage theory_gradient_bound: gradient norm vs reward variance (Lemma 8, Proposition 2).

Many RMs share one ranking (that of r_G) and differ only in shape and scale, so they are all
perfectly accurate; their gradient norms are nevertheless governed by the reward variance.

The metric `scaling_slope_grad_vs_variance_tabular` is a consistency check, not a test of
Lemma 8: at initialization r^KL = r_RM, the tabular gradient is linear in the reward scale and
the variance quadratic in it, so under a pure rescaling the log-log slope is 1/2 by construction.
The tests of the bounds are the ratios `max_grad_to_bound_ratio_*` (must be <= 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from rmteacher.stages.theory.params.gradient_bound import SHAPES, GradientBoundParams
from rmteacher.theory.common import finite_or_nan, loglog_slope
from rmteacher.theory.exact import autoregressive as ar
from rmteacher.theory.exact import bounds, quantities, tabular

# RM shapes h(u) of the normalized rank u in [0, 1] of r_G: all increasing, so every RM built
# from them ranks outputs exactly like r_G.


@dataclass(frozen=True)
class GradientBoundResult:
    """One row per (policy, RM shape, scale) for tabular policies, one per (policy, prompt,
    shape, scale) for autoregressive ones, and the stage's metrics."""

    tabular: pd.DataFrame
    autoregressive: pd.DataFrame
    metrics: dict


def rank_shaped_rewards(gold: np.ndarray, shape: str, scale: float) -> np.ndarray:
    """r = scale * h(u) with u the normalized rank of r_G (per row): same ranking as r_G."""
    ranks = np.argsort(np.argsort(gold, axis=-1), axis=-1)
    u = ranks / (gold.shape[-1] - 1)
    return scale * SHAPES[shape](u)


def tabular_instances(p, rng: np.random.Generator) -> pd.DataFrame:

    rows = []
    scales = np.logspace(np.log10(p.scale_min), 0, p.n_scales)
    for i in range(p.n_policies):
        theta_ref = rng.uniform(0.5, 3.0) * rng.standard_normal((1, p.n_outputs))
        at_init = i % 2 == 0
        theta = (
            theta_ref
            if at_init
            else theta_ref + p.offset_scale * rng.standard_normal(theta_ref.shape)
        )
        lam = 0.0 if at_init else p.lam
        pi, pi_ref = tabular.softmax(theta), tabular.softmax(theta_ref)
        gold = rng.uniform(-1, 1, (1, p.n_outputs))
        for shape in p.shapes:
            for scale in scales:
                reward = rank_shaped_rewards(gold, shape, scale)
                r_kl = tabular.kl_regularized_reward(pi, pi_ref, reward, lam)
                var = float(quantities.reward_variance(pi, r_kl)[0])
                grad = tabular.per_prompt_gradient(theta, pi_ref, reward, lam)[0]
                rows.append(
                    dict(
                        policy=i,
                        at_init=at_init,
                        lam=lam,
                        shape=shape,
                        scale=scale,
                        variance=var,
                        grad_l1=float(np.abs(grad).sum()),
                        grad_l2=float(np.linalg.norm(grad)),
                        lemma8_bound=float(bounds.lemma8_gradient_bound(var)),
                        prop2_bound=float(
                            bounds.proposition2_gradient_bound(var, np.abs(r_kl).max(), 1, 1.0)
                        ),
                    )
                )
    return pd.DataFrame(rows)


def autoregressive_instances(p, rng: np.random.Generator) -> pd.DataFrame:

    space = ar.SequenceSpace.build(p.vocab_size, p.seq_len)
    scales = np.logspace(np.log10(p.scale_min), 0, p.n_scales)
    rows = []
    n_models = max(2, p.n_policies // 2)
    for i in tqdm(range(n_models), desc="autoregressive policies", mininterval=5):
        kind = "prefix_table" if i % 2 == 0 else "shared_mlp"
        seed = int(rng.integers(1 << 30))
        if kind == "prefix_table":
            model = ar.PrefixTableLogits(space, p.n_prompts, p.init_scale, seed)
        else:
            model = ar.SharedMLPLogits(space, p.n_prompts, p.mlp_hidden, p.init_scale, seed)
        log_pi = ar.sequence_log_probs(model(), space).detach()
        at_init = (i // 2) % 2 == 0
        log_ref = (
            log_pi
            if at_init
            else log_pi
            + p.offset_scale
            * torch.randn(
                log_pi.shape, dtype=ar.DTYPE, generator=torch.Generator().manual_seed(seed)
            )
        )
        log_ref = log_ref - torch.logsumexp(log_ref, dim=-1, keepdim=True)
        lam = 0.0 if at_init else p.lam
        pi = log_pi.exp().numpy()
        j_x = ar.jacobian_norms(model).max(dim=1).values.numpy()
        gold = rng.uniform(-1, 1, (p.n_prompts, space.n_sequences))
        for shape in p.shapes:
            for scale in scales:
                reward = rank_shaped_rewards(gold, shape, scale)
                r_kl = reward - lam * (log_pi.numpy() - log_ref.numpy())
                var = quantities.reward_variance(pi, r_kl)
                grads = ar.per_prompt_gradients(model, space, torch.tensor(reward), log_ref, lam)
                for x, grad in enumerate(grads):
                    bound = bounds.proposition2_gradient_bound(
                        var[x], np.abs(r_kl[x]).max(), p.seq_len, j_x[x]
                    )
                    rows.append(
                        dict(
                            policy=i,
                            kind=kind,
                            at_init=at_init,
                            lam=lam,
                            prompt=x,
                            shape=shape,
                            scale=scale,
                            variance=float(var[x]),
                            grad_l2=float(np.linalg.norm(grad)),
                            jacobian_norm=float(j_x[x]),
                            prop2_bound=float(bound),
                        )
                    )
    return pd.DataFrame(rows)


def run(p: GradientBoundParams) -> GradientBoundResult:
    """Gradients and bounds on random tabular and autoregressive instances."""
    rng = np.random.default_rng(p.seed)
    tab = tabular_instances(p, rng)
    with ar.single_threaded():
        auto = autoregressive_instances(p, rng)
    tab["lemma8_ratio"] = tab.grad_l1 / tab.lemma8_bound
    tab["prop2_ratio"] = tab.grad_l2 / tab.prop2_bound
    auto["prop2_ratio"] = auto.grad_l2 / auto.prop2_bound
    init_linear = tab[tab.at_init & (tab["shape"] == "linear")]
    slopes = [loglog_slope(g.variance, g.grad_l1) for _, g in init_linear.groupby("policy")]
    metrics = {
        "n_instances_tabular": len(tab),
        "n_instances_autoregressive": len(auto),
        "max_grad_to_bound_ratio_tabular": float(tab.lemma8_ratio.max()),
        "max_grad_to_bound_ratio_tabular_prop2": float(tab.prop2_ratio.max()),
        "max_grad_to_bound_ratio_autoregressive": float(auto.prop2_ratio.max()),
        "max_grad_to_bound_ratio_autoregressive_table": float(
            auto[auto.kind == "prefix_table"].prop2_ratio.max()
        ),
        "max_grad_to_bound_ratio_autoregressive_mlp": float(
            auto[auto.kind == "shared_mlp"].prop2_ratio.max()
        ),
        "median_jacobian_norm_mlp": float(auto[auto.kind == "shared_mlp"].jacobian_norm.median()),
        # Consistency check: 1/2 by construction (see the module doc string).
        "scaling_slope_grad_vs_variance_tabular": finite_or_nan(slopes, np.median),
        "variance_range": [float(tab.variance.min()), float(tab.variance.max())],
    }
    return GradientBoundResult(tabular=tab, autoregressive=auto, metrics=metrics)
