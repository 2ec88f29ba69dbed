"""The README's outcome table, the headline metrics and the book's verdict boxes and Deviations
page are generated from the claims registry and the committed metrics, and state exactly the
verdicts the stages computed under the registered rules."""

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


def decided(key: str, verdict: str, **numbers) -> dict:
    """A stage's metrics for one claim decided under the registered rule."""
    from rmteacher.verdicts.claims import claim

    out = {f"claim_{key}": verdict, f"claim_{key}_rule_hash": claim(key).rule_hash()}
    return out | {f"claim_{key}_{name}": value for name, value in numbers.items()}


def test_table_reports_computed_verdicts_with_their_intervals_and_missing_stages(tmp_path):
    (tmp_path / "sec41_report.json").write_text(
        json.dumps(
            decided(
                "perfect_rm_teaches_slowest", "undecided", value=0.1234, low=-0.02, high=0.25, n=5
            )
            | decided("proxy_beats_gold_early", "reproduced")
            | {"claim_proxy_beats_gold_early_rule_hash": "an-old-rule"}
        )
    )
    text = outcomes.table(outcomes.read_metrics(tmp_path))
    row = next(line for line in text.splitlines() if "raises r_G slower than every mix" in line)
    assert "| undecided |" in row and "0.123 [-0.020, 0.250], 5 seeds" in row
    # a stage without metrics, a claim its stage did not decide, and a verdict computed under
    # another rule say so instead of a verdict
    scaling = next(line for line in text.splitlines() if "uniform reward scale" in line)
    assert f"| {outcomes.NOT_RUN} |" in scaling and "has no metrics" in scaling
    proxy = next(line for line in text.splitlines() if "reward variance predicts the proxy" in line)
    assert "did not decide" in proxy
    old = next(line for line in text.splitlines() if "faster than training on r_G itself" in line)
    assert f"| {outcomes.NOT_RUN} |" in old and "older rule" in old


def test_not_testable_and_undecided_rows_say_why(tmp_path):
    (tmp_path / "sec41_report.json").write_text(
        json.dumps(
            decided(
                "variance_predicts_gold_increase",
                "not testable",
                checks_failed="variance_span",
                n=5,
                seeds=5,
            )
            | decided("variance_predicts_proxy_increase", "not testable", n=5, seeds=1)
            | decided(
                "variance_and_accuracy_beats_accuracy",
                "undecided",
                gates_failed="leave_one_rm_out",
                n=5,
                seeds=5,
            )
        )
    )
    text = outcomes.table(outcomes.read_metrics(tmp_path))
    lines = {line.split(" |")[0]: line for line in text.splitlines()}
    gold = next(v for k, v in lines.items() if "predicts the r_G increase (" in k)
    assert "manipulation check failed: variance_span" in gold
    proxy = next(v for k, v in lines.items() if "predicts the proxy increase" in k)
    assert "only one seed per unit, the rule needs 2" in proxy
    combined = next(v for k, v in lines.items() if "better than any" in k)
    assert "gate failed: leave_one_rm_out" in combined


def test_a_duplicate_claim_is_counted_once(tmp_path):
    (tmp_path / "sec42_report.json").write_text(
        json.dumps(
            decided("report_ranking_predicts_rloo", "undecided", value=0.03)
            | decided("variance_and_accuracy_orders_rms", "undecided", value=0.03)
            | {"report_equals_variance_and_accuracy": True}
        )
    )
    text = outcomes.table(outcomes.read_metrics(tmp_path))
    assert "orders each policy's RMs" not in text
    assert "the same statistic as variance_and_accuracy_orders_rms, counted once" in text
    assert outcomes.rows(outcomes.read_metrics(tmp_path))  # the report's row stands


def test_write_replaces_only_the_block_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{outcomes.START}\nold table\n{outcomes.END}\n\noutro\n")
    (tmp_path / "metrics").mkdir()
    assert outcomes.write(readme, tmp_path / "metrics")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old table" not in text
    assert not outcomes.write(readme, tmp_path / "metrics")  # already current


def test_headlines_carry_each_claims_verdict_value_interval_and_the_registry_hash(tmp_path):
    from rmteacher.verdicts.claims import registry_hash

    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "sec41_report.json").write_text(
        json.dumps(
            decided(
                "perfect_rm_teaches_slowest",
                "reproduced",
                value=0.1,
                low=0.02,
                high=0.2,
                n=5,
                seeds=5,
                p=None,
            )
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
    assert rows["perfect_rm_teaches_slowest.json"] == {
        "verdict": "reproduced",
        "value": 0.1,
        "low": 0.02,
        "high": 0.2,
        "n": 5,
    }
    assert rows["theory_best_of_n.json"]["verdict"] == "not reproduced"
    assert rows["registry.json"] == {"registry_hash": registry_hash(), "value": 0, "n": 0}
    # claims their stage did not decide (no metrics, or no verdict key) get no file
    assert "proxy_beats_gold_early.json" not in rows and len(rows) == 3


def test_the_books_verdict_boxes_and_deviations_page_are_generated_from_the_registry():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    page = (root / outcomes.DEVIATIONS_PAGE).read_text()
    assert (
        outcomes.current_block(page, outcomes.DEVIATIONS_START, outcomes.DEVIATIONS_END)
        == outcomes.deviations_markdown()
    ), "stale: run `rmteacher outcomes --write`"
    for path in outcomes.book_pages(root):
        text = path.read_text()
        assert outcomes.fill_verdict_boxes(text, outcomes.executed_path(path, root)) == text, (
            f"{path.name}: verdict boxes are stale: run `rmteacher outcomes --write`"
        )


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
