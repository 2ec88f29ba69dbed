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


def test_headlines_carry_each_claims_verdict_value_and_interval(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "sec41_report.json").write_text(
        json.dumps(
            {
                "claim_perfect_rm_teaches_slowest": "reproduced",
                "claim_perfect_rm_teaches_slowest_value": 0.1,
                "claim_perfect_rm_teaches_slowest_low": 0.02,
                "claim_perfect_rm_teaches_slowest_high": 0.2,
            }
        )
    )
    (metrics / "theory_best_of_n.json").write_text(
        json.dumps({"bon_accurate_rm_is_best": False, "bon_gold_at_max_n_accurate": 0.5})
    )
    out = tmp_path / "headlines"
    out.mkdir()
    (out / "stale.json").write_text("{}")
    written = outcomes.write_headlines(out, metrics)
    rows = {p.name: json.loads(p.read_text()) for p in written}
    assert sorted(p.name for p in out.iterdir()) == sorted(rows)  # the stale file is gone
    assert rows["sec41_perfect_rm_teaches_slowest.json"] == {
        "verdict": "reproduced",
        "value": 0.1,
        "low": 0.02,
        "high": 0.2,
    }
    assert rows["theory_best_of_n.json"] == {"verdict": "fails", "value": 0.5}
    # claims their stage did not decide (no metrics, or no verdict key) get no file
    assert "sec41_proxy_beats_gold_early.json" not in rows and len(rows) == 2


def test_dvc_declares_only_the_headlines_as_metrics_and_they_match_the_committed_run(tmp_path):
    """`dvc metrics show` lists one short row per claim: the `outcomes` stage's files are the only
    declared metrics (every stage's full metrics file is a plain output), and the committed
    headlines are what the committed metrics give."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    declared = [
        next(iter(entry)) if isinstance(entry, dict) else entry
        for stage in stages.values()
        for entry in stage.get("metrics", [])
    ]
    assert declared == ["metrics/outcomes"]
    outs = {
        next(iter(e)) if isinstance(e, dict) else e
        for s in stages.values()
        for e in s.get("outs", [])
    }
    assert {
        f"metrics/{name}.json"
        for name, stage in stages.items()
        if name not in ("params_check", "outcomes", "book") and "matrix" not in stage
    } <= outs  # (a matrix stage is one cached policy-gradient unit; its stage writes the metrics)
    outcomes.write_headlines(tmp_path, root / "metrics")
    committed = sorted((root / "metrics" / "outcomes").glob("*.json"))
    assert [p.name for p in committed] == sorted(p.name for p in tmp_path.glob("*.json"))
    for path in committed:
        assert path.read_text() == (tmp_path / path.name).read_text(), path.name
