"""Stage sec42_eval: every policy x reward model, on that policy's own samples, before any policy
gradient - the normalisation (global mean and std), reward variance, on-policy accuracy against
r_G (tie rule and untied) and off-policy accuracy - through the same code path as
`rmteacher report`, which the stage also runs once on examples/prompts.txt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param

if TYPE_CHECKING:
    import pandas as pd

    from rmteacher.report import PolicyReport

DEFAULT_RMS = ("afinn", "textblob", "minilm_sentiment", "rm_onpolicy_100")
EXAMPLE_PROMPTS = "examples/prompts.txt"


@dataclass(frozen=True)
class Sec42EvalParams(StageParams):
    """For every policy x reward model, on that policy's own samples: the normalisation (global
    mean and std), reward variance, on-policy accuracy against r_G and off-policy accuracy -
    the same code path as `rmteacher report`."""

    STAGE = "sec42_eval"
    seed: int = param(0, "seed of the evaluation samples", ge=0)
    reward_models: tuple[str, ...] = param(
        DEFAULT_RMS, "off-the-shelf RMs: scorer names, model paths or Section 4.1 RM names"
    )
    n_prompts: int = param(500, "policy-gradient prompts evaluated (paper: 500)", ge=2)
    n_samples: int = param(10, "samples per prompt (paper: 10)", ge=2)

    def check(self) -> None:
        if len(set(self.reward_models)) != len(self.reward_models):
            raise ParamsError(f"{self.STAGE}.reward_models: values must be distinct")
        if "vader" in self.reward_models or "gold" in self.reward_models:
            raise ParamsError(f"{self.STAGE}.reward_models: r_G itself is not an off-the-shelf RM")


@dataclass(frozen=True)
class Sec42EvalResult:
    """`table`: one row per policy x RM (gold rows included) with Table 1's columns, the
    predicted rank and the gold tie fraction; `example`: the report of the example command;
    `example_command`: that command; `metrics`."""

    table: pd.DataFrame
    example: PolicyReport
    example_command: str
    metrics: dict


def run(params: Sec42EvalParams) -> Sec42EvalResult:
    """Evaluate every RM on every sec42 policy (matrices and normalisations saved per policy
    under artifacts/sec42_eval/<policy>/), then the example report (saved as `rmteacher report`
    would save it)."""
    import pandas as pd

    from rmteacher.core import paths
    from rmteacher.lm.experiments.sec42_policies import Sec42PoliciesParams
    from rmteacher.lm.rm.evaluation import reward_specs, save_reward_matrices
    from rmteacher.lm.rm.preferences import offpolicy_eval_pairs
    from rmteacher.lm.rm.training import read_manifest
    from rmteacher.lm.world.policies import policy_path
    from rmteacher.lm.world.prompts import World
    from rmteacher.report import evaluate_rewards_on_policy, read_prompts, write_report
    from rmteacher.rewards.registry import check_reward_spec, load_reward

    policies = list(Sec42PoliciesParams.from_file().policies)
    world = World.load()
    world.require("pg_train", params.n_prompts, "sec42_eval.n_prompts")
    manifest = read_manifest()
    specs = reward_specs(params.reward_models, manifest)
    for name, spec in specs.items():
        check_reward_spec(spec, f"sec42_eval.reward_models ({name})")  # before any compute
    rewards = {name: load_reward(spec, name) for name, spec in specs.items()}
    gold = load_reward(manifest["gold"], "gold")
    offpolicy = offpolicy_eval_pairs(pd.read_json(paths.candidates("test"), lines=True))
    prompts = world.prompt_texts("pg_train")[: params.n_prompts]
    tables = []
    for policy in policies:
        report = evaluate_rewards_on_policy(
            str(policy_path(policy)),
            rewards,
            gold,
            prompts,
            params.n_samples,
            seed=params.seed,
            offpolicy=offpolicy,
            progress=False,
            **world.generation(),
        )
        save_reward_matrices(
            report.matrices,
            report.normalizations,
            report.prompts,
            report.responses,
            paths.policy_eval(policy),
        )
        ties = report.table.attrs["gold_tie_fraction"]
        tables.append(report.table.assign(policy=policy, gold_tie_fraction=ties))
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(paths.POLICY_RM_EVAL, index=False)

    example_policy = str(policy_path("sft"))
    example = evaluate_rewards_on_policy(
        example_policy,
        specs,
        manifest["gold"],
        read_prompts(EXAMPLE_PROMPTS),
        params.n_samples,
        seed=params.seed,
        progress=False,
    )
    write_report(example, paths.REPORT_EXAMPLE)
    command = " ".join(
        [
            f"rmteacher report --policy {example_policy} --reward-model",
            *[f"{name}={spec}" for name, spec in specs.items()],
            f"--gold {manifest['gold']} --prompts {EXAMPLE_PROMPTS}",
            f"--samples {params.n_samples} --seed {params.seed} --out {paths.REPORT_EXAMPLE}",
        ]
    )
    proxies = table[table.rm != "gold"]
    metrics = {
        "n_policies": len(policies),
        "n_reward_models": len(rewards),
        **{
            f"{r.policy}_{r.rm}_{col}": float(getattr(r, col))
            for r in table.itertuples()
            for col in ("reward_variance", "onpolicy_accuracy", "offpolicy_accuracy")
        },
        **{
            f"{p}_gold_tie_fraction": float(g.gold_tie_fraction.iloc[0])
            for p, g in table.groupby("policy")
        },
        **{
            f"{p}_predicted_best": str(g.sort_values("predicted_rank").rm.iloc[0])
            for p, g in proxies.groupby("policy")
        },
    }
    return Sec42EvalResult(table, example, command, metrics)
