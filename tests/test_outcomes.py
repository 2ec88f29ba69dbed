"""The README's outcome table is generated from the committed metrics and states exactly the
verdicts the stages computed."""

import json

from rmteacher import outcomes


def test_readme_outcome_table_matches_the_committed_metrics():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    expected = outcomes.block(outcomes.read_metrics(root / "metrics"))
    assert outcomes.current_block(readme) == expected, (
        "README outcome table is stale: run `rmteacher outcomes --write`"
    )


def test_table_reports_computed_verdicts_with_their_intervals_and_missing_stages(tmp_path):
    (tmp_path / "sec41_report.json").write_text(
        json.dumps(
            {
                "claim_perfect_rm_teaches_slowest": "undecided",
                "claim_perfect_rm_teaches_slowest_value": 0.1234,
                "claim_perfect_rm_teaches_slowest_low": -0.02,
                "claim_perfect_rm_teaches_slowest_high": 0.25,
            }
        )
    )
    text = outcomes.table(outcomes.read_metrics(tmp_path))
    row = next(line for line in text.splitlines() if "teaches slowest" in line)
    assert "| undecided |" in row and "0.123 [-0.020, 0.250]" in row
    # a stage without metrics, and a claim its stage did not decide, say so instead of a verdict
    scaling = next(line for line in text.splitlines() if "uniform reward scale" in line)
    assert f"| {outcomes.NOT_RUN} |" in scaling
    proxy = next(line for line in text.splitlines() if "proxy increase (Table 2" in line)
    assert "did not decide" in proxy


def test_write_replaces_only_the_block_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{outcomes.START}\nold table\n{outcomes.END}\n\noutro\n")
    (tmp_path / "metrics").mkdir()
    assert outcomes.write(readme, tmp_path / "metrics")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old table" not in text
    assert not outcomes.write(readme, tmp_path / "metrics")  # already current
