"""Where a stage writes: metrics JSON, plot-data CSV and figures, at paths derived from the stage
name only (never timestamps), plus `glue` for the book."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default: cwd) that holds dvc.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no dvc.yaml found at or above {here}")


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON values; numpy scalars unwrapped; non-finite floats become null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v, where) for v in list(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"metric {where} is not JSON-serializable: {type(value).__name__}")


class StageOutputs:
    """Where one stage writes: metrics/<stage>.json, plots/<stage>/ and book/figures/<stage>/."""

    def __init__(self, stage: str, root: Path | None = None):
        self.stage = stage
        self.root = Path(root) if root is not None else repo_root()
        self.metrics_path = self.root / "metrics" / f"{stage}.json"
        self.plots_dir = self.root / "plots" / stage
        self.figures_dir = self.root / "book" / "figures" / stage

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        """Write metrics as sorted JSON (non-finite floats are written as null)."""
        payload = _jsonable(metrics, "metrics")
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        self.metrics_path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return self.metrics_path

    def write_plot_data(self, name: str, frame) -> Path:
        self.plots_dir.mkdir(parents=True, exist_ok=True)
        path = self.plots_dir / f"{name}.csv"
        frame.to_csv(path, index=False)
        return path

    def save_figure(self, name: str, fig) -> Path:
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        path = self.figures_dir / f"{name}.png"
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None})
        return path


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record `value` under `name` in the notebook's outputs, in the mime-bundle form myst-nb's
    `{glue}` roles read (metadata {"scrapbook": {"name", "mime_prefix"}})."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display as show

    if isinstance(value, np.generic):
        value = value.item()  # plain Python numbers format cleanly in {glue:text}
    bundle, metadata = format_display_data(value)
    prefix = "" if display else "application/papermill.record/"
    metadata = dict(metadata)
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    show({prefix + mime: data for mime, data in bundle.items()}, raw=True, metadata=metadata)
