"""Writing and printing a PolicyReport: the table as text and CSV, a figure, the raw reward
matrices and the samples. File names depend only on the inputs, never on the time."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from rmteacher.core import paths
from rmteacher.lm.rm.evaluation import save_reward_matrices
from rmteacher.lm.rm.teacher import PREDICTORS, UNTIED_ABOVE, PolicyReport
from rmteacher.lm.rm.teacher_inputs import GOLD


def default_out_dir(policy_spec: str) -> Path:
    """report/<policy path or Hub id with unsafe characters as '_'>, e.g.
    report/artifacts_lm_sft_policy for the policy artifacts/lm_sft/policy."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", policy_spec.strip("/")).strip("._") or "policy"
    return paths.REPORTS / slug


def printable_table(report: PolicyReport) -> pd.DataFrame:
    """The report's table without the columns that are NaN for every RM, ranks as text."""
    table = report.table.dropna(axis=1, how="all")
    ranks = table["predicted_rank"].astype(object)
    return table.assign(predicted_rank=ranks.where(ranks.notna(), "-").astype(str))


def format_report(report: PolicyReport) -> str:
    """The table as fixed-width text with a header line and the predicted teacher ranking."""
    s = report.settings
    lines = [
        f"policy {report.policy}: {len(report.prompts)} prompts x "
        f"{len(report.responses[0])} samples (seed {s.get('seed')}, temperature "
        f"{s.get('temperature')}, at most {s.get('max_new_tokens')} new tokens)",
        "",
    ]
    lines += (
        printable_table(report)
        .to_string(index=False, float_format="{:.4f}".format, na_rep="-")
        .splitlines()
    )
    predictor = PREDICTORS[report.table.attrs.get("predictor", "variance")]
    lines += ["", f"predicted teacher ranking, by {predictor}: " + " > ".join(report.ranking)]
    if report.has_gold:
        ties = report.table.attrs.get("gold_tie_fraction", float("nan"))
        above = ties > UNTIED_ABOVE
        lines.append(
            f"gold ties {ties:.1%} of sample pairs ({'more' if above else 'not more'} than "
            f"{UNTIED_ABOVE:.0%}): the ranking uses "
            + (
                "untied accuracy (pairs the gold ties left out)"
                if above
                else "the paper's tie rule"
            )
        )
    return "\n".join(lines)


def report_figure(report: PolicyReport):
    """A matplotlib Figure (no pyplot state): reward variance against on-policy accuracy with a
    gold reward, else a bar chart of reward variance, best predicted teacher first."""

    table = report.table
    rms = table[table["rm"] != GOLD]
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    if report.has_gold:
        sns.scatterplot(
            data=rms,
            x="onpolicy_accuracy",
            y="reward_variance",
            hue="rm",
            s=70,
            ax=ax,
            legend=False,
        )
        for row in rms.itertuples(index=False):
            ax.annotate(
                row.rm,
                (row.onpolicy_accuracy, row.reward_variance),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=8,
            )
        for level in (0.25, 0.5, 0.75):  # iso-lines of the teacher score (v + a) / 2
            ax.axline((0, 2 * level), slope=-1, color="0.8", lw=0.8, ls=":", zorder=0)
        gold = table[table["rm"] == GOLD].iloc[0]
        ax.scatter(
            [gold.onpolicy_accuracy],
            [gold.reward_variance],
            marker="*",
            s=160,
            color="black",
            label="gold (r_G)",
        )
        ax.legend(loc="best", fontsize=8)
        top = max(1.1, float(table["reward_variance"].max()) + 0.1)
        ax.set(
            xlabel="on-policy accuracy (Definition 1)",
            ylabel="reward variance (normalised)",
            xlim=(-0.05, 1.1),
            ylim=(-0.05, top),
        )
    else:
        sns.barplot(
            data=rms, y="rm", x="reward_variance", order=report.ranking, ax=ax, color="tab:blue"
        )
        ax.set(xlabel="reward variance (normalised)", ylabel="")
    ax.set_title(
        f"{report.policy}: {len(report.prompts)} prompts x {len(report.responses[0])} samples",
        fontsize=9,
    )
    return fig


def write_report(report: PolicyReport, out_dir: str | Path) -> list[Path]:
    """Write report.csv (the table), report.png (report_figure), rewards_<rm>.npy ([P, n] raw
    rewards, gold included), normalization.json, samples.json and settings.json into `out_dir`
    (created; reward matrices of earlier reports there are removed). Returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("rewards_*.npy"):
        stale.unlink()
    save_reward_matrices(
        report.matrices, report.normalizations, report.prompts, report.responses, out_dir
    )
    report.table.to_csv(out_dir / "report.csv", index=False, float_format="%.6f")
    report_figure(report).savefig(out_dir / "report.png", dpi=120)
    settings = {
        **report.settings,
        "predictor": report.table.attrs.get("predictor"),
        "ranking": report.ranking,
    }
    (out_dir / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    names = ["report.csv", "report.png", "normalization.json", "samples.json", "settings.json"]
    return [out_dir / n for n in names] + [out_dir / f"rewards_{k}.npy" for k in report.matrices]
