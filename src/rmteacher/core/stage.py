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

import ast
import dataclasses
import difflib
import html
import json
import logging
import math
import os
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from myst_nb import glue as myst_glue
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rmteacher.core import paths, progress, runs
from rmteacher.core.figures import finish, use_book_style
from rmteacher.core.params import ParamsError, StageParams, load_params_file
from rmteacher.core.tables import Table, interval, number, table

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

        return f'<div class="rmt-code"><pre>{html.escape(self.text)}</pre></div>'


def glue_text(name: str, value: Any) -> Any:
    """The form of a value a sentence quotes: a number stays a number (so format specs apply),
    a boolean reads "yes"/"no", a string its text, a list its items joined by commas (a
    two-number `*_range` as "a to b"), numbers in lists at three significant digits; the code
    name y_gamma in text reads y_γ."""

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

        self.outputs.save_figure(name, finish(fig))
        if glue_name is not None:
            self._glue(glue_name, fig)
        return fig

    def table(self, glue_name: str, frame, **options):
        """Glue the edited table of `frame` (`tables.table`, with `options`) for the book and
        return it for display in the notebook."""

        shown = frame if isinstance(frame, Table) else table(frame, **options)
        self._glue(glue_name, shown)
        return shown

    def show(self, frame, **options):
        """The edited table of `frame` (`tables.table`) for display in the notebook only."""

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
        import pandas as pd  # ~0.4 s: `rmteacher check` imports this module

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

        frame = pd.Series(plain(dict(metrics)), name="value", dtype=object).to_frame()
        return table(frame.rename_axis("metric"), formats={"metric": str})


PARAMETERS_MARKER = "# Parameters of stage"  # first words of every notebook's parameters cell
PAPERMILL_HEADER = "# Parameters"  # the first line of the cell papermill injects after it


def parameters_cell(params_cls: type[StageParams]) -> str:
    """The source of a stage notebook's `parameters` cell, generated from its dataclass: every
    key, None by default (None keeps params.yaml's value), its type and its default as a comment,
    so `papermill --help-notebook` lists them and `-p KEY VALUE` sets one."""
    hints = typing.get_type_hints(params_cls)
    lines = [
        f"{PARAMETERS_MARKER} {params_cls.STAGE} ({params_cls.__name__}; `rmteacher params "
        "--write` regenerates",
        "# this cell). `papermill NB OUT -p KEY VALUE` sets a key for one run, as does replacing",
        "# a None below; a key left at None keeps its params.yaml value. DVC and `rmteacher run`",
        "# inject the whole validated group as `params`. A run DVC does not make writes under",
        "# runs/<stage>/, never DVC's outputs.",
        "params = None",
    ]
    for item in dataclasses.fields(params_cls):
        default = params_cls().to_dict()[item.name]
        lines.append(f"{item.name}: {_annotation(hints[item.name])} = None  # default {default!r}")
    return "\n".join(lines)


