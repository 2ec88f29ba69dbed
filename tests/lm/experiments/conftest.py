"""Shared by the policy-gradient unit tests: what dvc.yaml's matrix stages expand to."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def dvc_units():
    """`dvc_units(prefix)`: {(unit, seed): declared out} for every matrix stage
    `<prefix><unit>@<seed>` that `dvc stage list` shows."""

    def units(prefix: str) -> dict[tuple[str, int], str]:
        listed = subprocess.run(
            [str(Path(sys.prefix) / "bin" / "dvc"), "stage", "list"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        found = {}
        for line in listed:
            if not line.startswith(prefix) or "@" not in line:
                continue
            name, _, out = line.split()
            unit, _, seed = name.removeprefix(prefix).partition("@")
            found[(unit, int(seed))] = out
        return found

    return units
