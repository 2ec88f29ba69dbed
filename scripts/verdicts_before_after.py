"""Before / after: every claim's verdict on the committed default run under the rules before
issue 17 (the committed metrics) and under the claims registry, computed from the git-tracked
data alone (the DVC cache is not needed):

    python scripts/verdicts_before_after.py [--n-bootstrap 2000]

Inputs: plots/rm_eval/rm_table.csv (Table 1, every column), plots/rloo/curves.csv (every
Section 4.1 run), plots/alt_normalization/curves.csv, plots/sec42_eval/policy_rm_eval.csv,
plots/sec42_pg/curves.csv, plots/reward_scaling/curves.csv and metrics/*.json (the checks and the
old verdicts). The script first recomputes the old Table 2 rule and stops if it does not give
the committed numbers (so the inputs are the committed run's)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from rmteacher.lm.analysis import sec41 as s41
from rmteacher.lm.analysis import sec42 as s42
from rmteacher.lm.analysis.variants import scale_effects_by_seed
from rmteacher.verdicts import checks as checks_mod
from rmteacher.verdicts import sections
from rmteacher.verdicts.claims import CLAIMS

MIXES = [f"rm_onpolicy_{p}" for p in (100, 75, 50, 25, 0)]


def load(root: Path):
    metrics = {p.stem: json.loads(p.read_text()) for p in (root / "metrics").glob("*.json")}
    table = pd.read_csv(root / "plots/rm_eval/rm_table.csv")
    curves = pd.read_csv(root / "plots/rloo/curves.csv")
    alt = pd.read_csv(root / "plots/alt_normalization/curves.csv")
    return metrics, table, curves, alt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-bootstrap", type=int, default=2000)
    parser.add_argument("--root", type=Path, default=Path("."))
    args = parser.parse_args()
    metrics, table, curves, alt = load(args.root)
    s41_params = {"epoch": 1.0, "matched_kl": 1.0}
    props = s41.rm_properties(table)
    main_runs = curves[curves.variant == "main"]
    at = s41.increases_at(main_runs, s41_params["epoch"])
    mixes = [m for m in MIXES if m in set(at.rm)]

    # 1. the old rule on these inputs gives the committed numbers
    old = s41_legacy_check(props, at[at.rm.isin(mixes)], mixes, metrics["sec41_report"])
    print("old Table 2 rule recomputed from the committed CSVs:", old)

    checks = checks_mod.evaluate(metrics)
    alt_at = s41.increases_at(alt.assign(variant="alt"), 1.0)
    final = s41.increases_at(main_runs, main_runs.epoch.max())
    family = sorted(rm for rm in set(at.rm) if rm.startswith("fam_")) + ["gold"]
    decided = sections.section41(
        props,
        at,
        checks,
        mixes,
        args.n_bootstrap,
        0,
        alt_at,
        main_runs,
        s41_params["matched_kl"],
        final,
        family,
    )
    t9 = sections.table9(props, at, alt_at, checks, mixes, args.n_bootstrap, 0)

    pe = pd.read_csv(args.root / "plots/sec42_eval/policy_rm_eval.csv")
    pe = pe[pe.rm != "gold"]
    pg = pd.read_csv(args.root / "plots/sec42_pg/curves.csv")
    table42 = s42.policy_rm_table(pe, s42.final_increases(pg))
    final42 = s42.final_runs(pg, "rloo")
    winners = s42.best_against_runner_up(final42)
    inter = s42.interaction_test(final42)
    rloo_props = table42[table42.variant == "rloo"]
    d42 = sections.section42(rloo_props, final42, winners, inter, checks, 1000, 0)
    rs = pd.read_csv(args.root / "plots/reward_scaling/curves.csv")
    dsc = sections.scaling(scale_effects_by_seed(rs), checks)

    after = {**decided.verdicts, **t9.verdicts, **d42.verdicts, **dsc.verdicts}
    rows = []
    for c in CLAIMS:
        before = next(
            (m.get(f"claim_{c.key}") for m in metrics.values() if f"claim_{c.key}" in m), None
        )
        v = after.get(c.key)
        rows.append(
            {
                "claim": c.key,
                "before": before if before is not None else "-",
                "after": v.verdict if v else "(exact; outcomes)",
                "value": f"{v.value:.3f}" if v else "",
                "interval": f"[{v.low:.2f}, {v.high:.2f}]" if v else "",
                "n": v.n if v else "",
                "p": f"{v.p:.3f}" if v and np.isfinite(v.p) else "",
                "reason": v.reason if v else "",
            }
        )
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 200)
    print(pd.DataFrame(rows).to_string(index=False))
    print("\nold rules on today's data:")
    for part in (decided, t9, d42, dsc):
        for k, val in part.deviations.items():
            print(f"  {k}: {val}")
    print("\nextra:", {k: v for k, v in {**decided.metrics, **t9.metrics, **d42.metrics}.items()})
    for v in after.values():
        if v.gates:
            print(v.key, v.gate_detail, v.extra)


def s41_legacy_check(props, runs, mixes, committed: dict) -> str:
    from rmteacher.verdicts.legacy import seed_bootstrap_correlation

    cells = [
        ("reward_variance", "gold_increase", "pearson"),
        ("reward_variance", "proxy_increase", "pearson"),
    ]
    draws = sections.seed_only_draws(props, runs, mixes, 2000, 0, cells)
    found = []
    for cell, key in zip(
        cells, ("variance_predicts_gold_increase", "variance_predicts_proxy_increase"), strict=True
    ):
        verdict, low, high = seed_bootstrap_correlation(draws[cell])
        want = (committed[f"claim_{key}_low"], committed[f"claim_{key}_high"])
        if not np.allclose((low, high), want, atol=1e-9):
            raise SystemExit(f"{key}: recomputed [{low}, {high}] != committed {want}")
        found.append(f"{key} {verdict} [{low:.2f}, {high:.2f}]")
    return "; ".join(found)


if __name__ == "__main__":
    main()
