"""One figure style for the whole book, and the finishing touches every saved figure gets.

    use_book_style()                  # open_stage calls it: fonts, grid, constrained layout
    fig, axes = plt.subplots(1, 2, figsize=size(2))
    ...
    legend_outside(fig)               # one legend for the figure, beside or below the data
    finish(fig)                       # Stage.figure calls it: human labels, book width

A figure is drawn at most `BOOK_WIDTH` inches wide, so at the book's text width its fonts read
at about the size of the text: `finish` scales a wider figure down (its fonts keep their point
size, so they grow relative to the figure), relabels code names in legends, legend titles and
axis labels through `labels.label`, and raises any legend font below `MIN_LEGEND_PT`.
"""

from __future__ import annotations

import math

from rmteacher.core.labels import label

BOOK_WIDTH = 7.5  # inches: a figure saved at 150 dpi fills the text column at ~1.4 px per pt
PANEL_HEIGHT = 3.0
MIN_LEGEND_PT = 8.5
RC = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9.5,
    "legend.frameon": False,
    "figure.constrained_layout.use": True,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "axes.titlelocation": "left",
}


def use_book_style() -> None:
    """seaborn's whitegrid with the book's font sizes and constrained layout."""
    import seaborn as sns  # ~1.4 s: `rmteacher check` imports core.stage, which imports this

    sns.set_theme(context="notebook", style="whitegrid", rc=RC)


def size(ncols: int = 1, nrows: int = 1, height: float = PANEL_HEIGHT) -> tuple[float, float]:
    """figsize for `ncols` x `nrows` panels at the book's width (one panel: two thirds of it)."""
    width = BOOK_WIDTH if ncols > 1 else BOOK_WIDTH * 2 / 3
    return width, height * nrows


def legend_outside(fig, where: str = "right", title: str | None = None, ncols: int | None = None):
    """Replace the axes' legends by one figure legend outside the data ('right' or 'below');
    entries are deduplicated by label and relabelled. Needs constrained layout (the book
    style's default). Returns the legend, or None when no axes has a legend entry."""
    handles, labels = {}, []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None and title is None and legend.get_title().get_text():
            title = legend.get_title().get_text()
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            if text.startswith("_") or text in handles:
                continue
            handles[text] = handle
            labels.append(text)
        if legend is not None:
            legend.remove()
    if not labels:
        return None
    from matplotlib.layout_engine import ConstrainedLayoutEngine  # matplotlib: as seaborn

    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.set_layout_engine("constrained")  # seaborn's figure-level plots switch to tight
    loc = "outside right upper" if where == "right" else "outside lower center"
    if ncols is None:
        ncols = 1 if where == "right" else min(len(labels), 4)
    return fig.legend(
        [handles[t] for t in labels],
        [label(t) for t in labels],
        loc=loc,
        ncols=ncols,
        title=label(title) if title else None,
    )


def legend_below(ax, ncols: int = 2, title: str | None = None):
    """Move `ax`'s legend under the axes, below its tick labels and x label (measured in
    points, so it stays clear of them whatever size constrained layout gives the axes)."""
    from matplotlib.transforms import ScaledTranslation  # matplotlib: as seaborn

    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    legend = ax.get_legend()
    if legend is not None:
        if title is None:
            title = legend.get_title().get_text() or None
        legend.remove()
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    drop = (ax.get_window_extent(renderer).y0 - ax.get_tightbbox(renderer).y0) / fig.dpi + 0.05
    below = ax.transAxes + ScaledTranslation(0, -drop, fig.dpi_scale_trans)
    return ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0),
        bbox_transform=below,
        ncols=ncols,
        title=label(title) if title else None,
    )


def finish(fig):
    """Book width, human labels and legible legends (see the module docstring)."""
    width, height = fig.get_size_inches()
    if width > BOOK_WIDTH:
        fig.set_size_inches(BOOK_WIDTH, height * BOOK_WIDTH / width)
    legends = [ax.get_legend() for ax in fig.axes] + list(fig.legends)
    for ax in fig.axes:
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if axis.get_scale() == "log":
                _tidy_log_ticks(axis, *limits)
        ax.set_xlabel(label(ax.get_xlabel()))
        ax.set_ylabel(label(ax.get_ylabel()))
        for loc in ("left", "center", "right"):
            if title := ax.get_title(loc=loc):
                ax.set_title(label(title), loc=loc)
    for legend in filter(None, legends):
        for text in [legend.get_title(), *legend.get_texts()]:
            text.set_text(label(text.get_text()))
            text.set_fontsize(max(text.get_fontsize(), MIN_LEGEND_PT))
    return fig


def _tidy_log_ticks(axis, low: float, high: float) -> None:
    """Log-axis tick labels that never collide: no labelled minor ticks; a range shorter than
    two decades gets plain labels at 1, 2 and 5 times each power of ten (unless the notebook
    placed the ticks itself)."""
    # matplotlib: as seaborn in `use_book_style`, kept out of `rmteacher check`
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    axis.set_minor_formatter(NullFormatter())
    chosen = isinstance(axis.get_major_locator(), FixedLocator)  # ticks the notebook set
    if not chosen and low > 0 and high > 0 and abs(math.log10(high / low)) < 2:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
