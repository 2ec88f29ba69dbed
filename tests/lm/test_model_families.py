"""The paper's model families through this code, offline. Tiny randomly initialised stand-ins with
the architectures the paper uses — `GPTNeoXForCausalLM` (Pythia-1B/2.8B) and `LlamaForCausalLM`
(Llama-3.2-1B) policies, a `LlamaForSequenceClassification` in the role of the 8B ground truth
(ArmoRM is a Llama-3-8B) — and a local JSONL in UltraFeedback's binarized schema, built here and
never downloaded, go through SFT, RM training, RM evaluation and one RLOO run. None of them
qualifies for the GPT-2 fast path, so every step runs through transformers' generic code."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from rmteacher.lm.pg.loop import PgRunConfig
from rmteacher.lm.pg.sweep import InitialPolicy, TrainingPlan, tracked_run
from rmteacher.lm.rm.training import train_reward_model
from rmteacher.lm.world.sft import finetune
from rmteacher.lm.world.ultrafeedback import read_pairs, sft_rows
from rmteacher.models import fast_gpt2
from rmteacher.report import evaluate_rewards_on_policy
from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import load_reward

GENERATION = {"max_new_tokens": 6, "temperature": 1.0}
WORDS = "the day was long and the house stood quiet by the road in the morning light".split()


@pytest.fixture(scope="module")
def tokenizer_dir(tiny_policy_dir):
    return tiny_policy_dir  # the world's tokenizer, chat template included


@pytest.fixture(scope="module", params=["gpt_neox", "llama"])
def base_policy(request, tokenizer_dir, tmp_path_factory, tiny_hf_config):
    from transformers import GPTNeoXForCausalLM, LlamaForCausalLM

    from rmteacher.core.hf import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    model_class = GPTNeoXForCausalLM if request.param == "gpt_neox" else LlamaForCausalLM
    model = model_class(tiny_hf_config(request.param, tokenizer))
    out = tmp_path_factory.mktemp(f"{request.param}_base")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return request.param, str(out)


@pytest.fixture(scope="module")
def llama_gold(tokenizer_dir, tmp_path_factory, tiny_hf_config):
    """The ground truth's stand-in: a one-output Llama sequence classifier (random weights)."""
    from transformers import LlamaForSequenceClassification

    from rmteacher.core.hf import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(1)
    model = LlamaForSequenceClassification(tiny_hf_config("llama", tokenizer, num_labels=1))
    out = tmp_path_factory.mktemp("llama_gold")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def ultrafeedback_file(tmp_path_factory):
    """Twelve records in `ultrafeedback_binarized`'s schema (chat lists, scores, ids)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("ultrafeedback") / "train_prefs.jsonl"
    lines = []
    for i in range(12):
        prompt, chosen, rejected = (" ".join(rng.choice(WORDS, n)) for n in (5, 4, 4))
        user = {"role": "user", "content": prompt}
        record = {
            "prompt": prompt,
            "prompt_id": f"{i:064x}",
            "chosen": [user, {"role": "assistant", "content": chosen}],
            "rejected": [user, {"role": "assistant", "content": rejected}],
            "messages": [user, {"role": "assistant", "content": chosen}],
            "score_chosen": 8.0,
            "score_rejected": 4.5,
        }
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ultrafeedback_records_become_pairs_and_sft_rows(ultrafeedback_file, tmp_path):
    pairs = read_pairs(ultrafeedback_file)
    assert len(pairs) == 12 and list(pairs.columns[:3]) == ["prompt", "chosen", "rejected"]
    record = json.loads(ultrafeedback_file.read_text().splitlines()[0])
    assert pairs.chosen.iloc[0] == record["chosen"][-1]["content"]
    assert pairs.score_chosen.iloc[0] == 8.0
    rows = sft_rows(pairs)
    assert rows[0]["messages"][1] == {"role": "assistant", "content": pairs.chosen.iloc[0]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "chosen": [{"role": "user", "content": "x"}]}))
    with pytest.raises(ValueError, match=r"bad.jsonl:1: \"chosen\" must be a conversation"):
        read_pairs(bad)


def test_sft_rm_training_evaluation_and_one_rloo_run(
    base_policy, llama_gold, ultrafeedback_file, tmp_path
):
    family, base_dir = base_policy
    pairs = read_pairs(ultrafeedback_file)
    prompts = pairs.prompt.tolist()

    sft_dir = tmp_path / "sft"
    sft_log = finetune(
        base_dir,
        sft_dir,
        sft_rows(pairs),
        epochs=1.0,
        learning_rate=1e-3,
        batch_size=4,
        max_length=64,
        seed=0,
    )
    assert len(sft_log) > 0 and np.isfinite(sft_log.loss.dropna()).all()

    rm_dir = tmp_path / "rm"
    rm_log = train_reward_model(
        str(sft_dir),
        rm_dir,
        pairs[["prompt", "chosen", "rejected"]],
        epochs=1.0,
        learning_rate=1e-3,
        batch_size=4,
        center_rewards_coefficient=0.01,
        seed=0,
        name="rm",
    )
    assert len(rm_log) > 0
    expected_head = {"gpt_neox": "GPTNeoXForSequenceClassification"}
    architecture = json.loads((rm_dir / "config.json").read_text())["architectures"][0]
    assert architecture == expected_head.get(family, "LlamaForSequenceClassification")

    report = evaluate_rewards_on_policy(
        str(sft_dir),
        {"rm": str(rm_dir), "length": "length"},
        llama_gold,
        prompts[:6],
        n_samples=3,
        max_new_tokens=GENERATION["max_new_tokens"],
        progress=False,
    )
    table = report.table.set_index("rm")
    assert set(table.index) == {"rm", "length", "gold"}
    assert np.isfinite(table.loc[["rm", "length"], "reward_variance"].astype(float)).all()

    initial = InitialPolicy.load("sft", str(sft_dir), GENERATION)
    assert not fast_gpt2.supports(initial.reference)  # the generic transformers path ran
    plan = TrainingPlan.build(
        prompts[:8], 4, 4, k=2, prompts_per_step=4, epochs=1, evals_per_epoch=1
    )
    cfg = PgRunConfig(
        num_generations=2, prompts_per_step=4, beta=0.05, learning_rate=1e-2, seed=0, **GENERATION
    )
    proxy, gold = load_reward(str(rm_dir), "rm"), load_reward(llama_gold, "gold")
    curve, log, _ = tracked_run(
        initial, plan, "rm", proxy, Normalization(0.0, 1.0), gold, Normalization(0.0, 1.0), cfg
    )
    assert len(log) == plan.max_steps and np.isfinite(log.grad_norm).all()
    assert isinstance(curve, pd.DataFrame) and np.isfinite(curve[["proxy", "gold"]]).all().all()
    assert curve.kl.iloc[-1] != pytest.approx(0.0, abs=1e-7)  # the policy moved
