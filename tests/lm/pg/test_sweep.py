"""How each Section 4.2 policy-gradient variant maps onto the loop's settings: GRPO's reward
scaling is always chosen explicitly, never left to a library default."""

from rmteacher.lm.pg.loop import PgRunConfig
from rmteacher.lm.pg.sweep import VARIANTS
from rmteacher.stages.lm.params.sec42_pg import PG_VARIANTS


def test_variants_pin_the_algorithm_and_grpo_reward_scaling(pg_config_base):
    assert set(VARIANTS) == set(PG_VARIANTS)  # every variant sec42_pg.variants may name
    assert VARIANTS["rloo"] == {"algorithm": "rloo"}
    assert VARIANTS["grpo"] == {"algorithm": "grpo", "scale_rewards": "none"}
    assert VARIANTS["grpo_group"] == {"algorithm": "grpo", "scale_rewards": "group"}
    base = pg_config_base
    for settings in VARIANTS.values():
        PgRunConfig(**base, **settings)  # every variant is a valid configuration
