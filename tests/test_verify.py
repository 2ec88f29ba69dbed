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
    differences, problems, compared = verify.verify(repo)
    assert differences == [] and problems == [] and compared == 4


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
    differences, problems, _ = verify.verify(repo)
    assert problems == []
    assert [(d.key, d.kind) for d in differences] == [("claim_x", "verdict")]
    text = verify.report(differences, 4, "HEAD")
    assert text.splitlines()[2].startswith("| metrics/sec41_report.json | claim_x | undecided")
    assert text.endswith("1 verdict(s) flipped")


def test_missing_and_new_metrics_are_reported(repo):
    """A new metric is a difference; a whole file with no committed version cannot be compared,
    so it is a problem line (it was a 'new' difference before verify became strict)."""
    rewrite(repo, "rm_eval.json", gold_ties=0.0)
    (repo / "metrics" / "extra.json").write_text("{}")
    differences, problems, _ = verify.verify(repo)
    assert {(d.key, d.kind) for d in differences} == {("gold_ties", "new")}
    assert problems == ["metrics/extra.json: not in HEAD, so there is nothing to compare it with"]


def _break(repo, how):
    """One way a metrics file can fail to be comparable."""
    if how == "missing json":
        (repo / "metrics" / "rm_eval.json").unlink()
    elif how == "missing csv":
        (repo / "metrics" / "rm_table.csv").unlink()
    elif how == "corrupt json":
        (repo / "metrics" / "theory_toy.json").write_text('{"slope": -0.5, "n": ')
    elif how == "empty json":
        (repo / "metrics" / "sec41_report.json").write_text("")
    elif how == "json list":
        (repo / "metrics" / "theory_toy.json").write_text("[1, 2]")
    elif how == "binary csv":
        (repo / "metrics" / "rm_table.csv").write_bytes(b"\xff\xfe\x00garbage")
    elif how == "unreadable":
        (repo / "metrics" / "rm_eval.json").unlink()
        (repo / "metrics" / "rm_eval.json").mkdir()
    elif how == "new file":
        (repo / "metrics" / "rloo.json").write_text("{}")


HOLES = [
    "missing json",
    "missing csv",
    "corrupt json",
    "empty json",
    "json list",
    "binary csv",
    "unreadable",
    "new file",
]


@pytest.mark.parametrize("how", HOLES)
def test_a_file_that_cannot_be_compared_is_one_line_listed_first_and_never_reproduced(repo, how):
    """A metrics file missing on either side (what an interrupted stage leaves), unreadable or
    unparseable: one `error:` line naming it, before any value difference, a non-zero exit,
    and never `reproduced`; the other files are still compared."""
    rewrite(repo, "sec41_report.json", final_kl=9.0) if how != "empty json" else None
    _break(repo, how)
    result = cli(repo)
    assert result.returncode == 2, result.stdout
    lines = result.stdout.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: metrics/")]
    assert len(errors) == 1 and lines[0] == errors[0], lines
    assert "Traceback" not in result.stdout + result.stderr
    assert lines[-1].startswith("not verified:")


def test_verify_outside_a_project_or_a_repository_is_one_line(tmp_path):
    result = cli(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no rmteacher project here: no dvc.yaml at or above {tmp_path}; run it inside "
        "the repository"
    ]
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    result = cli(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: verify: {tmp_path} is not in a git repository (nothing to compare with)"
    ]


def test_unknown_revision_is_one_line(repo):
    result = cli(repo, "--against", "nosuchrev")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: verify --against: no git revision 'nosuchrev'"
