"""A pipeline stage as its notebook sees it.

    stage = open_stage(RlooParams, params)   # validated params, output locations, plot theme
    result = rloo.run(stage.params)          # all the computation
    stage.figure("curves", fig)              # book/figures/rloo/curves.png (+ glue)
    stage.finish(result.metrics, plots={"curves": result.curves})

`finish` writes metrics/<stage>.json and plots/<stage>/<name>.csv and glues every metric with
`myst_nb.glue`, so the book's `{glue:text}` roles read them. Paths derive from the stage name only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from myst_nb import glue as myst_glue

from rmteacher.core import paths
from rmteacher.core.params import StageParams, load_params_file


def repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default: cwd) that holds dvc.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no dvc.yaml found at or above {here}")


def plain(value: Any, where: str = "value") -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v, where) for v in list(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"metric {where} is not JSON-serializable: {type(value).__name__}")


class StageOutputs:
    """Where one stage writes: metrics/<stage>.json, plots/<stage>/, book/figures/<stage>/ and
    its executed notebook book/executed/<stage>.ipynb."""

    def __init__(self, stage: str, root: Path | None = None):
        self.stage = stage
        self.root = Path(root) if root is not None else repo_root()
        self.metrics_path = self.root / paths.METRICS / f"{stage}.json"
        self.plots_dir = self.root / paths.PLOTS / stage
        self.figures_dir = self.root / paths.FIGURES / stage
        self.executed_path = self.root / paths.EXECUTED / f"{stage}.ipynb"
        self.notebook_path = self.root / paths.NOTEBOOKS / f"{stage}.ipynb"

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Write metrics as sorted JSON (non-finite floats are written as null)."""
        payload = plain(dict(metrics), "metrics")
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
    """`myst_nb.glue` with numpy scalars unwrapped, so `{glue:text}` format specs apply; an
    undefined number (None or non-finite, e.g. an interval from one seed) is glued as NaN, which
    every float format prints as "nan"."""
    try:
        value = plain(value)
    except TypeError:
        pass  # frames, figures and other displayable objects are glued as they are
    if value is None:
        value = float("nan")
    myst_glue(name, value, display=display)


@dataclass
class Stage:
    """A running stage: its validated `params` and its `outputs` locations. Every glue name is
    used once per stage (myst_nb keeps one value per name and the book would quote the wrong
    one): a second use is an error naming the key."""

    params: StageParams
    outputs: StageOutputs
    glued: set[str] = field(default_factory=set)

    def _glue(self, name: str, value: Any) -> None:
        if name in self.glued:
            raise ValueError(f"stage {self.outputs.stage}: glue name '{name}' is used twice")
        self.glued.add(name)
        glue(name, value)

    def figure(self, name: str, fig, glue_name: str | None = None):
        """Save `fig` as book/figures/<stage>/<name>.png; glue it under `glue_name` if given."""
        self.outputs.save_figure(name, fig)
        if glue_name is not None:
            self._glue(glue_name, fig)
        return fig

    def table(self, glue_name: str, frame):
        """Glue a table for the book (not displayed twice) and return it for display."""
        self._glue(glue_name, frame)
        return frame

    def finish(
        self,
        metrics: Mapping[str, Any],
        plots: Mapping[str, Any] | None = None,
        glue_values: Mapping[str, Any] | None = None,
    ):
        """Write plot data and metrics, glue every metric (a value in `glue_values` replaces the
        metric's glued form, e.g. a verdict as text) and every parameter as `param_<name>` (a list
        as comma-separated text), so the book quotes settings without typing them; return the
        metrics as a table."""
        # pandas (~0.4 s): `rmteacher check` imports this module and must not load it
        import pandas as pd

        for name, frame in (plots or {}).items():
            self.outputs.write_plot_data(name, frame)
        self.outputs.write_metrics(metrics)
        settings = {
            f"param_{key}": ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
            if isinstance(value, list)
            else value
            for key, value in self.params.to_dict().items()
        }
        shown = {**settings, **metrics, **(glue_values or {})}
        for key, value in shown.items():
            self._glue(key, value)
        return pd.Series(plain(dict(metrics)), name="value", dtype=object).to_frame()


def open_stage(
    params_cls: type[StageParams],
    injected: Mapping[str, Any] | None = None,
    root: Path | None = None,
) -> Stage:
    """Open a stage from its notebook: validate the params group papermill injected (or, when
    the notebook runs by hand, params.yaml's group), set the plot theme, return the Stage."""
    outputs = StageOutputs(params_cls.STAGE, root)
    if injected is None:
        params = params_cls.from_groups(load_params_file(outputs.root / "params.yaml"))
    else:
        params = params_cls.from_mapping(injected)
    # seaborn (~1.4 s): `rmteacher check` imports this module and must not load it
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid")
    return Stage(params, outputs)
