"""A pipeline stage as its notebook sees it.

    stage = open_stage(RlooParams, params)   # validated params, output locations, plot theme
    result = rloo.run(stage.params)          # all the computation
    stage.figure("curves", fig)              # book/figures/rloo/curves.png (+ glue)
    stage.finish(result.metrics, plots={"curves": result.curves})

`finish` writes metrics/<stage>.json and plots/<stage>/<name>.csv and glues every metric with
`myst_nb.glue`, so the book's `{glue:text}` roles read them. Paths derive from the stage name only.
Tables are glued as edited HTML (`core.tables`), figures get the book's style (`core.figures`),
and text, booleans and lists are glued as the words a sentence needs (`glue_text`), never as
Python reprs. Under `rmteacher run` (which sets `STAGE_LOG_ENV`), warnings and library log
records go to the stage's log file, artifacts/logs/<stage>.log, not into the executed notebook.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmteacher.core import paths
from rmteacher.core.params import StageParams, load_params_file

STAGE_LOG_ENV = "RMTEACHER_STAGE_LOG"  # set by `rmteacher run`: where the kernel's stderr goes


def repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default: cwd) that holds dvc.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no dvc.yaml found at or above {here}")


def plain(value: Any, where: str = "value") -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, non-finite floats as None."""
    import numpy as np

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


@dataclass(frozen=True)
class GluedText:
    """Text glued for a sentence: its plain-text form is the text itself, without the quotes
    of a Python repr (so `{glue}` and `{glue:text}` both print it as written)."""

    text: str

    def __repr__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(self.text)


@dataclass(frozen=True)
class GluedCode:
    """A command or other code glued as a block: HTML `<pre>` (no syntax colouring to get
    wrong), the text itself as plain text."""

    text: str

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return f'<div class="rmt-code"><pre>{html.escape(self.text)}</pre></div>'


def glue_text(name: str, value: Any) -> Any:
    """The form of a value a sentence quotes: a number stays a number (so format specs apply),
    a boolean reads "yes"/"no", a string its text, a list its items joined by commas (a
    two-number `*_range` as "a to b"), numbers in lists at three significant digits; the code
    name y_gamma in text reads y_γ."""
    from rmteacher.core.tables import number

    if isinstance(value, bool):
        return GluedText("yes" if value else "no")
    if isinstance(value, str):
        return GluedText(value.replace("y'_gamma", "y′_γ").replace("y_gamma", "y_γ"))
    if isinstance(value, list):
        items = [number(v) if isinstance(v, float) else str(glue_text(name, v)) for v in value]
        if name.endswith("_range") and len(items) == 2:
            return GluedText(f"{items[0]} to {items[1]}")
        return GluedText(", ".join(items))
    return value


def glue(name: str, value: Any, display: bool = False) -> None:
    """`myst_nb.glue` with numpy scalars unwrapped, so `{glue:text}` format specs apply, and
    text, booleans and lists in their sentence form (`glue_text`); an undefined number (None or
    non-finite, e.g. an interval from one seed) is glued as NaN, so float formats accept it (the
    book's `rmteacher_book` extension prints it as "–")."""
    from myst_nb import glue as myst_glue

    try:
        value = plain(value)
    except TypeError:
        pass  # frames, figures and other displayable objects are glued as they are
    if value is None:
        value = float("nan")
    myst_glue(name, glue_text(name, value), display=display)


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
        """Give `fig` the book's finish (`figures.finish`: book width, human labels, legible
        legends), save it as book/figures/<stage>/<name>.png, glue it under `glue_name` if
        given."""
        from rmteacher.core.figures import finish

        self.outputs.save_figure(name, finish(fig))
        if glue_name is not None:
            self._glue(glue_name, fig)
        return fig

    def table(self, glue_name: str, frame, **options):
        """Glue the edited table of `frame` (`tables.table`, with `options`) for the book and
        return it for display in the notebook."""
        from rmteacher.core.tables import Table, table

        shown = frame if isinstance(frame, Table) else table(frame, **options)
        self._glue(glue_name, shown)
        return shown

    def show(self, frame, **options):
        """The edited table of `frame` (`tables.table`) for display in the notebook only."""
        from rmteacher.core.tables import table

        return table(frame, **options)

    def finish(
        self,
        metrics: Mapping[str, Any],
        plots: Mapping[str, Any] | None = None,
        glue_values: Mapping[str, Any] | None = None,
    ):
        """Write plot data and metrics, glue every metric (a value in `glue_values` replaces the
        metric's glued form, e.g. a verdict as text) and every parameter as `param_<name>` (a list
        as comma-separated text), so the book quotes settings without typing them; for every
        statistic `X` with `X_low` and `X_high` (or `X_value`, `X_low`, `X_high`) also glue
        `X_ci`, the text "0.68 [0.22, 0.93]" (the value alone where the interval is undefined);
        return the metrics as an edited table (`Table.frame` holds them as a DataFrame)."""
        import pandas as pd

        from rmteacher.core.tables import interval

        for name, frame in (plots or {}).items():
            self.outputs.write_plot_data(name, frame)
        self.outputs.write_metrics(metrics)
        settings = {
            f"param_{key}": ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
            if isinstance(value, list)
            else value
            for key, value in self.params.to_dict().items()
        }
        intervals = {}
        for key in metrics:
            stem = key.removesuffix("_value")
            bounds = (f"{stem}_low", f"{stem}_high")
            name, value = f"{stem}_ci", metrics[key]
            if key in bounds or not set(bounds) <= set(metrics) or name in metrics:
                continue
            if isinstance(value, bool) or not isinstance(plain(value), int | float | None):
                continue
            low, high = (plain(metrics[b]) for b in bounds)
            intervals[name] = GluedText(interval(plain(value), low, high))
        shown = {**settings, **metrics, **intervals, **(glue_values or {})}
        for key, value in shown.items():
            self._glue(key, value)
        from rmteacher.core.tables import table

        frame = pd.Series(plain(dict(metrics)), name="value", dtype=object).to_frame()
        return table(frame.rename_axis("metric"), formats={"metric": str})


def open_stage(
    params_cls: type[StageParams],
    injected: Mapping[str, Any] | None = None,
    root: Path | None = None,
) -> Stage:
    """Open a stage from its notebook: validate the params group papermill injected (or, when
    the notebook runs by hand, params.yaml's group), set the plot theme, return the Stage."""
    outputs = StageOutputs(params_cls.STAGE, root)
    if injected is None:
        injected = load_params_file(outputs.root / "params.yaml").get(params_cls.STAGE)
    params = params_cls.from_mapping(injected)
    from rmteacher.core.figures import use_book_style

    use_book_style()
    log = os.environ.get(STAGE_LOG_ENV)
    if log:
        send_stderr_to(outputs.root / log)
    return Stage(params, outputs)


def send_stderr_to(path: Path) -> None:
    """Route this process's stderr (Python warnings, library log records, load reports) to the
    log file `path`, appending, so an executed notebook shows only what the stage displays:
    handlers already bound to the old stderr are re-pointed."""
    import logging
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", buffering=1)  # noqa: SIM115 (open for the kernel's lifetime)
    previous, sys.stderr = sys.stderr, log
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is previous:
                handler.setStream(log)
