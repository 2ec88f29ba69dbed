"""Stage sec42_pg's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param, shared
from rmteacher.lm.pg.settings import PgSettings
from rmteacher.lm.rm.specs import check_reward_fields

PG_VARIANTS = ("rloo", "grpo", "grpo_group")
PG_RMS = (
    "rm_own_sft_austen",
    "rm_own_sft_quotes",
    "rm_onpolicy_100",
    "rm_onpolicy_0",
    "fam_n1_c1",
    "fam_n0_c0.1",
    "afinn",
    "textblob",
)


@dataclass(frozen=True)
class Sec42PgParams(StageParams):
    """Policy gradient from every initial policy on every RM (normalised per policy), in Section
    4.1's regime: RLOO as in the paper, GRPO without reward scaling, and GRPO with trl's per-group
    std scaling as labelled variants."""

    STAGE = "sec42_pg"
    reward_models: tuple[str, ...] = param(
        PG_RMS, "RMs trained on (a subset of sec42_eval.reward_models)", reward="rm"
    )
    seeds: tuple[int, ...] = param(
        tuple(range(10)),
        "RLOO seeds (data/design_search/family_power.txt: 5 detect a 0.08 best-vs-runner-up gap "
        "at 80 % power, 11 a 0.05 gap; the default run trains issue 20's target, 10)",
        ge=0,
    )
    grpo_seeds: tuple[int, ...] = param(
        (),
        "seeds of the GRPO variants ([] with no GRPO variant; e.g. [0, 1, 2] with the GRPO "
        "variants)",
        ge=0,
        may_be_empty=True,
    )
    variants: tuple[str, ...] = param(
        ("rloo",),
        "rloo; grpo (scale_rewards='none'); grpo_group (scale_rewards='group', trl's default "
        "and the paper's GRPO). No claim reads the GRPO variants, so the default run, sized for "
        "two CPU cores, trains RLOO alone; the tiny profile runs grpo_group",
        choices=PG_VARIANTS,
    )
    epochs: float = param(2.0, "epochs (paper 4.2: 2, one pass over the prompts)", gt=0)
    n_train_prompts: int = param(
        1024, "policy-gradient prompts used for training (2 epochs = one pass)", ge=2
    )
    evals_per_epoch: int = param(
        1, "evaluations per epoch, plus one at the start (the last enters the tables)", ge=1
    )
    grpo_beta: float = param(
        0.0, "KL coefficient of GRPO (the paper's GRPO KL term carried no gradient)", ge=0
    )

    # Section 4.1's policy-gradient regime (params.yaml group `pg`)
    num_generations: int = shared(PgSettings, "num_generations")
    prompts_per_step: int = shared(PgSettings, "prompts_per_step")
    beta: float = shared(PgSettings, "beta")
    learning_rate: float | None = shared(PgSettings, "learning_rate")
    max_grad_norm: float = shared(PgSettings, "max_grad_norm")
    eval_prompts: int = shared(PgSettings, "eval_prompts")
    eval_samples: int = shared(PgSettings, "eval_samples")
    threads: int = shared(PgSettings, "threads")

    def check(self) -> None:
        check_reward_fields(self)  # the one check of every field that names a reward
        for key in ("seeds", "grpo_seeds", "reward_models"):
            if len(set(getattr(self, key))) != len(getattr(self, key)):
                raise ParamsError(f"{self.STAGE}.{key}: values must be distinct")
        if "rloo" not in self.variants:  # sec42_report's tables and tests read the RLOO runs
            raise ParamsError(f"{self.STAGE}.variants: must include rloo")
        grpo = [v for v in self.variants if v != "rloo"]
        if bool(grpo) != bool(self.grpo_seeds):  # one cached unit per GRPO seed trains them
            raise ParamsError(
                f"{self.STAGE}.grpo_seeds: must be empty exactly when variants lists no GRPO "
                f"variant (variants: {', '.join(self.variants)}; grpo_seeds: "
                f"{list(self.grpo_seeds)})"
            )
