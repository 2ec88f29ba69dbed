"""The `paper` profile's code path, offline, with architecture-equivalent stand-ins: the profile's
own parameters, with only model and data locations and sizes replaced, run through the stage
code of Section 4.1 - lm_sft, rm_train, rm_eval and one RLOO unit - in a scratch project.

Stand-ins, built here and never downloaded:
* Pythia-2.8B -> a tiny random `GPTNeoXForCausalLM` whose tokenizer has no chat template (as
  Pythia's has none), so the paper's chat format is installed by fine-tuning;
* ArmoRM-Llama3-8B -> a tiny random Llama sequence classifier with its own modelling code
  (`auto_map`, loaded with `+remote_code`) and a multi-objective head whose output carries a
  separate `score`, as ArmoRM's does;
* UltraFeedback -> a folder of train_prefs.jsonl and test_prefs.jsonl in the binarized schema,
  some records too long for `max_text_tokens`;
* AlpacaFarm's sft split -> a JSONL of instruction / input / output records.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORDS = "the day was long and the house stood quiet by the road in the morning light".split()
N_OBJECTIVES = 3

REMOTE_CODE = '''"""A stand-in for ArmoRM's class: several objectives and a separate score."""
from dataclasses import dataclass

import torch
from transformers import LlamaForSequenceClassification
from transformers.utils import ModelOutput


@dataclass
class MultiObjectiveOutput(ModelOutput):
    logits: torch.FloatTensor | None = None
    score: torch.FloatTensor | None = None


class MultiObjectiveRewardModel(LlamaForSequenceClassification):
    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        weights = torch.linspace(1.0, 2.0, out.logits.shape[-1], device=out.logits.device)
        return MultiObjectiveOutput(logits=out.logits, score=(out.logits * weights).sum(-1))
