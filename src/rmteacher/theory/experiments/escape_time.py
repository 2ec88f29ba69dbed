"""Stage theory_escape_time: time to improve r_G vs reward variance (Theorems 1/4, Prop. 3).

The RM is Theorem 5's perfectly accurate construction with rewards in (0, 1/T); sweeping T
sweeps its variance. Tabular policies give t_gamma ∝ Var^{-1/2}; a shared-parameter MLP policy
over V^L shows that with shared parameters the *average* variance over prompts is what counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from rmteacher.theory import autoregressive as ar
from rmteacher.theory import bounds, constructions, flow, quantities, tabular
from rmteacher.theory.experiments.common import loglog_slope, tabular_flow


def tabular_sweep(p) -> tuple[pd.DataFrame, float]:
    rng = np.random.default_rng(p.seed)
    gold = rng.uniform(-1, 1, p.n_outputs)
    pi0 = constructions.random_policy(p.n_outputs, p.temperature, rng)
    if pi0 @ gold + p.gamma >= gold.max():
        raise ValueError(
            f"gamma={p.gamma} exceeds max r_G - E_pi0 r_G = {gold.max() - pi0 @ gold:.3f}"
        )
    rows = []
    kl_free_time: dict[float, float] = {}
    for lam in sorted(p.lams):
        for big_t in p.t_values:
            rm = constructions.slow_rm(gold, big_t)
            var = float(quantities.reward_variance(pi0, rm))
            bound = float(bounds.proposition3_time_lower_bound(var, p.gamma, 1))
            horizon = p.ar_horizon * big_t
            if lam > 0 and np.isfinite(kl_free_time.get(big_t, np.inf)):
                horizon = p.kl_horizon_factor * kl_free_time[big_t]
            res = tabular_flow(
                pi0, rm, lam, horizon, gold=gold, gamma=p.gamma, n_points=2, rtol=p.rtol
            )
            if lam == 0:
                kl_free_time[big_t] = res.t_gamma
            rows.append(
                dict(
                    policy="tabular",
                    design="all_prompts",
                    lam=lam,
                    T=big_t,
                    variance=var,
                    t_gamma=res.t_gamma,
                    horizon=horizon,
                    lower_bound=bound,
                    bound_name="Proposition 3",
                )
            )
    # Step-size check at the largest T: relative change of t_gamma with a 100x tighter rtol.
    rm = constructions.slow_rm(gold, max(p.t_values))
    shape = (1, p.n_outputs)
    rel = flow.t_gamma_tolerance_check(
        lambda th: tabular.gradient(th.reshape(shape), pi0[None], rm[None], 0.0).ravel(),
        np.log(pi0),
        p.ar_horizon * max(p.t_values),
        lambda th: float(tabular.softmax(th.reshape(shape))[0] @ gold),
        float(pi0 @ gold) + p.gamma,
        rtol=p.rtol,
    )
    return pd.DataFrame(rows), rel


def autoregressive_sweep(p) -> pd.DataFrame:
    space = ar.SequenceSpace.build(p.vocab_size, p.seq_len)
    rng = np.random.default_rng(p.seed + 1)
    model = ar.SharedMLPLogits(space, p.n_prompts, p.mlp_hidden, p.init_scale, p.seed)
    theta0 = ar.flat_parameters(model)
    log_ref = ar.sequence_log_probs(model(), space).detach()
    pi0 = log_ref.exp().numpy()
    shared = rng.uniform(-1, 1, space.n_sequences)
    gold = np.clip(shared + 0.3 * rng.standard_normal((p.n_prompts, space.n_sequences)), -1, 1)
    gold_t = torch.tensor(gold[0])
    target = float(pi0[0] @ gold[0]) + p.gamma
    if target >= gold[0].max():
        raise ValueError(
            f"gamma={p.gamma} is not reachable on prompt 0 of the autoregressive policy"
        )
    runs = [("all_prompts", lam) for lam in p.lams] + [("one_prompt", 0.0)]
    runs.sort(key=lambda run: run[1])  # KL-free runs first: they set the KL runs' horizon
    kl_free_time: dict[tuple[str, float], float] = {}
    rows = []
    for design, lam in tqdm(runs, desc="autoregressive sweeps", mininterval=5):
        for big_t in p.t_values:
            rm = gold.copy()
            for x in range(p.n_prompts) if design == "all_prompts" else [0]:
                rm[x] = constructions.slow_rm(gold[x], big_t)
            mean_var = float(quantities.reward_variance(pi0, rm).mean())
            rm_t = torch.tensor(rm)

            def rhs(theta: np.ndarray, rm_t=rm_t, lam=lam) -> np.ndarray:
                ar.set_flat_parameters(model, theta)
                return ar.objective_gradient(model, space, rm_t, log_ref, lam)

            def progress(theta: np.ndarray) -> float:
                ar.set_flat_parameters(model, theta)
                with torch.no_grad():
                    return float(ar.sequence_log_probs(model(), space)[0].exp() @ gold_t)

            horizon = p.ar_horizon * big_t
            if lam > 0 and np.isfinite(kl_free_time.get((design, big_t), np.inf)):
                horizon = p.kl_horizon_factor * kl_free_time[(design, big_t)]
            res = flow.integrate(
                rhs,
                theta0,
                horizon,
                progress=progress,
                target=target,
                n_points=5,
                rtol=p.rtol,
                atol=p.rtol * 1e-3,
            )
            if lam == 0:
                kl_free_time[(design, big_t)] = res.t_gamma
            j_sup = 0.0
            for state in res.states:  # J_{t_gamma}: sup of the Jacobian norm along the path
                ar.set_flat_parameters(model, state)
                j_sup = max(j_sup, float(ar.jacobian_norms(model).max()))
            ar.set_flat_parameters(model, theta0)
            bound = float(
                bounds.theorem4_time_lower_bound(mean_var, p.gamma, lam, p.seq_len, j_sup)
            )
            rows.append(
                dict(
                    policy="shared_mlp",
                    design=design,
                    lam=lam,
                    T=big_t,
                    variance=mean_var,
                    t_gamma=res.t_gamma,
                    horizon=horizon,
                    lower_bound=bound,
                    bound_name="Theorem 4",
                    jacobian_sup=j_sup,
                )
            )
    return pd.DataFrame(rows)


def run(p) -> tuple[pd.DataFrame, dict]:
    tab, rel_change = tabular_sweep(p)
    auto = autoregressive_sweep(p)
    table = pd.concat([tab, auto], ignore_index=True)
    table["ratio_to_bound"] = table.t_gamma / table.lower_bound

    def slope(policy: str, design: str, lam: float) -> float | None:
        sel = table[(table.policy == policy) & (table.design == design) & (table.lam == lam)]
        return loglog_slope(sel.variance, sel.t_gamma)

    kl_lams = [lam for lam in p.lams if lam > 0]
    one = table[table.design == "one_prompt"].t_gamma
    metrics = {
        "escape_time_slope_tabular": slope("tabular", "all_prompts", 0.0),
        "escape_time_slope_autoregressive": slope("shared_mlp", "all_prompts", 0.0),
        "escape_time_slope_tabular_kl": slope("tabular", "all_prompts", kl_lams[0])
        if kl_lams
        else None,
        "escape_time_slope_autoregressive_kl": (
            slope("shared_mlp", "all_prompts", kl_lams[0]) if kl_lams else None
        ),
        "n_not_reached_within_horizon_with_kl": int(np.isinf(table[table.lam > 0].t_gamma).sum()),
        "min_ratio_to_lower_bound_tabular": float(
            table[table.policy == "tabular"].ratio_to_bound.min()
        ),
        "min_ratio_to_lower_bound_autoregressive": float(
            table[table.policy == "shared_mlp"].ratio_to_bound.min()
        ),
        "one_prompt_design_time_spread": float(one.max() / one.min()),
        "all_prompts_design_time_spread": float(
            table[
                (table.policy == "shared_mlp") & (table.design == "all_prompts") & (table.lam == 0)
            ].t_gamma.pipe(lambda s: s.max() / s.min())
        ),
        "integrator_t_gamma_rel_change": rel_change,
        "worst_case_exponent_autoregressive": -1 / 3,
    }
    return table, metrics
