"""The registry itself: a rule changed without a deviation entry fails here; every deviation names
registered claims and results some stage writes; every decided claim has a verdict box in the
book; the package stays at the metrics floor."""

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest

from rmteacher.verdicts import claims as registry
from rmteacher.verdicts import deviations
from rmteacher.verdicts.rules import EXACT

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "rmteacher" / "verdicts"


def test_every_rule_is_registered_or_changed_with_a_deviation():
    problems = deviations.unrecorded_changes(registry.CLAIMS)
    assert not problems, "\n".join(problems)


def test_a_rule_changed_without_a_deviation_entry_is_caught(monkeypatch):
    changed = replace(registry.claim("variance_predicts_gold_increase"), min_units=3)
    problems = deviations.unrecorded_changes([changed])
    assert len(problems) == 1 and "without a deviation" in problems[0]
    assert changed.rule_hash() in problems[0]  # says which hash the entry must record
    # recording the change as a deviation makes it legal
    entry = deviations.Deviation(
        "DX",
        "2026-12-04",
        "abc1234",
        (changed.key,),
        "old",
        "new",
        "why",
        new_hashes={changed.key: changed.rule_hash()},
    )
    monkeypatch.setattr(deviations, "DEVIATIONS", (*deviations.DEVIATIONS, entry))
    assert deviations.unrecorded_changes([changed]) == []
    # a new claim must be registered with its hash
    new = replace(changed, key="a_new_claim")
    assert "not registered" in deviations.unrecorded_changes([new])[0]


def test_descriptions_do_not_change_the_rule_hash_but_rule_fields_do():
    base = registry.claim("variance_predicts_proxy_increase")
    assert replace(base, text="reworded", evidence="x").rule_hash() == base.rule_hash()
    for field, value in [
        ("checks", ()),
        ("gates", ("leave_one_rm_out",)),
        ("min_seeds", 1),
        ("alpha", 0.1),
        ("test", "something else"),
        ("unit", "seeds"),
    ]:
        assert replace(base, **{field: value}).rule_hash() != base.rule_hash(), field


def test_registered_hashes_name_exactly_the_registered_claims():
    assert set(deviations.registered_hashes()) == {c.key for c in registry.CLAIMS}


def test_deviations_name_registered_claims_and_results_a_stage_writes():
    source = "\n".join(
        p.read_text()
        for p in (ROOT / "src" / "rmteacher").rglob("*.py")
        if p.name != "deviations.py"  # the record itself does not count as a writer
    )
    ids = [d.id for d in deviations.DEVIATIONS]
    assert len(ids) == len(set(ids))
    for d in deviations.DEVIATIONS:
        assert set(d.claims) <= {c.key for c in registry.CLAIMS}, d.id
        assert d.old_rule and d.new_rule and d.why and d.date and d.commit, d.id
        for stage, key, label in d.results:
            templated = key.rsplit("_old_", 1)[0] + "_old_{"  # f"deviation_d1_old_{name}"
            # a deviation that added checks is decided under its old rule by the one writer,
            # verdicts.sections.Decided.add, for the claim of each result
            generic = label in d.added_checks and key == f"deviation_{d.id.lower()}_old_{label}"
            assert f'"{key}"' in source or templated in source or generic, key
            assert stage in {c.stage for c in registry.CLAIMS}, stage
            if generic:
                assert registry.claim(label).stage == stage, key


def test_the_issue_item_6_change_is_the_first_deviation():
    first = deviations.DEVIATIONS[0]
    assert first.claims == ("variance_predicts_proxy_increase",)
    assert "Spearman" in first.old_rule and "$> 0.5$" in first.old_rule
    assert first.commit == "acf99d8"


def test_every_decided_claim_has_a_verdict_box_in_the_book():
    pages = "\n".join(
        p.read_text() for p in (ROOT / "book").rglob("*.md") if "_build" not in p.parts
    )
    missing = [
        c.key
        for c in registry.CLAIMS
        if c.kind != EXACT and f"<!-- verdict:{c.key} -->" not in pages
    ]
    assert not missing, missing


def test_each_paired_reading_names_the_papers_claim():
    for c in registry.CLAIMS:
        if c.pair:
            other = registry.claim(c.pair)
            assert other.pair == c.key
            assert c.paper != other.paper, (c.key, "exactly one reading is the paper's claim")
            assert {c.reading, other.reading} == {"per epoch", "at matched KL"}


def test_the_package_imports_only_the_metrics_floor():
    allowed = ("rmteacher.core", "rmteacher.metrics", "rmteacher.verdicts")
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rmteacher"):
                assert node.module.startswith(allowed), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("rmteacher"):
                        assert alias.name.startswith(allowed), f"{path.name}: {alias.name}"


@pytest.mark.parametrize("claim", registry.CLAIMS, ids=lambda c: c.key)
def test_every_claim_declares_its_rule(claim):
    assert claim.statistic and claim.unit and claim.test and claim.fixed and claim.registered
    if claim.kind != EXACT:
        assert claim.min_units >= 2, "an interval or test needs units"
    json.dumps(claim.rule())  # the hash input is plain data
