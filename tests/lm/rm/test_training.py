"""Reward-model training (trl RewardTrainer with the paper's centring penalty) is a function of
its inputs: the same pairs, seed and torch random state give the same saved weights and log,
byte for byte, and another seed other weights. The random state matters because the new
one-output head is drawn when the model is built, before trl seeds anything: within rm_train,
whose mixes train one after another in a fixed order, each head is fixed by the stage's seed
and that order. (The tiny-pipeline test checks the same of the stage, of a policy-gradient unit
and of the report.)"""

import numpy as np
import pandas as pd


def pairs(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = "the day was long and the house stood quiet by the road".split()
    return pd.DataFrame(
        {
            "prompt": [" ".join(rng.choice(words, 4)) for _ in range(n)],
            "chosen": [" ".join(rng.choice(words, 3)) for _ in range(n)],
            "rejected": [" ".join(rng.choice(words, 3)) for _ in range(n)],
        }
    )


def train(tiny_policy_dir, out, seed: int) -> pd.DataFrame:
    import torch

    from rmteacher.lm.rm.training import train_reward_model

    torch.manual_seed(1234)  # as the stage's earlier, seeded steps leave it
    return train_reward_model(
        tiny_policy_dir,
        out,
        pairs(32, 0),
        epochs=1.0,
        learning_rate=1e-3,
        batch_size=8,
        center_rewards_coefficient=0.01,
        seed=seed,
        name="rm",
    )


def test_same_seed_same_weights_and_log_other_seed_other_weights(tiny_policy_dir, tmp_path):
    logs = {
        name: train(tiny_policy_dir, tmp_path / name, seed)
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    }
    weights = {name: (tmp_path / name / "model.safetensors").read_bytes() for name in logs}
    assert weights["a"] == weights["b"]
    assert weights["a"] != weights["c"]
    timing = [c for c in logs["a"].columns if "runtime" in c or "per_second" in c]
    pd.testing.assert_frame_equal(logs["a"].drop(columns=timing), logs["b"].drop(columns=timing))
