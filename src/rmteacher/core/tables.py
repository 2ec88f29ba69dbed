"""Edited tables for the book, built from DataFrames with a pandas Styler.

    table(frame)                            # every default below
    table(frame, formats={"kl": "{:.2f}"}, columns={"value": "statistic"})

What a table gets without asking:
- the index (named or not, one level or several) becomes ordinary columns, and the index itself is
  hidden, so there is no index-name row;
- headers through `labels.html_label` (human names, units), values of name-like columns (`rm`,
  `policy`, `variant`, ...) through `labels.label`;
- a statistic with its interval in one cell: columns `X`, `X_low`, `X_high` (or `value`, `low`,
  `high`) become "0.680 [0.220, 0.930]", and `X_mean`, `X_std` (or `mean`, `std`) become
  "0.12 ± 0.03"; an undefined interval is left out, never printed as "nan";
- numbers at a precision that suits the column (three decimals for values of order one, thousands
  separators for counts, scientific notation where a column spans decades), missing values as "–";
- booleans as "pass"/"fail" in a `passed` column, else "yes"/"no";
- no truncation (the Styler renders every row and the whole text); text longer than
  `WRAP_AT` characters wraps in a wider column, and the book's CSS (`book/_theme/rmteacher.css`,
  class `rmt-table`) lets a table wider than the text column scroll inside its box.

The result's HTML is what `Stage.table` glues; it displays in a notebook as the same table.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Number

from rmteacher.core.labels import html_label, label

MISSING = "–"
WRAP_AT = 40  # characters: a column with longer text gets the wrapping class
NAME_COLUMNS = frozenset(
    {"rm", "policy", "variant", "optimizer", "property", "predictor", "design", "kind", "shape"}
    | {"source", "algorithm", "ordering", "family", "check", "claim", "statistic"}
)
PASS_COLUMNS = frozenset({"passed", "pass", "holds"})


@dataclass(frozen=True, eq=False)
class Table:
    """A formatted table: `html` for the book and notebooks, `text` for a terminal, and the
    `frame` it was made from."""

    html: str
    text: str
    frame: object = None

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def number(value, decimals: int | None = None) -> str:
    """One number as a reader wants it: integers with thousands separators, `decimals` places
    when given, else three significant digits (scientific below 1e-3 or from 1e5 up)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    size = abs(value)
    if size >= 1e5 or size < 1e-3:
        return f"{value:.2e}"
    return f"{value:,.3g}" if size < 1000 else f"{value:,.0f}"


