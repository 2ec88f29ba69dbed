"""`rmteacher report`: end to end on the tiny policy, bad inputs stopped before any compute, and
the library functions a notebook calls (ranking, Table 1 rows, prompt files)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmteacher.cli import main
from rmteacher.lm.rm.evaluation import TABLE1_COLUMNS
from rmteacher.report import (
    ReportInputError,
    default_out_dir,
    evaluate_rewards_on_policy,
    name_reward_specs,
    predicted_ranking,
    read_prompts,
    rm_rows,
)

PROMPTS = ["The letter arrived on a", "She walked along the road", "In the morning the house"]


@pytest.fixture
def prompt_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join([PROMPTS[0], "", PROMPTS[1], "   ", PROMPTS[2]]) + "\n")
    return path


def test_report_command_end_to_end(tiny_policy_dir, tiny_reward_dir, prompt_file, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    cmd = [
        sys.executable,
        "-m",
        "rmteacher",
        "report",
        "--policy",
        tiny_policy_dir,
        "--reward-model",
        "length",
        "afinn",
        "--reward-model",
        f"tiny_rm={tiny_reward_dir}",
        "--gold",
        "vader",
        "--prompts",
        str(prompt_file),
        "--samples",
        "3",
        "--max-new-tokens",
        "8",
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "report.csv")
    assert list(table.columns) == TABLE1_COLUMNS + ["teacher_score", "predicted_rank"]
    assert set(table["rm"]) == {"length", "afinn", "tiny_rm", "gold"}
    assert table["rm"].iloc[-1] == "gold" and np.isnan(table["predicted_rank"].iloc[-1])
    assert table.loc[table.rm == "gold", "onpolicy_accuracy"].item() == 1.0
    ranks = table["predicted_rank"].dropna()
    assert len(ranks) == 3 and ranks.min() == 1 and ranks.is_monotonic_increasing
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("length", "afinn", "tiny_rm", "gold"):
        assert np.load(out / f"rewards_{name}.npy").shape == (3, 3)
        assert name in result.stdout
    samples = json.loads((out / "samples.json").read_text())
    assert samples["prompts"] == PROMPTS and [len(r) for r in samples["responses"]] == [3, 3, 3]
    assert set(json.loads((out / "normalization.json").read_text())) == set(table["rm"])
    assert (
        "predicted teacher ranking, by (reward variance + on-policy accuracy) / 2" in result.stdout
    )


@pytest.fixture
def bad_dirs(tiny_policy_dir, tiny_reward_dir, tmp_path):
    """Policies without tokenizer files or chat template; a two-output classifier."""
    no_tok = tmp_path / "policy_without_tokenizer"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        if (Path(tiny_policy_dir) / name).is_file():
            shutil.copy(Path(tiny_policy_dir) / name, no_tok / name)
    no_chat = tmp_path / "policy_without_chat_template"
    shutil.copytree(tiny_policy_dir, no_chat)
    (no_chat / "chat_template.jinja").unlink()
    two_heads = tmp_path / "two_output_rm"
    shutil.copytree(tiny_reward_dir, two_heads)
    config = json.loads((two_heads / "config.json").read_text())
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    (two_heads / "config.json").write_text(json.dumps(config))
    return {"no_tok": str(no_tok), "no_chat": str(no_chat), "two_heads": str(two_heads)}


BAD_INPUTS = {
    "missing prompt file": ({"--prompts": "{tmp}/nope.txt"}, "--prompts: no such file"),
    "empty prompt file": ({"--prompts": "{tmp}/empty.txt"}, "contains no prompts"),
    "one sample": ({"--samples": "1"}, "--samples: expected an integer >= 2"),
    "causal LM as RM": ({"--reward-model": "{policy}"}, "expected a *ForSequenceClassification"),
    "two-output RM": ({"--reward-model": "{two_heads}"}, "has 2 outputs"),
    "policy without tokenizer": ({"--policy": "{no_tok}"}, "has no tokenizer files"),
    "policy without chat template": ({"--policy": "{no_chat}"}, "has no chat template"),
    "missing policy": ({"--policy": "{tmp}/no/such/policy"}, "no model directory"),
    "policy Hub id offline": ({"--policy": "some-org/some-policy"}, "cannot be fetched offline"),
    "RM Hub id offline": ({"--reward-model": "some-org/some-rm"}, "cannot be fetched offline"),
    "gold Hub id offline": ({"--gold": "some-org/gold-rm"}, "cannot be fetched offline"),
    "duplicate RM names": ({"--reward-model": "afinn afinn"}, "duplicate reward-model name"),
    "unknown scorer": ({"--reward-model": "not_a_scorer"}, "neither a registered scorer"),
    "out is a file": ({"--out": "{policy}/config.json"}, "exists and is not a directory"),
    "out under a file": ({"--out": "{policy}/config.json/report"}, "is not a directory"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_fail_with_one_line_before_compute(
    case, tiny_policy_dir, bad_dirs, prompt_file, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "empty.txt").write_text("\n  \n\n")
    changes, message = BAD_INPUTS[case]
    values = {
        "--policy": tiny_policy_dir,
        "--reward-model": "length",
        "--gold": "vader",
        "--prompts": str(prompt_file),
        "--samples": "3",
    }
    fill = {"tmp": tmp_path, "policy": tiny_policy_dir, **bad_dirs}
    values.update({k: v.format(**fill) for k, v in changes.items()})
    out = tmp_path / "out"
    argv = ["report", "--out", str(out)]
    for flag, value in values.items():
        argv += [flag, *value.split()]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().count("\n") == 0 and captured.err.startswith("error: ")
    assert message in captured.err, captured.err
    assert captured.out == "" and not out.exists()


PLUGINS = """
def raises(prompts, responses):
    raise RuntimeError("scoring server unreachable")


