"""How each Section 4.2 policy-gradient variant maps onto trl's trainers."""

from rmteacher.lm.experiments.sec42_pg import Sec42PgParams
from rmteacher.lm.pg.sweep import VARIANTS, variant_config


def test_variant_configs_pin_grpo_reward_scaling():
    params = Sec42PgParams()
    generation = {"max_new_tokens": 8, "temperature": 1.0}
    assert variant_config("rloo", params, 0, generation).beta == params.beta
    grpo = variant_config("grpo", params, 1, generation)
    assert (grpo.algorithm, grpo.scale_rewards, grpo.beta) == ("grpo", "none", params.grpo_beta)
    assert variant_config("grpo_group", params, 1, generation).scale_rewards == "group"
    assert set(VARIANTS) == set(params.variants)
