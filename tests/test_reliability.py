"""What users see when an input is wrong: every reward field of every stage is checked by the one
reward check, corrupt model folders are one line naming the folder and the file before any
compute (deep check, stage inputs, `rmteacher report`), and every project command finds the
project from any subfolder and names the params file when it is empty or missing."""

import dataclasses
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from rmteacher import pipeline
from rmteacher.core.params import ParamsError
from rmteacher.pipeline import stage_registry

ROOT = Path(__file__).resolve().parents[1]

# Text fields that do not name a reward, and what checks them instead.
NOT_REWARD_FIELDS = {
    "lm_sft.base_policy": "a causal LM, checked by check_model_source (files included)",
    "lm_sft.prompt_data": "a dataset folder or Hub dataset id (check_data_source)",
    "lm_sft.sft_data": "a dataset file, folder or Hub dataset id (check_data_source)",
    "lm_sft.sft_config": "a configuration name of sft_data",
    "lm_sft.sft_split": "a split name of sft_data",
    "theory_gradient_bound.shapes": "choices",
    "sec42_policies.policies": "choices",
    "sec42_policies.own_rm_policies": "choices",
    "sec42_pg.variants": "choices",
    "rloo.rms": "pipeline RM names, checked by RlooParams.check and check_pipeline_rm_names",
    "rloo.beta0_rms": "pipeline RM names, checked by RlooParams.check and check_pipeline_rm_names",
    "rloo.noclip_rms": "pipeline RM names, checked by RlooParams.check and check_pipeline_rm_names",
}


def text_fields():
    """(stage, key, is a list) for every str or list-of-str field of every stage."""
    for stage, cls in stage_registry().items():
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            tp = hints[item.name]
            args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
            if args[0] is str:
                yield stage, item.name, typing.get_origin(tp) is tuple


@pytest.fixture(scope="module")
def bad_folders(tmp_path_factory):
    """Reward-model folders that cannot load: garbage config, truncated and zeroed weights."""
    base = tmp_path_factory.mktemp("bad_rms")
    out = {}
    for name in ("garbage_config", "truncated", "zeroed", "garbage_tokenizer", "no_weights"):
        shutil.copytree(ROOT / "models" / "gold_rm", base / name)
        out[name] = base / name
    (out["garbage_config"] / "config.json").write_text('{"model_type": "gpt2",, }')
    weights = out["truncated"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50_000])
    weights = out["zeroed"] / "model.safetensors"
    weights.write_bytes(bytes(weights.stat().st_size))
    (out["garbage_tokenizer"] / "tokenizer.json").write_text("not json")
    (out["no_weights"] / "model.safetensors").unlink()
    return out


BAD_SPECS = {
    "misspelled scorer": ("minilm_sentimnt", "did you mean 'minilm_sentiment'"),
    "missing folder": ("/no/such/reward/model", "no model directory at /no/such/reward/model"),
    "missing module": ("no_such_module_xyz:score", "cannot import reward"),
    "wrong signature": ("rmteacher.rewards.registry:_vader", "called as f(prompts, responses)"),
    "garbage config": ("{garbage_config}", "config.json is not valid JSON"),
    "truncated weights": ("{truncated}", "model.safetensors is truncated (50000 of"),
    "zeroed weights": ("{zeroed}", "model.safetensors is not a readable safetensors file"),
    "garbage tokenizer": ("{garbage_tokenizer}", "tokenizer.json is not valid JSON"),
    "no weights": ("{no_weights}", "has no weights"),
}


