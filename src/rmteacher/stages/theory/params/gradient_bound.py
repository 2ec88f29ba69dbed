"""Parameters of theory_gradient_bound (light: `rmteacher check` imports them, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmteacher.core.params import ParamsError, StageParams, param

SHAPES = {
    "linear": lambda u: 2 * u - 1,
    "convex": lambda u: 2 * u**4 - 1,
    "concave": lambda u: 1 - 2 * (1 - u) ** 4,
    "top_step": lambda u: np.where(u >= 0.9, 1.0, -1.0),
}
SHAPE_NAMES = tuple(SHAPES)


@dataclass(frozen=True)
class GradientBoundParams(StageParams):
    """Gradient norm vs reward variance (Lemma 8, Proposition 2) over many RMs sharing r_G's
    ranking, for tabular and autoregressive policies."""

    STAGE = "theory_gradient_bound"
    seed: int = param(0, "random seed of policies and ground truths", ge=0)
    n_outputs: int = param(50, "|Y| of the tabular policy", ge=2, le=5000)
    n_policies: int = param(20, "random tabular policies (half of them also autoregressive)", ge=2)
    n_scales: int = param(25, "reward scales per RM shape, log-spaced in [scale_min, 1]", ge=2)
    scale_min: float = param(1e-4, "smallest reward scale", gt=0, lt=1)
    shapes: tuple[str, ...] = param(
        SHAPE_NAMES, "RM shapes h(rank) sharing r_G's ranking", choices=SHAPE_NAMES
    )
    lam: float = param(0.05, "KL weight at the off-reference evaluation points", ge=0)
    offset_scale: float = param(0.5, "std of theta - theta_ref at off-reference points", ge=0)
    vocab_size: int = param(3, "|V| of the autoregressive policy", ge=2, le=16)
    seq_len: int = param(4, "L of the autoregressive policy (|V|^L sequences)", ge=1, le=8)
    n_prompts: int = param(3, "prompts of the autoregressive policy", ge=1, le=32)
    mlp_hidden: int = param(16, "hidden width of the shared MLP logit map", ge=1)
    init_scale: float = param(1.0, "scale of the random initial logits / MLP weights", gt=0)

    def check(self) -> None:
        if self.vocab_size**self.seq_len > 20_000:
            raise ParamsError(f"{self.STAGE}: vocab_size**seq_len must be <= 20000 to enumerate")
