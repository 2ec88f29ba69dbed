"""Evaluate your own reward models as teachers of a policy (the `rmteacher report` command):
reward variance and on-policy accuracy on the policy's own samples, and the predicted ranking.

    from rmteacher.report import evaluate_rewards_on_policy, read_prompts, write_report
    report = evaluate_rewards_on_policy("artifacts/lm_sft/policy",
                                        {"afinn": "afinn", "minilm": "minilm_sentiment"},
                                        "vader", read_prompts("examples/prompts.txt"))
    report.table, report.ranking, write_report(report, "report/sft")
"""

from rmteacher.lm.rm.teacher import (
    PREDICTORS,
    PolicyReport,
    evaluate_rewards_on_policy,
    predicted_ranking,
    rm_rows,
)
from rmteacher.lm.rm.teacher_inputs import (
    GOLD,
    ReportInputError,
    check_out_dir,
    check_report_inputs,
    default_reward_name,
    name_reward_specs,
    read_prompts,
)
from rmteacher.report.output import (
    default_out_dir,
    format_report,
    printable_table,
    report_figure,
    write_report,
)

__all__ = [
    "GOLD",
    "PREDICTORS",
    "PolicyReport",
    "ReportInputError",
    "check_out_dir",
    "check_report_inputs",
    "default_out_dir",
    "default_reward_name",
    "evaluate_rewards_on_policy",
    "format_report",
    "name_reward_specs",
    "predicted_ranking",
    "printable_table",
    "read_prompts",
    "report_figure",
    "rm_rows",
    "write_report",
]
