"""Parameters of the five theory stages: one documented, validated dataclass per DVC stage.

The defaults are the default profile (params.yaml is generated from them with
`rmteacher params --write`); profiles/tiny.yaml overrides a few of them for tests and CI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rmteacher.params import ParamsError, StageParams, param

SHAPE_NAMES = ("linear", "convex", "concave", "top_step")


def _constructible(stage: str, key: str, build: Callable[[], object]) -> None:
    """Run a cheap, seeded construction (initial policies only, no flow) and turn its ValueError
    into a one-line ParamsError naming `key`, so bad values fail before any compute."""
    try:
        build()
    except ValueError as err:
        raise ParamsError(f"{stage}.{key}: {' '.join(str(err).split())}") from None


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


@dataclass(frozen=True)
class EscapeTimeParams(StageParams):
    """Time for r_G to rise by gamma vs reward variance (Theorems 1/4, Proposition 3): the
    perfectly accurate RM with rewards in (0, 1/T), T swept (a pure rescaling), and Remark 3's RM
    rewarding one output of probability p under pi_0, p swept (a fixed reward scale)."""

    STAGE = "theory_escape_time"
    seed: int = param(0, "random seed", ge=0)
    n_outputs: int = param(20, "|Y| of the tabular policy", ge=2, le=5000)
    temperature: float = param(1.0, "std of the initial tabular logits", gt=0)
    gamma: float = param(0.1, "required improvement of E[r_G]", gt=0, lt=2)
    lams: tuple[float, ...] = param((0.0, 0.05), "KL weights; must include 0", ge=0)
    t_values: tuple[float, ...] = param(
        (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), "values of T (RM rewards in (0, 1/T))", ge=1
    )
    rare_probs: tuple[float, ...] = param(
        (1e-1, 1e-2, 1e-3, 1e-4),
        "rarity sweep: pi_0(y*) of the output the RM rewards (1 on y*, 0 elsewhere)",
        gt=0,
        lt=1,
    )
    rtol: float = param(1e-8, "relative tolerance of the ODE integrator", gt=0, lt=1e-3)
    ar_horizon: float = param(
        1e4,
        "KL-free integration horizon, tabular and MLP: per unit of T (T sweep), per unit of "
        "1/p (rarity sweep)",
        gt=0,
    )
    kl_horizon_factor: float = param(
        20.0, "KL runs stop at this multiple of the KL-free t_gamma", gt=1
    )
    vocab_size: int = param(3, "|V| of the autoregressive policy", ge=2, le=16)
    seq_len: int = param(3, "L of the autoregressive policy", ge=1, le=8)
    n_prompts: int = param(4, "prompts sharing the MLP's parameters", ge=2, le=32)
    mlp_hidden: int = param(16, "hidden width of the shared MLP logit map", ge=1)
    init_scale: float = param(1.0, "scale of the random MLP weights", gt=0)
    jacobian_samples: int = param(
        20, "states per MLP path where J is evaluated (Theorem 4's sup over the path)", ge=2
    )

    def check(self) -> None:
        if 0.0 not in self.lams:
            raise ParamsError(
                f"{self.STAGE}.lams: must include 0.0 (KL-free runs set the horizons)"
            )
        if len(set(self.t_values)) < 2:
            raise ParamsError(f"{self.STAGE}.t_values: need at least two distinct values of T")
        if len(set(self.rare_probs)) < 2:
            raise ParamsError(f"{self.STAGE}.rare_probs: need at least two distinct values of p")
        if self.vocab_size**self.seq_len > 20_000:
            raise ParamsError(f"{self.STAGE}: vocab_size**seq_len must be <= 20000 to enumerate")
        from rmteacher.theory.experiments import escape_time

        _constructible(self.STAGE, "gamma", lambda: escape_time.check_reachable(self))


@dataclass(frozen=True)
class AccuracySpeedParams(StageParams):
    """Accuracy does not decide speed (Theorems 2/5): the accurate slow RM vs Remark 2's RM,
    then slow and fast RMs at every accuracy level. Its construction (r_G, pi_0, the two RMs) is
    also the one theory_best_of_n reads."""

    STAGE = "theory_accuracy_speed"
    seed: int = param(0, "random seed of r_G, pi_0 and the rankings", ge=0)
    n_outputs: int = param(12, "|Y|", ge=3, le=2000)
    gamma: float = param(0.2, "required improvement of E[r_G]", gt=0, lt=2)
    temperature: float = param(1.0, "std of the initial logits", gt=0)
    target_prob: float = param(0.02, "pi_0(y_gamma) of the best output", gt=0, lt=1)
    big_t: float = param(100.0, "T: the slow RMs' rewards lie in (0, 1/T)", ge=1)
    lam: float = param(0.0, "KL weight", ge=0)
    n_rankings: int = param(
        30,
        "noisy rankings per sweep family (with and without y_gamma first), plus the "
        "alpha = 1, Remark 2 and reversed rankings",
        ge=2,
    )
    noise: float = param(0.7, "ranking noise in the sweep (spreads the accuracies)", ge=0)
    horizon_factor: float = param(
        1e6,
        "sweep horizon of the slow RMs, in units of Theorem 5's lower bound; later t_gamma "
        "are censored",
        gt=1,
    )

    def check(self) -> None:
        from rmteacher.theory.experiments import accuracy_speed

        _constructible(self.STAGE, "gamma", lambda: accuracy_speed.setup_from(self))


@dataclass(frozen=True)
class PolicyDependenceParams(StageParams):
    """Different initial policies, different best RM (Theorems 3/6)."""

    STAGE = "theory_policy_dependence"
    seed: int = param(0, "random seed of r_G", ge=0)
    n_outputs: int = param(10, "|Y|", ge=3, le=2000)
    v0: float = param(0.0, "common initial E[r_G] of both policy families", gt=-1, lt=1)
    gamma: float = param(0.1, "required improvement of E[r_G]", gt=0, lt=2)
    big_t: float = param(10.0, "T: the rare target has probability T^-2 (main figure)", ge=1)
    c: float = param(0.2, "probability of the likely target", gt=0, lt=1)
    lam: float = param(0.0, "KL weight", ge=0)
    t_values: tuple[float, ...] = param((2.0, 5.0, 10.0, 20.0, 50.0), "T values of the sweep", ge=1)

    def check(self) -> None:
        for key, values in (("big_t", (self.big_t,)), ("t_values", self.t_values)):
            for big_t in values:
                if self.c + big_t**-2 >= 1:
                    raise ParamsError(
                        f"{self.STAGE}.{key}: c + T^-2 = {self.c + big_t**-2:.3f} >= 1 at "
                        f"T={big_t:g}, leaving no mass for the other outputs; raise T or lower c"
                    )
        from rmteacher.theory.experiments import policy_dependence

        _constructible(self.STAGE, "gamma", lambda: policy_dependence.ground_truth(self))
        for big_t in sorted({*self.t_values, self.big_t}):
            _constructible(self.STAGE, "v0", lambda t=big_t: policy_dependence.build(self, t))


@dataclass(frozen=True)
class BestOfNParams(StageParams):
    """Best-of-N with the Theorem 2 RMs (Proposition 1): accuracy is what matters there. The
    construction (seed, r_G, pi_0, T, gamma, KL weight) is read from the theory_accuracy_speed
    group, so both stages always use the same RMs."""

    STAGE = "theory_best_of_n"
    max_n: int = param(16, "largest N", ge=1, le=4096)
    n_mc: int = param(20000, "Monte Carlo trials per checked N", ge=100)
    n_random_rms: int = param(50, "extra noisy RMs compared under Best-of-N", ge=0)
    noise: float = param(0.5, "noise of the extra RMs' rankings", ge=0)
