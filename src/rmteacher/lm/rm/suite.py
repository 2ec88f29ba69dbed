"""The reward models Section 4.1 trains on, besides the five trained mixes: the paper's controls and
a controlled family that separates the two causes the paper argues about.

Controls (all rank every pair of a prompt as r_G does):
* `gold`: r_G itself;
* `perfect`: the paper's perfectly accurate, low-variance RM, (r_G + shift) * factor on a fraction
  of the prompts and r_G + shift elsewhere (ArmoRM's scores are positive; the shift plays that
  role for a centred r_G, and without it global normalisation would undo much of the scaling);
* `perfect_unshifted`: the same without the shift.

The controlled family, built from r_G and the initial policy's per-prompt mean mu_x and standard
deviation s_x of r_G (measured by rm_eval on the policy-gradient prompts):

    r(x, y) = mu_x + a_x * (rho * (r_G(x, y) - mu_x) + sqrt(1 - rho^2) * s_x * xi(x, y))

* rank noise rho = 1 / sqrt(1 + eta^2): xi is a fixed standard-normal function of (x, y) (a hash),
  so a larger eta misorders more pairs while the within-prompt spread stays s_x - accuracy falls
  at (in expectation) fixed reward variance;
* prompt scale a_x: on a fixed fraction of the prompts a_x is drawn log-uniformly from [c, A], else
  a_x = 1; compression (floor c < 1) shrinks, amplification (ceiling A > 1) widens the spread of
  those prompts. a_x > 0 keeps every prompt's ranking, so accuracy is exactly unchanged while the
  within-prompt spread, and with it the reward variance, falls (c) or rises (A). Every member
  scales the same prompts with the same quantile draws (one seed), so members differ only in c
  and A.

Prompt means are kept (the between-prompt spread, the rest of the normalised reward variance,
is the same for every member), unless `between` = lambda < 1 multiplies them: then the
between part shrinks and the variance rises with accuracy and the within-prompt spread unchanged.

Which of these change the policy-gradient signal. RLOO's leave-one-out baseline removes any
per-prompt offset, so lambda acts only through the global standard deviation of the
normalisation: it rescales every advantage by one factor, which Adam (and clipping at a fixed
gradient norm) undoes apart from the reward's weight against the KL term - a consistency check of
that claim, not a test of the variance one. A prompt scale a_x that differs across prompts changes
the relative weight of the prompts in the gradient, which no optimiser undoes: compression and
amplification are the variance axis of the causal test.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

_STANDARD_NORMAL = NormalDist()


def family_name(
    eta: float, compression: float, amplification: float = 1.0, between: float = 1.0
) -> str:
    """Name of the member with rank noise eta, compression floor c, amplification ceiling A and
    prompt-mean factor lambda, e.g. 'fam_n0.5_c0.1', 'fam_n0_c1_a10', 'fam_n0_c1_b0.5' (A and
    lambda are named only when not 1)."""
    name = f"fam_n{eta:g}_c{compression:g}"
    name += f"_a{amplification:g}" if amplification != 1.0 else ""
    return name + (f"_b{between:g}" if between != 1.0 else "")


def family_grid(params) -> list[tuple[float, float, float, float]]:
    """(eta, compression floor, amplification ceiling, between factor) of every family member
    that rm_eval's `params` define: each rank-noise level crossed with each compression floor
    and each amplification ceiling (the accuracy and variance axes), and at eta = 0 each prompt-
    mean factor lambda (the uniform-scale arm; see `suite`)."""
    grid = [
        (eta, floor, 1.0, 1.0) for eta in params.family_noise for floor in params.family_compression
    ]
    grid += [
        (eta, 1.0, ceiling, 1.0)
        for eta in params.family_noise
        for ceiling in params.family_amplification
        if ceiling != 1.0
    ]
    grid += [(0.0, 1.0, 1.0, between) for between in params.family_between if between != 1.0]
    return list(dict.fromkeys(grid))


def hashed_normal(seed: int, prompt: str, response: str) -> float:
    """A standard-normal value that is a fixed function of (seed, prompt, response)."""
    digest = hashlib.blake2b(f"{seed}\x1f{prompt}\x1f{response}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / 2**64
    return _STANDARD_NORMAL.inv_cdf(u)


@dataclass(frozen=True)
class FamilyMember:
    """One controlled RM: rank noise `eta`; prompt scales a_x log-uniform in [`compression`,
    `amplification`] (both 1: none) on a `fraction` of the prompts chosen with `seed`;
    `noise_seed` fixes xi; prompt means multiplied by `between` (lambda)."""

    eta: float
    compression: float
    fraction: float
    seed: int
    noise_seed: int
    amplification: float = 1.0
    between: float = 1.0

    def __post_init__(self):
        if not 0 < self.compression <= 1 <= self.amplification:
            raise ValueError(
                f"{self.name}: need 0 < compression <= 1 <= amplification, got "
                f"{self.compression:g} and {self.amplification:g}"
            )

    @property
    def name(self) -> str:
        return family_name(self.eta, self.compression, self.amplification, self.between)

    @property
    def rho(self) -> float:
        return 1.0 / math.sqrt(1.0 + self.eta**2)

    def factors(self, prompts: list[str]) -> dict[str, float]:
        """a_x per prompt (a seeded draw over the given prompt order; with one seed, members
        with other c and A scale the same prompts at the same quantiles)."""
        rng = np.random.default_rng(self.seed)
        chosen = rng.random(len(prompts)) < self.fraction
        low, high = math.log(self.compression), math.log(self.amplification)
        draws = np.exp(low + (high - low) * rng.random(len(prompts)))
        return {p: float(d) if c else 1.0 for p, c, d in zip(prompts, chosen, draws, strict=True)}


class ControlledReward:
    """A family member as a reward callable (see the module docstring)."""

    def __init__(self, gold, member: FamilyMember, stats: dict[str, tuple[float, float]]):
        self.gold, self.member, self.stats = gold, member, stats
        self.factors = member.factors(list(stats))

    def __call__(self, prompts, responses) -> np.ndarray:
        missing = next((p for p in prompts if p not in self.stats), None)
        if missing is not None:
            raise ValueError(
                f"{self.member.name}: defined on rm_eval's prompts only, not on {missing[:40]!r}"
            )
        g = np.asarray(self.gold(prompts, responses), dtype=np.float64)
        mu = np.array([self.stats[p][0] for p in prompts])
        sd = np.array([self.stats[p][1] for p in prompts])
        a = np.array([self.factors[p] for p in prompts])
        xi = np.array(
            [
                hashed_normal(self.member.noise_seed, p, r)
                for p, r in zip(prompts, responses, strict=True)
            ]
        )
        rho = self.member.rho
        within = rho * (g - mu) + math.sqrt(1.0 - rho**2) * sd * xi
        return self.member.between * mu + a * within


class Memo:
    """A reward that remembers its scores of (prompt, response), so rm_eval scores each sample
    with r_G once however many members of the family are built on it."""

    def __init__(self, reward, limit: int = 200_000):
        self.reward, self.cache, self.limit = reward, {}, limit

    def __call__(self, prompts, responses) -> np.ndarray:
        if len(self.cache) > self.limit:
            self.cache.clear()
        keys = list(zip(prompts, responses, strict=True))
        todo = [k for k in dict.fromkeys(keys) if k not in self.cache]
        if todo:
            scores = self.reward([k[0] for k in todo], [k[1] for k in todo])
            self.cache.update(zip(todo, np.asarray(scores, dtype=np.float64), strict=True))
        return np.array([self.cache[k] for k in keys])


def prompt_stats(prompts: list[str], gold_matrix: np.ndarray) -> dict[str, tuple[float, float]]:
    """{prompt: (mean, unbiased std)} of r_G over the initial policy's samples [P, n]."""
    mean = gold_matrix.mean(axis=1)
    std = gold_matrix.std(axis=1, ddof=1)
    return {p: (float(m), float(s)) for p, m, s in zip(prompts, mean, std, strict=True)}