def too_few(prompts, responses):
    return [0.0] * (len(responses) - 1)


def not_finite(prompts, responses):
    return [float("nan")] * len(responses)
"""


@pytest.mark.parametrize(
    "plugin, message",
    [
        ("raises", "raised RuntimeError on prompts 0-1: scoring server unreachable"),
        ("too_few", "returned 1 scores for the 2 responses"),
        ("not_finite", "non-finite"),
    ],
)
def test_a_failing_plugin_reward_stops_the_report_before_the_policy_samples(
    plugin, message, tiny_policy_dir, prompt_file, tmp_path, monkeypatch, capsys
):
    """A `module:function` reward that raises, returns the wrong number of scores or NaN is
    probed before sampling: one line naming it, exit 2, nothing sampled, no output directory."""
    (tmp_path / "report_plugins.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_sampling(*args, **kwargs):
        raise AssertionError("the policy sampled before the plug-in was probed")

    monkeypatch.setattr("rmteacher.lm.world.sampling.sample_responses", no_sampling)
    out = tmp_path / "out"
    argv = ["report", "--policy", tiny_policy_dir, "--prompts", str(prompt_file)]
    argv += ["--reward-model", "length", f"bad=report_plugins:{plugin}", "--out", str(out)]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --reward-model bad: "), lines
    assert message in lines[0] and "probe before sampling" in lines[0]
    assert captured.out == "" and not out.exists()


def test_library_call_with_loaded_rewards_and_without_gold(tiny_policy_dir):
    """A notebook can pass callables; without a gold reward the ranking is by variance."""
    rewards = {
        "chars": lambda p, r: [float(len(x)) for x in r],
        "constant": lambda p, r: [1.0] * len(r),
    }
    pairs = (["a", "b"], [["good", "bad"], ["x", "yy"]], np.array([[1.0, 0.0], [0.0, 1.0]]))
    report = evaluate_rewards_on_policy(
        tiny_policy_dir,
        rewards,
        None,
        PROMPTS[:2],
        4,
        seed=1,
        max_new_tokens=6,
        offpolicy=pairs,
        progress=False,
    )
    assert not report.has_gold and report.matrices["chars"].shape == (2, 4)
    offpolicy = report.table.set_index("rm")["offpolicy_accuracy"]
    assert offpolicy.to_dict() == {"chars": 1.0, "constant": 0.0}
    assert report.ranking[-1] == "constant"
    assert report.table.attrs["predictor"] == "variance"
    assert report.table["onpolicy_accuracy"].isna().all()
    again = evaluate_rewards_on_policy(
        tiny_policy_dir, rewards, None, PROMPTS[:2], 4, seed=1, max_new_tokens=6, progress=False
    )
    assert again.responses == report.responses  # seeded sampling


def test_predicted_ranking_uses_variance_plus_accuracy_with_a_gold():
    table = pd.DataFrame(
        {
            "rm": ["accurate_flat", "noisy", "balanced", "gold"],
            "reward_variance": [0.1, 0.9, 0.6, 0.3],
            "onpolicy_accuracy": [1.0, 0.3, 0.8, 1.0],
        }
    )
    ranked = predicted_ranking(table)
    assert ranked["rm"].tolist() == ["balanced", "noisy", "accurate_flat", "gold"]
    np.testing.assert_allclose(ranked["teacher_score"][:3], [0.7, 0.6, 0.55])
    by_variance = predicted_ranking(table.assign(onpolicy_accuracy=np.nan))
    assert by_variance["rm"].tolist()[:3] == ["noisy", "balanced", "accurate_flat"]
    assert by_variance.attrs["predictor"] == "variance"


def test_ranking_uses_untied_accuracy_when_the_gold_ties_many_pairs():
    """A lexicon RM that ties where the gold ties gets tie-rule credit for it; above 5 % gold ties
    the ranking switches to accuracy over the pairs the gold does not tie, and says so."""
    table = pd.DataFrame(
        {
            "rm": ["ties_like_gold", "dense", "gold"],
            "reward_variance": [0.5, 0.5, 0.3],
            "onpolicy_accuracy": [0.8, 0.6, 1.0],
            "onpolicy_accuracy_untied": [0.55, 0.75, 1.0],
        }
    )
    table.attrs["gold_tie_fraction"] = 0.04
    assert predicted_ranking(table)["rm"].tolist()[0] == "ties_like_gold"
    table.attrs["gold_tie_fraction"] = 0.3
    ranked = predicted_ranking(table)
    assert ranked["rm"].tolist()[0] == "dense"
    assert ranked.attrs["predictor"] == "combined_untied"
    assert ranked.attrs["gold_tie_fraction"] == 0.3


def test_rm_rows_match_table1_definitions():
    rng = np.random.default_rng(0)
    gold = rng.normal(size=(5, 4))
    matrices = {"scaled_gold": 3 * gold + 2, "noise": rng.normal(size=(5, 4)), "gold": gold}
    table, norms = rm_rows(matrices)
    assert list(table.columns) == TABLE1_COLUMNS and table["offpolicy_accuracy"].isna().all()
    row = table.set_index("rm").loc["scaled_gold"]
    assert row["onpolicy_accuracy"] == 1.0
    assert row["reward_variance"] == pytest.approx(
        table.set_index("rm").loc["gold", "reward_variance"]
    )
    normalized = norms["noise"](matrices["noise"])
    assert normalized.mean() == pytest.approx(0) and normalized.std(ddof=1) == pytest.approx(1)


def test_prompt_files_and_reward_names(tmp_path):
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text('{"prompt": "First one"}\n\n{"prompt": " Second ", "id": 2}\n')
    assert read_prompts(jsonl) == ["First one", "Second"]
    jsonl.write_text('{"text": "no prompt field"}\n')
    with pytest.raises(ReportInputError, match="prompts.jsonl:1 has no non-empty"):
        read_prompts(jsonl)
    named = name_reward_specs(["afinn", "lex=textblob", "pkg.mod:score_fn", "/x/y/rm_dir/"])
    assert named == {
        "afinn": "afinn",
        "lex": "textblob",
        "score_fn": "pkg.mod:score_fn",
        "rm_dir": "/x/y/rm_dir/",
    }
    with pytest.raises(ReportInputError, match="reserved for --gold"):
        name_reward_specs(["gold=vader"])
    assert str(default_out_dir("artifacts/lm_sft/policy")) == "report/artifacts_lm_sft_policy"
