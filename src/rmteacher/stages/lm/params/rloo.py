"""Stage rloo's parameters (light: `rmteacher check` imports them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from rmteacher.core.params import ParamsError, StageParams, param, shared
from rmteacher.lm.pg.settings import PgSettings
from rmteacher.lm.rm.names import CONTROLS, MIXES


@dataclass(frozen=True)
class RlooParams(StageParams):
    """RLOO from the initial policy on the mixes, the controls (r_G, the perfect RM with and
    without the shift, the perfect RM at beta = 0), the controlled family and an ablation without
    gradient clipping, rewards normalised by rm_eval's constants, at rloo_lr's learning rate."""

    STAGE = "rloo"
    seeds: tuple[int, ...] = param(
        (0, 1, 2),
        "seeds of the mixes and controls (one run per RM and seed; the default run is sized "
        "for two CPU cores)",
        ge=0,
    )
    rms: tuple[str, ...] = param(MIXES + CONTROLS, "mixes and controls trained on with `seeds`")
    beta0_rms: tuple[str, ...] = param(
        ("perfect",), "RMs also trained at beta = 0 (`seeds`; [] for none)", may_be_empty=True
    )
    family_seeds: tuple[int, ...] = param(
        tuple(range(5)),
        "seeds of each controlled-family member (empty: no family runs; the power calculation, "
        "data/design_search/family_power.txt, reaches its target width with 2; the default "
        "run, sized for two CPU cores, trains 5)",
        ge=0,
    )
    family_epochs: float = param(1.0, "epochs of the family runs", gt=0)
    noclip_rms: tuple[str, ...] = param(
        ("rm_onpolicy_100", "rm_onpolicy_0", "gold", "perfect"),
        "RMs of the ablation without gradient clipping",
    )
    noclip_seeds: tuple[int, ...] = param((0, 1, 2), "seeds of the ablation", ge=0)
    noclip_epochs: float = param(1.0, "epochs of the ablation runs", gt=0)
    noclip_evals_per_epoch: int = param(
        1, "evaluations per epoch of the ablation (sec41_report reads it at its end)", ge=1
    )
    epochs: float = param(
        2.0, "epochs of the mixes and controls (1 epoch = as many completions as prompts)", gt=0
    )
    # Section 4.1's policy-gradient regime (params.yaml group `pg`)
    evals_per_epoch: int = shared(PgSettings, "evals_per_epoch")
    num_generations: int = shared(PgSettings, "num_generations")
    prompts_per_step: int = shared(PgSettings, "prompts_per_step")
    beta: float = shared(PgSettings, "beta")
    learning_rate: float | None = shared(PgSettings, "learning_rate")
    max_grad_norm: float = shared(PgSettings, "max_grad_norm")
    eval_prompts: int = shared(PgSettings, "eval_prompts")
    eval_samples: int = shared(PgSettings, "eval_samples")
    keep_samples: int = shared(PgSettings, "keep_samples")
    num_processes: int = shared(PgSettings, "num_processes")
    threads: int = shared(PgSettings, "threads")

    def check(self) -> None:
        for key in ("seeds", "family_seeds", "noclip_seeds", "rms", "beta0_rms", "noclip_rms"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ParamsError(f"{self.STAGE}.{key}: values must be distinct")
        allowed = MIXES + CONTROLS
        for key in ("rms", "beta0_rms", "noclip_rms"):
            for name in getattr(self, key):
                if name not in allowed and not name.startswith("rm_onpolicy_"):
                    raise ParamsError(
                        f"{self.STAGE}.{key}: unknown RM '{name}'; allowed: {', '.join(allowed)}"
                    )
