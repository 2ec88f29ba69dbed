"""Helpers shared by the theory experiments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rmteacher.core.params import ParamsError
from rmteacher.theory.exact import constructions, flow, tabular


def check_constructible(stage: str, key: str, build: Callable[[], object]) -> None:
    """Run a cheap, seeded construction (initial policies only, no flow) and turn its ValueError
    into a one-line ParamsError naming `key`, so bad values fail in `check()`, before any
    compute."""
    try:
        build()
    except ValueError as err:
        raise ParamsError(f"{stage}.{key}: {' '.join(str(err).split())}") from None


@dataclass(frozen=True)
class SinglePromptSetup:
    """One prompt: ground truth r_G over |Y| outputs, initial policy pi_0, and the target y_gamma
    (the r_G-best output) with r_G(y_gamma) > E_{pi_0} r_G + gamma."""

    gold: np.ndarray
    pi0: np.ndarray
    target: int
    gamma: float

    @property
    def gold_mean0(self) -> float:
        return float(self.pi0 @ self.gold)


def theorem2_setup(
    seed: int, n_outputs: int, gamma: float, temperature: float, target_prob: float
) -> SinglePromptSetup:
    """Random r_G in [-1, 1] and a random pi_0 in which the best output y_gamma has probability
    `target_prob` (so 1/pi_0(y_gamma), the fast RM's time scale, is controlled).

    Raises ValueError when E_{pi_0}[r_G] + gamma >= r_G(y_gamma): then no output qualifies as
    y_gamma. Cheap and seeded, so the stages' `check()` calls it before any compute."""
    rng = np.random.default_rng(seed)
    gold = rng.uniform(-1, 1, n_outputs)
    target = int(gold.argmax())
    pi0 = constructions.random_policy(n_outputs, temperature, rng)
    others = np.delete(np.arange(n_outputs), target)
    pi0[others] *= (1 - target_prob) / pi0[others].sum()
    pi0[target] = target_prob
    setup = SinglePromptSetup(gold, pi0, target, gamma)
    if setup.gold_mean0 + gamma >= gold[target]:
        raise ValueError(
            f"gamma={gamma} is too large at pi_0(y_gamma)={target_prob:g}: "
            f"E_pi0[r_G]={setup.gold_mean0:.3f} and "
            f"max r_G={gold[target]:.3f}; choose gamma < {gold[target] - setup.gold_mean0:.3f}"
        )
    return setup


def rarity_setups(p) -> list[SinglePromptSetup]:
    """The rarity sweep's tabular setups (Remark 3): one single-prompt setup per p in
    `p.rare_probs`; ValueError if gamma is unreachable in one of them."""
    return [
        theorem2_setup(p.seed, p.n_outputs, p.gamma, p.temperature, prob) for prob in p.rare_probs
    ]


def tabular_flow(
    pi0: np.ndarray,
    reward_rm: np.ndarray,
    lam: float,
    t_max: float,
    *,
    gold: np.ndarray | None = None,
    gamma: float | None = None,
    prompt: int = 0,
    n_points: int = 200,
    rtol: float = 1e-8,
    stop_at_target: bool = True,
) -> flow.FlowResult:
    """Gradient flow of a tabular policy started at pi_0 = pi_ref; t_gamma tracks E[r_G] on
    `prompt` when `gold` and `gamma` are given. Arrays are [|S|, |Y|] or [|Y|]."""
    pi0, reward_rm = np.atleast_2d(pi0), np.atleast_2d(reward_rm)
    shape = pi0.shape
    progress = target = None
    if gold is not None and gamma is not None:
        gold2 = np.atleast_2d(gold)
        target = float(pi0[prompt] @ gold2[prompt]) + gamma

        def progress(theta: np.ndarray) -> float:
            return float(tabular.softmax(theta.reshape(shape))[prompt] @ gold2[prompt])

    return flow.integrate(
        lambda theta: tabular.gradient(theta.reshape(shape), pi0, reward_rm, lam).ravel(),
        np.log(pi0).ravel(),
        t_max,
        progress=progress,
        target=target,
        n_points=n_points,
        rtol=rtol,
        atol=rtol * 1e-3,
        stop_at_target=stop_at_target,
    )


def expected_gold_along(result: flow.FlowResult, gold: np.ndarray, prompt: int = 0) -> np.ndarray:
    """E_{pi_theta(t)}[r_G] on `prompt` at every recorded time of a tabular flow."""
    gold2 = np.atleast_2d(gold)
    shape = (gold2.shape[0], -1)
    return np.array(
        [tabular.softmax(s.reshape(shape))[prompt] @ gold2[prompt] for s in result.states]
    )


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y on log x over finite positive pairs with at least two
    distinct x; NaN otherwise (a float, so it can always be written and glued)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if np.unique(x[keep]).size < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def finite_or_nan(values, reduce=np.min) -> float:
    """`reduce` over the finite entries of `values`, NaN if there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(reduce(values)) if values.size else float("nan")
