"""Stage rm_eval (paper Table 1): every RM - the five mixes, the perfect-accuracy RM and r_G -
measured on the same initial-policy samples, before any policy gradient: reward variance, on- and
off-policy accuracy (tie rule and untied), and the normalisation constants RLOO uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RmEvalParams(StageParams):
    """Table 1: reward variance and on-/off-policy accuracy of every RM under the initial policy,
    plus the normalisation constants (global mean and std) used by policy gradient."""

    STAGE = "rm_eval"
    seed: int = param(0, "seed of the evaluation samples", ge=0)
    n_prompts: int = param(500, "policy-gradient prompts evaluated (paper: 500)", ge=2)
    n_samples: int = param(10, "samples per prompt (paper: 10)", ge=2)
    perfect_fraction: float = param(
        0.5, "fraction of policy-gradient prompts whose r_G is scaled down", ge=0, le=1
    )
    perfect_factor: float = param(0.001, "scale applied to those prompts' r_G", gt=0)
    perfect_seed: int = param(8122, "seed choosing the scaled prompts", ge=0)
    perfect_shift: float = param(
        1.0,
        "constant added to r_G before scaling (VADER is centred; ArmoRM's scores are "
        "positive, and without an offset global normalisation undoes the scaling)",
    )

    def check(self) -> None:
        if self.n_samples * self.n_prompts > 200_000:
            raise ParamsError(f"{self.STAGE}: n_prompts * n_samples must be <= 200000")


@dataclass(frozen=True)
class RmEvalResult:
    """`table`: Table 1, one row per RM (every column); `paper`: our Table 1 beside the paper's;
    `metrics`: tie fraction, each RM's entries and how they move with the on-policy share."""

    table: pd.DataFrame
    paper: pd.DataFrame
    metrics: dict


def run(params: RmEvalParams) -> RmEvalResult:
    """Sample the initial policy, score the samples and the held-out off-policy pairs with every
    RM, and save the reward matrices, normalisations and Table 1 under artifacts/rm_eval."""
    import pandas as pd
    from scipy import stats

    from rmteacher.core import paths
    from rmteacher.core.hf import load_policy
    from rmteacher.lm.rm.evaluation import reward_suite, rm_table, save_eval, scaled_prompts
    from rmteacher.lm.rm.preferences import offpolicy_eval_pairs
    from rmteacher.lm.rm.training import read_manifest
    from rmteacher.lm.world.prompts import World
    from rmteacher.lm.world.sampling import sample_responses
    from rmteacher.paper import table1_frame
    from rmteacher.rewards.registry import PromptScaledReward

    world = World.load()
    world.require("pg_train", params.n_prompts, "rm_eval.n_prompts")
    perfect = scaled_prompts(world, params.perfect_fraction, params.perfect_seed)
    suite = reward_suite(perfect, params.perfect_factor, params.perfect_shift)
    gold = suite.pop("gold")  # keep r_G last in the table
    suite["perfect_unshifted"] = PromptScaledReward(gold, set(perfect), params.perfect_factor, 0.0)
    suite["gold"] = gold
    policy, tokenizer = load_policy(world.policy_dir, "initial policy")
    prompts = world.prompt_texts("pg_train")[: params.n_prompts]
    responses = sample_responses(
        policy,
        tokenizer,
        prompts,
        params.n_samples,
        seed=params.seed,
        desc="initial-policy samples",
        **world.generation(),
    )
    off_prompts, off_responses, off_gold = offpolicy_eval_pairs(
        pd.read_json(paths.candidates("test"), lines=True)
    )
    table, matrices, norms = rm_table(
        suite, prompts, responses, off_prompts, off_responses, off_gold
    )
    save_eval(
        matrices,
        norms,
        prompts,
        responses,
        perfect,
        params.perfect_factor,
        params.perfect_shift,
    )
    table.to_csv(paths.RM_TABLE, index=False)
    core = ["rm", "reward_variance", "onpolicy_accuracy", "offpolicy_accuracy"]
    table[core].to_csv(paths.RM_TABLE_METRICS, index=False, float_format="%.6f")
    paper = table[core].merge(table1_frame(), on="rm", how="left")

    by_rm = table.set_index("rm")
    metrics = {
        "gold_tie_fraction_onpolicy": table.attrs["gold_tie_fraction"],
        "n_eval_prompts": len(prompts),
        "n_samples": params.n_samples,
        **{
            f"{rm}_{col}": float(by_rm.loc[rm, col])
            for rm in by_rm.index
            for col in (
                "reward_variance",
                "onpolicy_accuracy",
                "offpolicy_accuracy",
                "onpolicy_accuracy_untied",
            )
        },
    }
    # Table 1's pattern: how each property moves with the on-policy share of the RM's data
    fractions = {rm["name"]: rm["onpolicy_fraction"] for rm in read_manifest()["rms"]}
    mixes = [rm for rm in fractions if rm in by_rm.index]
    for col in ("reward_variance", "onpolicy_accuracy", "offpolicy_accuracy"):
        rho = (
            stats.spearmanr([fractions[rm] for rm in mixes], by_rm.loc[mixes, col])[0]
            if len(mixes) >= 3
            else float("nan")
        )
        metrics[f"{col}_vs_onpolicy_fraction_spearman"] = float(rho)
    metrics["variance_rises_with_onpolicy_data"] = bool(
        metrics["reward_variance_vs_onpolicy_fraction_spearman"] > 0
    )
    metrics["perfect_has_lowest_variance"] = bool(by_rm["reward_variance"].idxmin() == "perfect")
    return RmEvalResult(table, paper, metrics)
