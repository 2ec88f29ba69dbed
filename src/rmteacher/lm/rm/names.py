"""Names of Section 4.1's reward models: the five trained mixes of on- and off-policy pairs and
the controls. rm_train names the RMs it trains with them; the policy-gradient stages, the report
and the checks find them by these names."""

from __future__ import annotations

MIX_FRACTIONS = (1.0, 0.75, 0.5, 0.25, 0.0)  # on-policy share of each mix's pairs
CONTROLS = (
    "gold",
    "perfect",
    "perfect_unshifted",
)  # r_G and the perfect RM, with and without shift


def mix_rm_name(fraction: float) -> str:
    """Name of the proxy RM trained with this on-policy fraction: 1.0 -> 'rm_onpolicy_100'."""
    return f"rm_onpolicy_{round(100 * fraction)}"


MIXES = tuple(mix_rm_name(f) for f in MIX_FRACTIONS)


INITS = ("policy", "gold", "gold_body")


def init_source(init: str, policy_dir: str, gold: str) -> tuple[str, bool]:
    """(model directory, new head?) that an RM starts from: 'policy' - the initial policy with a
    new head (the paper); 'gold' - r_G itself, body and head; 'gold_body' - r_G's body with a
    new head; anything else is a model directory used as is."""
    return {
        "policy": (policy_dir, False),
        "gold": (gold, False),
        "gold_body": (gold, True),
    }.get(init, (init, False))