@pytest.mark.parametrize(
    "stage, key, is_list", list(text_fields()), ids=[f"{s}.{k}" for s, k, _ in text_fields()]
)
def test_every_field_that_takes_a_reward_is_checked_by_the_reward_check(
    stage, key, is_list, bad_folders, monkeypatch
):
    """Enumerates every text field of every stage: it names a reward, and then each kind of bad
    reward is one line naming the stage and key; or it is listed above with what checks it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if f"{stage}.{key}" in NOT_REWARD_FIELDS:
        return
    cls = stage_registry()[stage]
    kind = next(f for f in dataclasses.fields(cls) if f.name == key).metadata.get("reward")
    assert kind in ("spec", "rm", "name", "init"), f"{stage}.{key}: mark it param(..., reward=KIND)"
    for spec, message in BAD_SPECS.values():
        spec = spec.format(**{k: str(v) for k, v in bad_folders.items()})
        with pytest.raises(ParamsError) as caught:
            cls.from_mapping({key: [spec] if is_list else spec})
        text = str(caught.value)
        assert text.startswith(f"{stage}.{key}") and "\n" not in text, text
        if kind != "name":  # a 'name' field refuses every spec alike: not a pipeline RM
            assert message in text, text


def test_a_profile_with_a_bad_reward_is_refused_by_the_same_check(tmp_path):
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / "profiles" / "mine.yaml").write_text(
        "sec42_eval:\n  reward_models: [afinn, minilm_sentimnt]\n"
    )
    before = (tmp_path / "params.yaml").read_text()
    with pytest.raises(ParamsError, match=r"^sec42_eval.reward_models \(minilm_sentimnt\): "):
        pipeline.apply_profile("mine", tmp_path / "params.yaml")
    assert (tmp_path / "params.yaml").read_text() == before


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("sec42_eval.reward_models", "[rm_onpolicy_33, afinn]", "'rm_onpolicy_33' is not an RM"),
        ("sec42_pg.reward_models", "[fam_n9_c1]", "'fam_n9_c1' is not an RM these params build"),
        ("reward_scaling.rm", "rm_onpolicy_40", "'rm_onpolicy_40' is not an RM"),
        ("rloo.noclip_rms", "[rm_onpolicy_40]", "'rm_onpolicy_40' is not an RM"),
        ("sec42_pg.reward_models", "[length]", "length not in sec42_eval.reward_models"),
    ],
)
def test_pipeline_rm_names_are_checked_against_the_groups_that_build_them(
    tmp_path, field, value, message
):
    import yaml

    params = tmp_path / "params.yaml"

    data = yaml.safe_load(pipeline.render_defaults())
    group, key = field.split(".")
    data[group][key] = yaml.safe_load(value)
    params.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match=message):
        pipeline.check_params_file(params)


def rmteacher(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "rmteacher", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path):
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("profiles", "notebooks", "models", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def _corrupt(folder: Path, how: str) -> None:
    weights = folder / "model.safetensors"
    if how == "garbage config":
        (folder / "config.json").write_text('{"model_type": "gpt2",, }')
    elif how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:50_000])
    elif how == "zeroed weights":
        weights.write_bytes(bytes(weights.stat().st_size))
    elif how == "garbage tokenizer":
        (folder / "tokenizer.json").write_text("not json")
    elif how == "no weights":
        weights.unlink()


CORRUPTIONS = {
    "garbage config": "config.json is not valid JSON",
    "truncated weights": "model.safetensors is truncated (50000 of",
    "zeroed weights": "model.safetensors is not a readable safetensors file",
    "garbage tokenizer": "tokenizer.json is not valid JSON",
    "no weights": "has no weights",
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_a_corrupt_model_folder_is_one_line_before_compute(project, how):
    """A stage's committed input model (checked with the stage's declared inputs before its
    notebook runs), `rmteacher report`'s policy and its reward model: one line naming the folder
    and what is wrong with it, exit 2, before any sampling or training."""
    policy, rm = project / "models" / "base_lm", project / "models" / "gold_rm"
    _corrupt(policy, how)
    _corrupt(rm, how)
    result = rmteacher("run", "lm_sft", cwd=project)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: stage lm_sft: {policy}") and CORRUPTIONS[how] in lines[0]
    assert not (project / "runs").exists()
    for role, argv in (
        ("--policy", ["--policy", str(policy), "--reward-model", "vader"]),
        (
            "--reward-model",
            ["--policy", str(ROOT / "models" / "base_lm"), "--reward-model", str(rm)],
        ),
    ):
        report = rmteacher(
            "report", *argv, "--prompts", "examples/prompts.txt", "--out", "report_out",
            cwd=project,
        )  # fmt: skip
        lines = report.stderr.strip().splitlines()
        assert report.returncode == 2 and len(lines) == 1, lines
        assert lines[0].startswith(f"error: {role}: ") and CORRUPTIONS[how] in lines[0], lines
    assert not (project / "report_out").exists()


@pytest.mark.parametrize(
    "argv",
    [["check"], ["stages"], ["params", "--check"], ["run", "theory_best_of_n", "--set", "max_n=0"]],
)
def test_every_project_command_finds_the_project_from_a_subfolder(project, argv):
    result = rmteacher(*argv, cwd=project / "notebooks")
    if argv[0] == "run":  # the project's params were found: the override is what fails
        assert result.stderr.strip() == (
            "error: theory_best_of_n.max_n: expected an integer >= 1 and <= 4096, got 0"
        )
    else:
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "argv", [["check"], ["run", "theory_best_of_n"], ["params", "--check"], ["stages"], ["verify"]]
)
def test_outside_any_project_every_project_command_is_one_line(tmp_path, argv):
    result = rmteacher(*argv, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no rmteacher project here: no dvc.yaml at or above {tmp_path}; run it inside "
        "the repository"
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "params.yaml: empty; `rmteacher params --write` writes the defaults"),
        ("# only a comment\n", "params.yaml: empty; `rmteacher params --write` writes the"),
        (None, "params.yaml: no such params file"),
        ("rloo:\n  seeds: [0]\n", "params.yaml: no group '"),
    ],
    ids=["empty", "comment-only", "missing", "groups-missing"],
)
def test_an_empty_or_missing_params_file_is_named(project, content, message):
    params = project / "params.yaml"
    if content is None:
        params.unlink()
    else:
        params.write_text(content)
    for argv in (["check"], ["check", "--deep"], ["run", "theory_best_of_n"]):
        result = rmteacher(*argv, cwd=project)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, lines
        assert message in lines[0], lines
