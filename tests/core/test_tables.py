"""The book's edited tables, labels, glued text and figure finish: what a reader sees is words,
units and intervals, never code names, reprs, "nan" or truncated text."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from rmteacher.core.labels import html_label, label, plain_label
from rmteacher.core.stage import GluedText, glue_text
from rmteacher.core.tables import column_decimals, interval, number, spread, table


def cells(shown) -> list[list[str]]:
    """The body cells of an edited table's HTML, row by row."""
    rows = re.findall(r"<tr>(.*?)</tr>", shown.html, flags=re.S)
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S) for row in rows[1:]]


def headers(shown) -> list[str]:
    return re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", shown.html, flags=re.S)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("rm_onpolicy_75", "mix 75 % on-policy"),
        ("fam_n0.5_c0.3", "family η = 0.5, c = 0.3"),
        ("y_gamma first", "y_γ first"),
        ("shared_mlp", "shared MLP"),
        ("beta0", "β = 0"),
        ("kl", "KL to the initial policy (nats)"),
        ("paper_reward_variance", "reward variance (paper)"),
        ("some_new_column", "some new column"),
        ("Lemma 8: $\\mathrm{Var}^{1/2}$", "Lemma 8: $\\mathrm{Var}^{1/2}$"),
        (True, "yes"),
    ],
)
def test_labels_turn_code_names_into_words(name, expected):
    assert label(name) == expected


def test_tex_labels_have_plain_and_html_forms():
    assert label("gold_increase") == "$r_G$ increase"
    assert plain_label("gold_increase") == "r_G increase"
    assert html_label("gold_increase") == "<i>r</i><sub>G</sub> increase"
    assert html_label("t_gamma") == "<i>t</i><sub>γ</sub>"


def test_numbers_at_a_readers_precision():
    assert number(20000.0) == "20,000"
    assert number(0.243927) == "0.244"
    assert number(1.7638305733747544e-10) == "1.76e-10"
    assert number(float("nan")) == number(None) == "–"
    assert number(float("inf")) == "∞"
    assert column_decimals([0.82, 1.0, 0.029]) == 3
    assert column_decimals([0.24, 20000.0, 0.0227]) is None  # spans decades: each on its own
    assert column_decimals([1, 2, 3]) is None


def test_an_undefined_interval_is_left_out_not_printed_as_nan():
    assert interval(0.68, 0.22, 0.93) == "0.680 [0.220, 0.930]"
    assert interval(0.68, 0.22, 0.93, decimals=2) == "0.68 [0.22, 0.93]"
    assert interval(0.811, float("nan"), 0.618) == "0.811"
    assert interval(float("nan"), 0.1, 0.2) == "–"
    assert spread(0.12, 0.03, 2) == "0.12 ± 0.03"
    assert spread(0.12, float("nan")) == "0.120"


def test_a_table_has_no_index_row_labels_its_columns_and_words_pass_fail():
    checks = pd.DataFrame(
        {
            "check": ["gold_variance", "pairs"],
            "what": ["r_G's reward variance under the initial policy, " * 3, "pairs"],
            "value": [0.243927, 20000.0],
            "passed": [True, False],
        }
    ).set_index("check")
    shown = table(checks)
    assert headers(shown) == ["check", "what it measures", "value", "result"]
    assert cells(shown)[0][0] == "gold variance"
    assert [row[-1] for row in cells(shown)] == ["pass", "fail"]
    assert [row[2] for row in cells(shown)] == ["0.244", "20,000"]
    assert "…" not in shown.html and "..." not in shown.html  # no truncation
    assert 'class="data row0 col1 rmt-text"' in shown.html  # the long text wraps
    assert shown.html.startswith('<div class="rmt-table-wrap">')


def test_a_statistic_and_its_interval_share_one_cell():
    claims = pd.DataFrame(
        {
            "claim": ["a", "b"],
            "verdict": ["undecided", "reproduced"],
            "value": [0.811, 0.68],
            "low": [np.nan, 0.22],
            "high": [np.nan, 0.93],
        }
    )
    shown = table(claims, columns={"value": "statistic [95 % interval]"})
    assert headers(shown) == ["claim", "verdict", "statistic [95 % interval]"]
    assert [row[2] for row in cells(shown)] == ["0.811", "0.680 [0.220, 0.930]"]
    frame = pd.DataFrame({"rm": ["gold"], "gold_increase_mean": [0.1], "gold_increase_std": [0.02]})
    assert cells(table(frame))[0] == ["<i>r</i><sub>G</sub>", "0.100 ± 0.020"]


def test_row_numbers_are_not_shown_but_a_named_or_text_index_is():
    frame = pd.DataFrame({"rm": ["a", "b", "c"], "x": [1.5, 2.5, 3.5]})
    assert headers(table(frame[frame.x > 2])) == ["RM", "x"]  # index [1, 2] after a filter
    assert headers(table(frame.set_index("rm"))) == ["RM", "x"]
    assert headers(table(frame.set_index("rm").rename_axis(None)))[0] == ""


def test_no_nan_none_or_repr_reaches_a_table():
    frame = pd.DataFrame(
        {"rm": ["rm_onpolicy_100", "perfect"], "kl": [np.nan, 0.5], "note": [None, "x"]}
    )
    text = " ".join(" ".join(row) for row in cells(table(frame)))
    assert not re.search(r"\bnan\b|\bNone\b|NaN", text)
    assert "mix 100 % on-policy" in text


def test_a_table_is_the_same_bytes_every_time():
    frame = pd.DataFrame({"x": [1.5, 2.5]})
    assert table(frame).html == table(frame.copy()).html


def test_glued_text_reads_as_words_not_reprs():
    assert repr(glue_text("k", "r: +1 on y_gamma")) == "r: +1 on y_γ"
    assert repr(glue_text("k", True)) == "yes"
    assert repr(glue_text("variance_range", [1.7638305733747544e-10, 0.814789125237482])) == (
        "1.76e-10 to 0.815"
    )
    assert repr(glue_text("seeds", [0, 1, 2])) == "0, 1, 2"
    assert glue_text("x", 0.5) == 0.5  # numbers stay numbers, so format specs apply
    assert isinstance(glue_text("x", "a"), GluedText)


def test_figure_finish_fits_the_book_and_relabels(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rmteacher.core.figures import BOOK_WIDTH, MIN_LEGEND_PT, finish, use_book_style

    use_book_style()
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.plot([1, 2], [1, 2], label="rm_onpolicy_100")
    ax.legend(fontsize=6, title="rm")
    ax.set(xlabel="onpolicy_accuracy_untied", ylabel="reward_variance")
    finish(fig)
    assert math.isclose(fig.get_size_inches()[0], BOOK_WIDTH)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["mix 100 % on-policy"]
    assert legend.get_title().get_text() == "RM"
    assert min(t.get_fontsize() for t in legend.get_texts()) >= MIN_LEGEND_PT
    assert ax.get_xlabel() == "on-policy accuracy (untied)"
    plt.close(fig)
