"""Power calculation for the seeds of the controlled family and of the Section 4.2 cells (issue 19).

    python scripts/family_power.py [--members plots/rm_eval/rm_table.csv] [--target 0.3]

Family: the seed noise and the members' lack of fit come from the committed family runs
(plots/rloo/curves.csv, the `fam_*` and `gold` runs of variant `main` at sec41_report's epoch,
with their variance and accuracy from plots/sec41_report/family.csv); the new design's members
(variance and on-policy accuracy of every `fam_*` row and r_G) come from `--members`, rm_eval's
table. For each candidate seed count the script simulates the verdict's own bootstrap interval of
the variance coefficient (`rmteacher.lm.analysis.power`) and prints its median and 80 % quantile
width; the answer is the smallest count whose 80 % quantile is at most `--target`.

Section 4.2: the pooled per-cell seed sd of the final r_G increase (plots/sec42_pg/curves.csv)
and the seeds per cell that detect a given best-vs-runner-up difference at 80 % power.
"""

from __future__ import annotations

import argparse

import pandas as pd

from rmteacher.lm.analysis import power
from rmteacher.lm.analysis.sec41 import increases_at
from rmteacher.lm.analysis.sec42 import final_runs


def family_runs(curves: str, family: str, epoch: float) -> pd.DataFrame:
    main = pd.read_csv(curves).query("variant == 'main'")
    at = increases_at(main, epoch)
    props = pd.read_csv(family).set_index("rm")[["reward_variance", "onpolicy_accuracy"]]
    gold = main[main.rm == "gold"]
    if "gold" not in props.index and len(gold):
        raise SystemExit(f"{family}: no r_G row; pass a family table that has one")
    keep = at.rm.str.startswith("fam_") | (at.rm == "gold")
    return at[keep].merge(props, left_on="rm", right_index=True)


def members(path: str) -> pd.DataFrame:
    table = pd.read_csv(path)
    keep = table.rm.str.startswith("fam_") | (table.rm == "gold")
    return table[keep][["rm", "reward_variance", "onpolicy_accuracy"]].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--curves", default="plots/rloo/curves.csv")
    parser.add_argument("--family", default="plots/sec41_report/family.csv")
    parser.add_argument("--members", default="plots/rm_eval/rm_table.csv")
    parser.add_argument("--epoch", type=float, default=1.0)
    parser.add_argument("--target", type=float, default=0.3)
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--sec42-curves", default="plots/sec42_pg/curves.csv")
    parser.add_argument("--out", default="", help="CSV of every simulated row, if given")
    args = parser.parse_args()

    noise = power.noise_components(family_runs(args.curves, args.family, args.epoch))
    print(
        f"family runs: {noise.n_runs} runs of {noise.n_members} members; plane "
        f"b0={noise.coefficients[0]:.3f} b_v={noise.coefficients[1]:.3f} "
        f"b_a={noise.coefficients[2]:.3f}; seed sd sigma={noise.sigma:.4f}; lack of fit "
        f"tau={noise.tau:.4f}"
    )
    design = members(args.members)
    print(
        f"design: {len(design)} members, variance {design.reward_variance.min():.3f}-"
        f"{design.reward_variance.max():.3f}, accuracy {design.onpolicy_accuracy.min():.3f}-"
        f"{design.onpolicy_accuracy.max():.3f}"
    )
    out = []
    for label, components in (
        ("as measured", noise),
        ("lack of fit x3", power.NoiseComponents(
            noise.coefficients, noise.sigma, 3 * noise.tau, noise.n_members, noise.n_runs)),
    ):  # fmt: skip
        table = power.seeds_for_width(design, components, args.target, n_sim=args.sims)
        out.append(table.assign(case=label, sigma=components.sigma, tau=components.tau))
        enough = table[table.narrow_enough]
        answer = int(enough.seeds.iloc[0]) if len(enough) else None
        print(f"\nvariance-coefficient interval width, {label}:")
        print(table.round(3).to_string(index=False))
        print(f"-> seeds per member for an 80 % chance of width <= {args.target:g}: {answer}")

    if args.out:
        pd.concat(out).to_csv(args.out, index=False)
    runs = final_runs(pd.read_csv(args.sec42_curves), "rloo")
    cells = runs.groupby(["policy", "rm"]).gold_increase
    sizes = cells.size()
    sd = float((((cells.var(ddof=1) * (sizes - 1)).sum()) / (sizes - 1).sum()) ** 0.5)
    print(f"\nSection 4.2 RLOO cells: pooled seed sd of the final r_G increase {sd:.4f}")
    for difference in (0.02, 0.03, 0.05, 0.08):
        n = power.seeds_for_difference(sd, difference)
        print(f"  best - runner-up = {difference:.2f}: {n} seeds per cell (80 % power, 5 %)")


if __name__ == "__main__":
    main()
