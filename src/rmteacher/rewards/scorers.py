"""The table of registered scorers: name -> factory returning f(prompts, responses) -> floats.

Kept apart from `registry` so that scorer modules can register themselves without importing the
model-loading code (and `registry` can import them without a cycle)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

ScoreFn = Callable[[Sequence[str], Sequence[str]], Sequence[float]]
SCORERS: dict[str, Callable[[], ScoreFn]] = {}
# name -> (importable module, pip requirement) for scorers that need an optional package
REQUIREMENTS: dict[str, tuple[str, str]] = {}


def register_scorer(name: str, requires: tuple[str, str] | None = None):
    """Decorator registering a factory that returns a scorer f(prompts, responses).

    `requires=(module, pip_requirement)` names the package the factory imports, so that a missing
    install is reported when the spec is checked, before any compute."""

    def decorate(factory: Callable[[], ScoreFn]) -> Callable[[], ScoreFn]:
        SCORERS[name] = factory
        if requires is not None:
            REQUIREMENTS[name] = requires
        else:
            REQUIREMENTS.pop(name, None)
        return factory

    return decorate


def check_scorer_installed(name: str, what: str) -> None:
    """Raise a one-line ValueError if the package a registered scorer needs is not importable."""
    if name not in REQUIREMENTS:
        return
    module, requirement = REQUIREMENTS[name]
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"{what}: scorer '{name}' needs the package {requirement} (pip install '{requirement}')"
        )
