"""`rmteacher verify`: a rerun's metrics against the committed ones, under the stated tolerance
of each kind of value; drift inside it reproduces, a perturbation beyond it or a flipped verdict
is reported."""

import json
import subprocess
import sys

import pytest

from rmteacher import verify

COMMITTED = {
    "theory_toy.json": {"slope": -0.5, "n": 4},
    "rm_eval.json": {"gold_reward_variance": 0.26, "checks_passed": 6},
    "sec41_report.json": {
        "claim_x": "undecided",
        "claim_x_value": 0.10,
        "claim_x_low": -0.10,
        "claim_x_high": 0.30,
        "final_kl": 2.0,
    },
}
TABLE = "rm,reward_variance,onpolicy_accuracy\ngold,0.26,1.0\nmix,0.9,0.83\n"


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name, values in COMMITTED.items():
        (metrics / name).write_text(json.dumps(values))
    (metrics / "rm_table.csv").write_text(TABLE)
    git("init", "-q", cwd=tmp_path)
    git("add", ".", cwd=tmp_path)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run", cwd=tmp_path)
    return tmp_path


def rewrite(repo, name, **changes):
    values = {**COMMITTED[name], **changes}
    (repo / "metrics" / name).write_text(json.dumps(values))


def cli(repo, *args):
    return subprocess.run(
        [sys.executable, "-m", "rmteacher", "verify", *args],
        cwd=repo,
        capture_output=True,
        text=True,
    )


def test_an_unchanged_run_reproduces(repo):
    result = cli(repo)
    assert result.returncode == 0
    assert result.stdout.strip().splitlines()[-1].startswith("reproduced: 4 metrics files")


def test_drift_inside_each_tolerance_reproduces(repo):
    rewrite(repo, "theory_toy.json", slope=-0.5 * (1 + 1e-8))
    rewrite(repo, "rm_eval.json", gold_reward_variance=0.26 + 1e-4)
    # within half the width of its own interval (0.2), and final_kl within 5 % + 0.02
    rewrite(repo, "sec41_report.json", claim_x_value=0.25, final_kl=2.1)
    differences, compared = verify.verify(repo)
    assert differences == [] and compared == 4


def test_a_perturbation_beyond_the_tolerance_is_flagged(repo):
    rewrite(repo, "theory_toy.json", slope=-0.5 * (1 + 1e-4))
    rewrite(repo, "rm_eval.json", checks_passed=5)
    rewrite(repo, "sec41_report.json", final_kl=2.5)
    (repo / "metrics" / "rm_table.csv").write_text(TABLE.replace("0.83", "0.80"))
    result = cli(repo)
    assert result.returncode == 1
    flagged = {(d.source, d.key, d.kind) for d in verify.verify(repo)[0]}
    assert flagged == {
        ("metrics/theory_toy.json", "slope", "theory"),
        ("metrics/rm_eval.json", "checks_passed", "exact"),
        ("metrics/sec41_report.json", "final_kl", "pg"),
        ("metrics/rm_table.csv", "mix: onpolicy_accuracy", "pre_pg"),
    }
    assert result.stdout.strip().splitlines()[-1].startswith("differs:")


def test_a_flipped_verdict_is_always_reported_first(repo):
    rewrite(repo, "sec41_report.json", claim_x="reproduced")
    differences, _ = verify.verify(repo)
    assert [(d.key, d.kind) for d in differences] == [("claim_x", "verdict")]
    text = verify.report(differences, 4, "HEAD")
    assert text.splitlines()[2].startswith("| metrics/sec41_report.json | claim_x | undecided")
    assert text.endswith("1 verdict(s) flipped")


def test_missing_and_new_metrics_are_reported(repo):
    rewrite(repo, "rm_eval.json", gold_ties=0.0)
    (repo / "metrics" / "extra.json").write_text("{}")
    kinds = {(d.key, d.kind) for d in verify.verify(repo)[0]}
    assert kinds == {("gold_ties", "new"), ("(file)", "new")}


def test_unknown_revision_is_one_line(repo):
    result = cli(repo, "--against", "nosuchrev")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: verify --against: no git revision 'nosuchrev'"