def column_decimals(values) -> int | None:
    """Decimals that show a column's typical value with three significant digits, or None (each
    value formatted on its own) when the column is integral or spans more than two decades."""
    finite = [abs(float(v)) for v in values if _is_number(v) and math.isfinite(float(v))]
    if not finite or all(v == int(v) for v in finite):
        return None
    nonzero = sorted(v for v in finite if v > 0)
    if not nonzero or nonzero[-1] / nonzero[0] > 100 or nonzero[-1] >= 1e5 or nonzero[0] < 1e-3:
        return None
    typical = nonzero[len(nonzero) // 2]
    return min(4, max(0, 2 - math.floor(math.log10(typical))))


def interval(value, low=None, high=None, decimals: int | None = None) -> str:
    """The text "0.680 [0.220, 0.930]" (decimals: given, else shared by the three numbers);
    without a defined interval just the value; "–" without a value."""
    if decimals is None:
        decimals = column_decimals([value, low, high])
    text = number(value, decimals)
    if text == MISSING or not (_finite(low) and _finite(high)):
        return text
    return f"{text} [{number(low, decimals)}, {number(high, decimals)}]"


def spread(mean, std=None, decimals: int | None = None) -> str:
    """The text "0.120 ± 0.030" (decimals: given, else shared by the two); without a defined
    std just the mean."""
    if decimals is None:
        decimals = column_decimals([mean, std])
    text = number(mean, decimals)
    if text == MISSING or not _finite(std):
        return text
    return f"{text} ± {number(std, decimals)}"


def table(
    frame,
    columns: Mapping[str, str] | None = None,
    formats: Mapping[str, str | Callable] | None = None,
    caption: str | None = None,
    decimals: int | None = None,
) -> Table:
    """The edited table of `frame` (see the module docstring). `columns` overrides header labels
    (by column name, after combining intervals); `formats` gives a column a format string or a
    function of its value; `decimals` fixes the decimals of every non-integral number (e.g. for
    a pivot, whose columns hold the same quantity)."""
    import pandas as pd  # ~0.4 s: `rmteacher check` imports core.stage, which imports this
    from pandas.io.formats.style import Styler

    shown = _combine(_flatten(frame), decimals)
    names = list(shown.columns)
    texts, cells = {}, {}
    for name in names:
        values = list(shown[name])
        formatter = (formats or {}).get(name)
        texts[name] = [_cell(name, v, values, formatter, decimals) for v in values]
        cells[name] = [
            html_label(v) if name in NAME_COLUMNS and isinstance(v, str) else _escape(t)
            for v, t in zip(values, texts[name], strict=True)
        ]
    headers = [html.escape(columns[c]) if c in (columns or {}) else html_label(c) for c in names]
    display = pd.DataFrame([list(row) for row in zip(*cells.values(), strict=True)])
    display.columns = headers
    digest = hashlib.sha1(display.to_json().encode()).hexdigest()[:10]
    styler = Styler(display, uuid=digest, cell_ids=False, escape=None).hide(axis="index")
    styler.set_table_attributes('class="rmt-table"')
    textual = [  # text reads left-aligned, numbers (and intervals of them) right-aligned
        i
        for i, n in enumerate(names)
        if any(isinstance(v, str) and not v[:1].isdigit() and v[:1] not in "-–+." for v in shown[n])
        and not all(_is_number(v) or _missing(v) for v in shown[n])
    ]
    if textual:
        styler.set_table_styles(
            [
                {"selector": f"th.col{i}, td.col{i}", "props": [("text-align", "left")]}
                for i in textual
            ]
        )
    long_text = [i for i, n in enumerate(names) if max(map(len, texts[n]), default=0) > WRAP_AT]
    if long_text:
        classes = pd.DataFrame("", index=display.index, columns=range(len(names)))
        for i in long_text:
            classes[i] = "rmt-text"
        classes.columns = display.columns
        styler.set_td_classes(classes)
    if caption:
        styler.set_caption(html.escape(caption))
    body = styler.to_html()
    plain = pd.DataFrame({_plain(n): texts[n] for n in names}).to_string(index=False)
    return Table(f'<div class="rmt-table-wrap">\n{body}</div>\n', plain, frame)


def _flatten(frame):
    """The index as columns (an unnamed integer index, row numbers, is dropped), column levels
    joined with ", "."""
    import pandas as pd  # as in `table`

    shown = frame.copy()
    if isinstance(shown.columns, pd.MultiIndex):
        shown.columns = [
            ", ".join(label(level) for level in col if str(level)) for col in shown.columns
        ]
    shown.columns = [str(c) for c in shown.columns]
    unnamed = all(name is None for name in shown.index.names)
    row_numbers = unnamed and pd.api.types.is_integer_dtype(shown.index)  # e.g. after a filter
    if not row_numbers:
        names = [n if n is not None else "" for n in shown.index.names]
        shown.index.names = names
        shown = shown.reset_index()
    return shown.reset_index(drop=True)


def _combine(shown, fixed: int | None = None):
    """Statistic + interval and mean + std columns into one text column each."""
    shown = shown.copy()
    for base, low, high in [(c, f"{c}_low", f"{c}_high") for c in list(shown.columns)] + [
        ("value", "low", "high")
    ]:
        if {base, low, high} <= set(shown.columns):
            decimals = _decimals(list(shown[base]) + list(shown[low]) + list(shown[high]), fixed)
            shown[base] = [
                interval(v, lo, hi, decimals)
                for v, lo, hi in zip(shown[base], shown[low], shown[high], strict=True)
            ]
            shown = shown.drop(columns=[low, high])
    stems = [c.removesuffix("_mean") for c in shown.columns if c.endswith("_mean")]
    for mean, std, name in [(f"{c}_mean", f"{c}_std", c) for c in stems] + [
        ("mean", "std", "mean")
    ]:
        if {mean, std} <= set(shown.columns):
            decimals = _decimals(list(shown[mean]) + list(shown[std]), fixed)
            text = [spread(m, s, decimals) for m, s in zip(shown[mean], shown[std], strict=True)]
            position = list(shown.columns).index(mean)
            shown = shown.drop(columns=[mean, std])
            shown.insert(position, name if name not in shown.columns else mean, text)
    return shown


def _decimals(values, fixed: int | None) -> int | None:
    integral = all(float(v) == int(float(v)) for v in values if _finite(v))
    return column_decimals(values) if fixed is None or integral else fixed


def _cell(name: str, value, values, formatter, fixed: int | None = None) -> str:
    if formatter is not None:
        if _missing(value):
            return MISSING
        return formatter(value) if callable(formatter) else formatter.format(value)
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        if name in PASS_COLUMNS:
            return "pass" if value else "fail"
        return "yes" if value else "no"
    if _is_number(value):
        return number(value, _decimals(values, fixed))
    if _missing(value):
        return MISSING
    return _plain(value) if name in NAME_COLUMNS else str(value)


def _plain(name) -> str:
    return label(name).replace("$", "")


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _is_number(value) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA, NaT
    except (TypeError, ValueError):
        return False


def _finite(value) -> bool:
    return _is_number(value) and math.isfinite(float(value))
