"""Shared settings of the policy-gradient tests."""

import pytest


@pytest.fixture
def pg_config_base():
    """Every PgRunConfig field but the algorithm and optimizer choices."""
    return dict(
        num_generations=2,
        prompts_per_step=4,
        beta=0.0,
        learning_rate=1e-3,
        max_new_tokens=8,
        temperature=1.0,
        seed=0,
    )