def _annotation(tp: Any) -> str:
    """A type name papermill's parameter parser reads (no unions: optional fields show their
    base type; the comment shows None when it is the default)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is tuple:
        return f"list[{args[0].__name__}]"
    if args:  # X | None
        return _annotation(args[0])
    return tp.__name__


def _cell_names(source: str) -> list[str]:
    """Names a cell assigns at its top level (what papermill injects is plain assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _notebook_inputs() -> tuple[dict, set[str] | None, set[str]]:
    """In a notebook kernel: (its namespace, the names its last-run parameters cell and any
    cell papermill injected after it assign, the names injected); outside IPython or before any
    parameters cell ran: ({}, None, set())."""
    try:
        from IPython import get_ipython  # only inside a kernel; absent elsewhere
    except ImportError:
        return {}, None, set()
    shell = get_ipython()
    if shell is None:
        return {}, None, set()
    history = list(shell.history_manager.input_hist_raw)
    starts = [i for i, cell in enumerate(history) if cell.lstrip().startswith(PARAMETERS_MARKER)]
    if not starts:
        return dict(shell.user_ns), None, set()
    assigned, injected = set(_cell_names(history[starts[-1]])), set()
    for cell in history[starts[-1] + 1 :]:
        if cell.lstrip().split("\n", 1)[0].strip() == PAPERMILL_HEADER:
            injected |= set(_cell_names(cell))
    return dict(shell.user_ns), assigned | injected, injected


def notebook_overrides(
    params_cls: type[StageParams],
    namespace: Mapping[str, Any],
    assigned: set[str] | None = None,
    injected: set[str] = frozenset(),
) -> dict[str, Any]:
    """The keys a notebook run sets: every name papermill injected (whatever its value) and every
    key of the parameters cell not left at None. A name that is no key of the stage is an error
    naming the nearest key; a text value for a list or number key is read as YAML (papermill's
    `-p seeds "[0, 1]"`)."""
    keys = [f.name for f in dataclasses.fields(params_cls)]
    unknown = sorted((assigned or set()) - set(keys) - {"params"})
    if unknown:
        close = difflib.get_close_matches(unknown[0], keys, n=1, cutoff=0.0)
        raise ParamsError(
            f"{params_cls.STAGE}: '{unknown[0]}' is not a parameter of this stage (nearest: "
            f"'{close[0]}'); its keys: {', '.join(keys)}"
        )
    candidates = keys if assigned is None else [k for k in keys if k in assigned]
    overrides = {
        key: namespace[key]
        for key in candidates
        if key in namespace and (key in injected or namespace[key] is not None)
    }
    return {key: value_from_text(params_cls, key, value) for key, value in overrides.items()}


def value_from_text(params_cls: type[StageParams], key: str, value: Any) -> Any:
    """`value` as the key's type reads it: text given for a list, number or boolean key is
    parsed as YAML (`[0, 1]`, `1e-3`, `true`); anything else is returned as it is."""
    hint = typing.get_type_hints(params_cls).get(key)
    optional = [a for a in typing.get_args(hint) if a is not type(None)]
    takes_text = hint is str or (typing.get_origin(hint) is not tuple and optional == [str])
    if not isinstance(value, str) or takes_text:
        return value

    try:
        return YAML(typ="safe", pure=True).load(value)
    except YAMLError:
        return value


def open_stage(
    params_cls: type[StageParams],
    injected: Mapping[str, Any] | None = None,
    root: Path | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> Stage:
    """Open a stage from its notebook: validate its params, decide where it writes, set the plot
    theme, return the Stage.

    The params: the group DVC or `rmteacher run` injected as `params`, else params.yaml's group,
    with every key the notebook itself sets (papermill `-p KEY VALUE`, a line of the parameters
    cell) on top; an injected name that is no key of the stage is a one-line error. In a kernel
    the notebook's namespace and history are read from IPython (`namespace` gives one directly).

    Where: in place when DVC runs the stage (or the run already sits in a scratch folder), else
    a new scratch folder runs/<stage>/<time>-<hash>/ that becomes the working directory (see
    `rmteacher.core.runs`); a line says so."""
    if namespace is None:
        namespace, assigned, names_injected = _notebook_inputs()
    else:
        assigned, names_injected = None, set()
    overrides = notebook_overrides(params_cls, namespace, assigned, names_injected)
    start = Path(root) if root is not None else repo_root()
    if injected is None:
        base = params_cls.from_groups(load_params_file(start / "params.yaml")).to_dict()
    else:
        base = dict(injected)
    params = params_cls.from_mapping({**base, **overrides})
    if not runs.writes_in_place(params_cls.STAGE, start):
        data = params.into_groups(load_params_file(start / "params.yaml"))
        folder = runs.make_scratch(start, params_cls.STAGE, data[params_cls.STAGE], data)
        where = runs.describe(folder, start)
        os.chdir(folder)
        start = folder
        print(
            f"{params_cls.STAGE}: not run by DVC, so this run writes under {where} "
            "(DVC's outputs are untouched)"
        )
    progress.start_reporter()
    use_book_style()
    log = os.environ.get(STAGE_LOG_ENV)
    if log:
        send_stderr_to(start / log)
    return Stage(params, StageOutputs(params_cls.STAGE, start))


def send_stderr_to(path: Path) -> None:
    """Route this process's stderr (Python warnings, library log records, load reports) to the
    log file `path`, appending, so an executed notebook shows only what the stage displays:
    handlers already bound to the old stderr are re-pointed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", buffering=1)  # noqa: SIM115 (open for the kernel's lifetime)
    previous, sys.stderr = sys.stderr, log
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            # (the process's own stderr too: an import such as DVC's may have wrapped it since)
            bound = handler.stream if isinstance(handler, logging.StreamHandler) else None
            if bound is not None and (bound is previous or bound is sys.__stderr__):
                handler.setStream(log)
