"""Reward-model training (trl RewardTrainer with the paper's centring penalty) is a function of
its inputs: the same pairs and seed give the same saved weights and log, byte for byte, whatever
the process's random state before (the new one-output head is drawn from the training seed), and
another seed other weights. Starting from a reward model keeps its head unless a new one is
asked for. (The tiny-pipeline test checks the same of the stage, of a policy-gradient unit and of
the report.)"""

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

    torch.manual_seed(seed + 1234)  # whatever state earlier steps leave, the seed decides
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


def test_an_rm_started_from_a_reward_model_keeps_its_head_unless_a_new_one_is_asked(
    tiny_policy_dir, tmp_path
):
    import torch
    from safetensors.torch import load_file

    from rmteacher.lm.rm.names import init_source
    from rmteacher.lm.rm.training import train_reward_model

    train(tiny_policy_dir, tmp_path / "first", 0)
    start = load_file(tmp_path / "first" / "model.safetensors")["score.weight"]
    for new_head in (False, True):
        out = tmp_path / f"again_{new_head}"
        train_reward_model(
            str(tmp_path / "first"), out, pairs(8, 1), epochs=1.0, learning_rate=1e-9,
            batch_size=8, center_rewards_coefficient=0.0, seed=3, name="rm", new_head=new_head,
        )  # fmt: skip
        head = load_file(out / "model.safetensors")["score.weight"]
        assert torch.allclose(head, start, atol=1e-6) is (not new_head)
    assert init_source("gold", "pol", "models/gold_rm") == ("models/gold_rm", False)
    assert init_source("gold_body", "pol", "models/gold_rm") == ("models/gold_rm", True)
    assert init_source("policy", "pol", "models/gold_rm") == ("pol", False)


def test_an_init_from_r_g_needs_r_g_to_be_a_model_and_the_own_rms_known_policies():
    import pytest

    from rmteacher.core.params import ParamsError
    from rmteacher.stages.lm.params.rm_train import RmTrainParams
    from rmteacher.stages.lm.params.sec42_policies import Sec42PoliciesParams

    assert RmTrainParams.from_mapping({"init": "gold"}).init == "gold"
    with pytest.raises(ParamsError, match="rm_train.init='gold_body' starts from r_G's weights"):
        RmTrainParams.from_mapping({"init": "gold_body", "gold": "vader"})
    with pytest.raises(ParamsError, match="own_rm_policies: distinct names among policies"):
        Sec42PoliciesParams.from_mapping(
            {"policies": ["sft", "sft_quotes"], "own_rm_policies": ["sft_austen"]}
        )
