"""Robustness variants of Section 4.1: another normalisation (paper Table 9) and a uniform reward
scale under Adam versus plain SGD (paper Section 5.1, claim 12 of the digest)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from rmteacher.lm.pg_sweep import InitialPolicy, TrainingPlan, increases, tracked_run
from rmteacher.lm.policy_gradient import PgRunConfig
from rmteacher.lm.rm_eval import EVAL_DIR
from rmteacher.rewards.normalize import Normalization

# Paper Table 9 (Pythia-1B, per-prompt-variance normalisation), the cells the digest records:
# (proxy Pearson, proxy Spearman, r_G Pearson, r_G Spearman); None where not recorded.
PAPER_TABLE9 = {
    "reward_variance": (0.936, 0.943, 0.279, 0.314),
    "onpolicy_accuracy": (None, None, None, None),
    "offpolicy_accuracy": (None, None, None, None),
    "accuracy_mean": (None, None, None, None),
    "variance_and_accuracy": (None, None, 0.808, 0.714),
}


def load_eval_matrices(names, out_dir: Path = EVAL_DIR) -> dict[str, np.ndarray]:
    """rm_eval's raw initial-policy reward matrices [P, n] of the named RMs."""
    out = {}
    for name in names:
        path = out_dir / f"rewards_{name}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run the rm_eval stage first")
        out[name] = np.load(path)
    return out


def per_prompt_normalizations(matrices: dict[str, np.ndarray]) -> dict[str, Normalization]:
    """App. E.1's alternative: shift by the global mean, divide by sqrt of the mean per-prompt
    variance, so every RM's average within-prompt variance on the initial policy becomes 1."""
    return {name: Normalization.from_per_prompt_variance(m) for name, m in matrices.items()}


def run_grid(policy: InitialPolicy, plan: TrainingPlan, runs: list[dict], gold, gold_norm):
    """Tracked runs from one policy. Each run is a dict with keys rm, proxy, norm, cfg and
    optionally scale (uniform reward multiplier) and tags; returns (curves with increases,
    per-step logs)."""
    curves, logs = [], []
    for run in runs:
        curve, log = tracked_run(
            policy,
            plan,
            run["rm"],
            run["proxy"],
            run["norm"],
            gold,
            gold_norm,
            run["cfg"],
            reward_scale=run.get("scale", 1.0),
            tags=run.get("tags"),
        )
        curves.append(curve)
        logs.append(log)
    return increases(pd.concat(curves, ignore_index=True)), pd.concat(logs, ignore_index=True)


def scaling_runs(
    rm: str, proxy, norm, base_cfg: PgRunConfig, scales, seeds, learning_rates: dict[str, float]
) -> list[dict]:
    """The grid optimizer x scale x seed for the uniform-scaling experiment; gradient clipping
    is off so that SGD's step really is proportional to the reward scale."""
    runs = []
    for optimizer, lr in learning_rates.items():
        for scale in scales:
            for seed in seeds:
                cfg = replace(
                    base_cfg, optimizer=optimizer, learning_rate=lr, seed=seed, max_grad_norm=1e12
                )
                runs.append(
                    {
                        "rm": rm,
                        "proxy": proxy,
                        "norm": norm,
                        "cfg": cfg,
                        "scale": scale,
                        "tags": {"optimizer": optimizer, "scale": scale},
                    }
                )
    return runs


def scale_sensitivity(curves: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and scale c: the final mean proxy and r_G increase, plus `scale_effect`, the
    proxy increase at the largest c minus that at the smallest (0 = the scale is undone)."""
    last = curves[curves.step == curves.step.max()]
    table = last.groupby(["optimizer", "scale"])[["proxy_increase", "gold_increase"]].mean()
    table = table.reset_index().sort_values(["optimizer", "scale"])
    effect = table.groupby("optimizer")["proxy_increase"].agg(lambda s: s.iloc[-1] - s.iloc[0])
    return table.join(effect.rename("scale_effect"), on="optimizer")
