"""Stage rm_eval's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param


@dataclass(frozen=True)
class RmEvalParams(StageParams):
    """Table 1 and the manipulation checks: reward variance and on-/off-policy accuracy of every
    RM (mixes, controls, controlled family, r_G) under the initial policy, before any policy
    gradient, plus the normalisation constants (global mean and std) used by policy gradient."""

    STAGE = "rm_eval"
    seed: int = param(0, "seed of the evaluation samples and of the family's rank noise", ge=0)
    n_prompts: int = param(
        2048, "policy-gradient prompts evaluated: all of them, since RLOO trains on them", ge=2
    )
    n_samples: int = param(10, "samples per prompt (paper: 10)", ge=2)
    perfect_fraction: float = param(
        0.5, "fraction of policy-gradient prompts whose r_G the perfect RM scales", ge=0, le=1
    )
    perfect_factor: float = param(0.001, "scale applied to those prompts' r_G", gt=0)
    perfect_seed: int = param(8122, "seed choosing the scaled prompts", ge=0)
    perfect_shift: float = param(
        1.0,
        "constant added to r_G before the perfect RM's scaling (ArmoRM's scores are positive; "
        "'perfect_unshifted' is the same RM without it)",
    )
    family_noise: tuple[float, ...] = param(
        (0.0, 0.5, 1.0, 2.0), "rank-noise levels eta of the controlled family", ge=0
    )
    family_compression: tuple[float, ...] = param(
        (1.0, 0.3, 0.1), "compression floors c of the controlled family (1 = none)", gt=0, le=1
    )
    family_amplification: tuple[float, ...] = param(
        (3.0, 10.0),
        "amplification ceilings A of the controlled family: prompt scales drawn from [1, A] "
        "raise the variance at fixed accuracy (1 = none)",
        ge=1,
        may_be_empty=True,
    )
    family_between: tuple[float, ...] = param(
        (),
        "prompt-mean factors lambda of an eta = 0 arm: lambda < 1 shrinks the between-prompt "
        "part, which RLOO's baseline removes, so it only rescales every advantage (a "
        "consistency check of Adam's scale invariance, not the variance test)",
        ge=0,
        le=1,
        may_be_empty=True,
    )
    family_fraction: float = param(
        0.75, "fraction of prompts each member scales (compresses or amplifies)", gt=0, le=1
    )
    family_seed: int = param(
        17, "seed of the scaled prompts and their quantiles (shared by all members)", ge=0
    )
    check_gold_variance: tuple[float, ...] = param(
        (0.15, 0.5), "manipulation check: allowed range of r_G's reward variance", ge=0, le=1
    )
    check_gold_ties: float = param(
        0.05, "manipulation check: largest share of on-policy pairs r_G may tie", ge=0, le=1
    )
    check_pairs: int = param(20000, "manipulation check: fewest pairs per mix", ge=1)
    check_own_accuracy: float = param(
        0.70, "manipulation check: lowest held-out untied accuracy on a mix's own data", ge=0, le=1
    )
    check_variance_span: float = param(
        1.5, "manipulation check: smallest max/min reward variance over the mixes", ge=1
    )
    check_offpolicy_trend: float = param(
        0.7,
        "manipulation check: smallest Spearman correlation of off-policy share with off-policy "
        "(untied) accuracy over the mixes",
        ge=-1,
        le=1,
    )

    check_family_variance: float = param(
        0.1,
        "manipulation check: largest relative change of reward variance that rank noise may cause",
        ge=0,
    )
    check_family_variance_span: float = param(
        4.0,
        "manipulation check: smallest max/min reward variance over the family members of one "
        "accuracy (each rank-noise level)",
        ge=1,
    )
    check_onpolicy_accuracy: float = param(
        0.6,
        "manipulation check: lowest on-policy untied accuracy of a mix (initial policy's samples)",
        ge=0,
        le=1,
    )

    def check(self) -> None:
        if self.n_samples * self.n_prompts > 200_000:
            raise ParamsError(f"{self.STAGE}: n_prompts * n_samples must be <= 200000")
        low, high = (self.check_gold_variance + (None,))[:2]
        if len(self.check_gold_variance) != 2 or low > high:
            raise ParamsError(f"{self.STAGE}.check_gold_variance: expected [low, high]")
