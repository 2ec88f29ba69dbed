"""Shared fixtures of the theory tests."""

import pytest

from rmteacher.theory.exact import autoregressive as ar


@pytest.fixture(autouse=True)
def _torch_single_threaded():
    """The exact autoregressive computations use tiny tensors: one torch thread is several times
    faster than many (and does not compete with other jobs)."""
    with ar.single_threaded():
        yield