'''


@pytest.fixture(scope="module")
def stand_ins(tiny_policy_dir, tmp_path_factory, tiny_hf_config):
    """{name: path} of the stand-in models and data (see the module docstring)."""
    from transformers import GPTNeoXForCausalLM, LlamaForSequenceClassification

    from rmteacher.core.hf import load_tokenizer

    root = tmp_path_factory.mktemp("paper_stand_ins")
    tokenizer = load_tokenizer(tiny_policy_dir)
    tokenizer.chat_template = None  # Pythia's tokenizer has no chat template
    torch.manual_seed(0)
    pythia = GPTNeoXForCausalLM(tiny_hf_config("gpt_neox", tokenizer))
    pythia.save_pretrained(root / "pythia")
    tokenizer.save_pretrained(root / "pythia")

    armo_dir = root / "armorm"
    torch.manual_seed(1)
    armo = LlamaForSequenceClassification(
        tiny_hf_config("llama", tokenizer, num_labels=N_OBJECTIVES)
    )
    armo.save_pretrained(armo_dir)
    load_tokenizer(tiny_policy_dir).save_pretrained(armo_dir)  # ArmoRM's has a chat template
    (armo_dir / "modeling_stand_in.py").write_text(REMOTE_CODE)
    config = json.loads((armo_dir / "config.json").read_text())
    config["architectures"] = ["MultiObjectiveRewardModel"]
    config["auto_map"] = {
        "AutoModelForSequenceClassification": "modeling_stand_in.MultiObjectiveRewardModel"
    }
    (armo_dir / "config.json").write_text(json.dumps(config, indent=1))

    rng = np.random.default_rng(0)
    ultrafeedback = root / "ultrafeedback"
    ultrafeedback.mkdir()
    for split, n in (("train_prefs", 60), ("test_prefs", 16)):
        lines = []
        for i in range(n):
            long = i % 10 == 9  # one record in ten is too long for max_text_tokens
            prompt = " ".join(rng.choice(WORDS, 60 if long else 5))
            chosen, rejected = (" ".join(rng.choice(WORDS, 4)) for _ in range(2))
            user = {"role": "user", "content": prompt}
            record = {
                "prompt": prompt,
                "prompt_id": f"{split}-{i}",
                "chosen": [user, {"role": "assistant", "content": chosen}],
                "rejected": [user, {"role": "assistant", "content": rejected}],
                "score_chosen": 8.0,
                "score_rejected": 4.0,
            }
            lines.append(json.dumps(record))
        (ultrafeedback / f"{split}.jsonl").write_text("\n".join(lines) + "\n")

    alpaca = root / "alpaca_farm_sft.jsonl"
    alpaca.write_text(
        "\n".join(
            json.dumps(
                {
                    "instruction": " ".join(rng.choice(WORDS, 4)),
                    "input": " ".join(rng.choice(WORDS, 3)) if i % 2 else "",
                    "output": " ".join(rng.choice(WORDS, 5)),
                }
            )
            for i in range(16)
        )
        + "\n"
    )
    return {
        "pythia": str(root / "pythia"),
        "armorm": str(armo_dir),
        "ultrafeedback": str(ultrafeedback),
        "alpaca": str(alpaca),
    }


def paper_params(stand_ins) -> dict:
    """The paper profile's groups with the stand-ins' locations and toy sizes; every other value
    (seeds, split rule, learning-rate schedule, k, KL, clipping, RM-training recipe, the perfect
    RM's scaling) is the profile's own."""
    groups = yaml.safe_load((ROOT / "profiles" / "paper.yaml").read_text())
    toy = {
        "lm_sft": {
            "base_policy": stand_ins["pythia"],
            "prompt_data": stand_ins["ultrafeedback"],
            "sft_data": stand_ins["alpaca"],
            "sft_config": "",
            "max_text_tokens": 48,
            "n_rm_prompts": 36,
            "n_pg_prompts": 8,
            "n_test_prompts": 12,
            "n_sft_examples": 16,
            "batch_size": 8,
            "learning_rate": 1e-3,
            "max_new_tokens": 6,
        },
        "rm_train": {
            "gold": stand_ins["armorm"] + "+remote_code",
            "onpolicy_fractions": [1.0, 0.0],
            "n_pairs": 24,
            "batch_size": 8,
            "learning_rate": 1e-3,
        },
        "rm_eval": {
            "n_prompts": 8,
            "n_samples": 4,
            "check_pairs": 24,
            "family_noise": [0.0, 1.0],
            "family_compression": [1.0],
        },
        "pg": {
            "prompts_per_step": 4,
            "eval_prompts": 4,
            "eval_samples": 2,
            "learning_rate": 1e-3,
            "num_processes": 1,
        },
        "rloo": {"rms": ["rm_onpolicy_100", "gold"], "epochs": 1.0},
    }
    return {stage: {**groups.get(stage, {}), **values} for stage, values in toy.items()}


def test_the_paper_profile_runs_section_4_1_on_stand_ins(stand_ins, tmp_path, monkeypatch):
    from rmteacher.core import paths
    from rmteacher.lm.world.prompts import World
    from rmteacher.lm.world.ultrafeedback import read_pairs, train_test_split
    from rmteacher.rewards.registry import load_reward
    from rmteacher.stages.lm import lm_sft, rloo, rm_eval, rm_train

    groups = paper_params(stand_ins)
    monkeypatch.chdir(tmp_path)  # every stage writes relative to the project root

    sft_params = lm_sft.LmSftParams.from_mapping(groups["lm_sft"])
    sft = lm_sft.run(sft_params, quicklook_prompts=4)
    world = World.load()
    assert {split: len(p) for split, p in world.prompts.items()} == {
        "sft": 16,
        "rm_train": 36,
        "pg_train": 8,
        "test": 12,
    }
    # UltraFeedback's split as the paper draws it: long records dropped, then 80 / 20 (seed 1283)
    train = read_pairs(stand_ins["ultrafeedback"])
    kept = train[train.prompt.str.split().str.len() < 60].reset_index(drop=True)
    rm_rows, pg_rows = train_test_split(len(kept), 0.2, 1283)
    assert len(pg_rows) == 11  # ceil(0.2 * 54)
    assert world.prompt_texts("pg_train") == kept.prompt[pg_rows[:8]].tolist()
    assert world.prompt_texts("rm_train") == kept.prompt[rm_rows[:36]].tolist()
    assert world.prompts["rm_train"][0].rejected == kept.rejected[rm_rows[0]]
    assert world.prompts["sft"][1].prompt.count("\n\n") == 1  # AlpacaFarm's instruction + input
    # the paper's chat format was installed on the Pythia stand-in and saved with the policy
    template = (paths.SFT_POLICY / "chat_template.jinja").read_text()
    assert "<|user|>" in template and "generation" in template
    assert sft.metrics["n_pg_train_prompts"] == 8 and np.isfinite(sft.metrics["sft_final_loss"])

    rm_train.run(rm_train.RmTrainParams.from_mapping(groups["rm_train"]))
    candidates = pd.read_json(paths.candidates("rm_train"), lines=True)
    assert {"off_uf_chosen", "off_uf_rejected"} <= set(candidates.columns)
    assert not any(c.startswith("off_t") for c in candidates.columns)  # no base-LM samples
    # the paper's relabelling: the recorded pair, swapped where r_G prefers the rejected one
    swapped = candidates.gold_off_uf_rejected > candidates.gold_off_uf_chosen
    assert 0 < swapped.sum() < len(candidates)
    expected = np.where(swapped, candidates.off_uf_rejected, candidates.off_uf_chosen)
    assert (candidates.off_chosen == expected).all()
    manifest = json.loads(paths.RM_MANIFEST.read_text())
    assert manifest["gold"].endswith("+remote_code")
    assert [rm["name"] for rm in manifest["rms"]] == ["rm_onpolicy_100", "rm_onpolicy_0"]

    # r_G is the remote class's `score`, not its first objective
    gold = load_reward(manifest["gold"])
    prompt, response = candidates.prompt[0], candidates.on_a[0]
    model = gold.fn.model
    enc = gold.fn.tokenizer([gold.fn.format(prompt, response)], return_tensors="pt")
    with torch.no_grad():
        output = model(**enc)
    assert output.logits.shape[-1] == N_OBJECTIVES
    assert gold([prompt], [response])[0] == pytest.approx(float(output.score[0]), abs=1e-5)
    assert gold([prompt], [response])[0] != pytest.approx(float(output.logits[0, 0]), abs=1e-5)

    table = rm_eval.run(rm_eval.RmEvalParams.from_mapping(groups["rm_eval"])).table.set_index("rm")
    assert {"rm_onpolicy_100", "rm_onpolicy_0", "perfect", "gold"} <= set(table.index)
    assert table.loc["gold", "onpolicy_accuracy"] == 1.0
    assert table.loc["perfect", "onpolicy_accuracy"] == 1.0
    assert np.isfinite(table.reward_variance.astype(float)).all()

    rloo_params = rloo.RlooParams.from_groups(groups)
    assert rloo_params.beta == 0.05 and rloo_params.num_generations == 2
    trial = tmp_path / "artifacts" / "rloo_trial"  # one run of seed 0's main unit
    rloo.run_unit(rloo_params, "main", 0, ("rm_onpolicy_100",), out=trial)
    curves = pd.read_csv(trial / "curves.csv")
    assert set(curves.rm) == {"rm_onpolicy_100"}
    assert curves.step.iloc[-1] > 0
    assert np.isfinite(curves[["proxy", "gold", "kl"]]).all().all()
    assert curves.kl.iloc[-1] != pytest.approx(0.0, abs=1e-7)  # the policy moved
    shutil.rmtree(tmp_path / "artifacts")


def test_bad_data_sources_are_one_line_before_compute(stand_ins, tmp_path):
    from rmteacher.core.params import ParamsError
    from rmteacher.stages.lm.lm_sft import LmSftParams

    only_train = tmp_path / "only_train"
    only_train.mkdir()
    shutil.copy(Path(stand_ins["ultrafeedback"]) / "train_prefs.jsonl", only_train)
    train_file = str(only_train / "train_prefs.jsonl")
    cases = {
        "prompt_data": (train_file, "is a file; expected a folder holding train_prefs.jsonl"),
        "sft_data": (str(tmp_path / "missing.jsonl"), "no sft data at"),
    }
    for key, (value, message) in cases.items():
        with pytest.raises(ParamsError, match=f"^lm_sft.{key}: .*{message}"):
            LmSftParams.from_mapping({key: value})
    with pytest.raises(ParamsError, match=r"^lm_sft.prompt_data: no test_prefs data at .*only_"):
        LmSftParams.from_mapping({"prompt_data": str(only_train)})


def test_sft_records_of_each_schema_and_a_bad_one(tmp_path):
    from rmteacher.lm.world.ultrafeedback import sft_passages

    path = tmp_path / "sft.jsonl"
    user, assistant = {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}
    records = [
        {"instruction": "Sort these.", "input": "b a", "output": "a b"},
        {"messages": [user, assistant]},
        {"prompt": "hi", "chosen": [user, assistant], "rejected": [user, assistant]},
        {"text": "no schema"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    passages = sft_passages(str(path), "sft", 3)
    assert [(p.prompt, p.continuation) for p in passages] == [
        ("Sort these.\n\nb a", "a b"),
        ("hi", "yo"),
        ("hi", "yo"),
    ]
    with pytest.raises(ValueError, match=r"sft.jsonl:4: expected chat `messages`"):
        sft_passages(str(path), "sft", 4)
    with pytest.raises(ValueError, match=r"n_sft_examples=5 exceeds the 4 records"):
        sft_passages(str(path), "sft", 5)
