"""The five theory stages' library runs at tiny size: every number a book page glues from an
executed notebook exists and formats with the page's format spec (the book builds with -W), and
the metrics say what the pages claim."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from myst_nb.core.variables import format_plain_text

from rmteacher.params import stage_registry
from rmteacher.pipeline import load_profile
from rmteacher.theory.experiments import (
    accuracy_speed,
    best_of_n,
    escape_time,
    gradient_bound,
    policy_dependence,
)

ROOT = Path(__file__).resolve().parents[2]
GLUE_REF = re.compile(r"\{glue(?::text)?\}`\.\./executed/(theory_\w+)\.ipynb::(\w+)(?::([^`]+))?`")
NOTEBOOK_GLUE = re.compile(r"""glue\("(\w+)\"""")
# Edge cases on top of the tiny profile: no KL weight (the KL slopes have no points) and a T
# sweep in which the ranking flips at every T (no non-flipping T).
EDGE = {
    "theory_escape_time": {"lams": [0.0]},
    "theory_policy_dependence": {"t_values": [10.0, 20.0]},
}


def stage_params(stage, **extra):
    group = {**load_profile("tiny", ROOT / "profiles").get(stage, {}), **extra}
    return stage_registry()[stage].from_mapping(group)


@pytest.fixture(scope="module")
def metrics():
    """{stage: metrics} from the tiny profile plus EDGE, as the notebooks would glue them."""
    construction = stage_params("theory_accuracy_speed")
    return {
        "theory_gradient_bound": gradient_bound.run(stage_params("theory_gradient_bound"))[2],
        "theory_escape_time": escape_time.run(
            stage_params("theory_escape_time", **EDGE["theory_escape_time"])
        )[1],
        "theory_accuracy_speed": accuracy_speed.run(construction)[3],
        "theory_policy_dependence": policy_dependence.run(
            stage_params("theory_policy_dependence", **EDGE["theory_policy_dependence"])
        )[2],
        "theory_best_of_n": best_of_n.run(stage_params("theory_best_of_n"), construction)[2],
    }


def glue_references():
    for page in sorted((ROOT / "book" / "theory").glob("*.md")):
        for stage, key, fmt in GLUE_REF.findall(page.read_text()):
            yield page.name, stage, key, fmt


def test_every_glued_number_exists_and_formats(metrics):
    refs = list(glue_references())
    assert len(refs) > 40
    for page, stage, key, fmt in refs:
        notebook = (ROOT / "notebooks" / f"{stage}.ipynb").read_text()
        sources = "".join("".join(c["source"]) for c in json.loads(notebook)["cells"])
        if key not in metrics[stage]:
            assert key in NOTEBOOK_GLUE.findall(sources), (page, key)
            continue
        value = metrics[stage][key]
        assert value is not None, (page, key)
        value = value.item() if isinstance(value, np.generic) else value
        format_plain_text(repr(value), fmt)  # what myst-nb does with the glued text/plain


def test_escape_time_slopes(metrics):
    escape = metrics["theory_escape_time"]
    # The T sweep rescales time: exactly -1/2 for both policies (pipeline test: +-0.01).
    assert escape["escape_time_slope_tabular"] == pytest.approx(-0.5, abs=1e-6)
    assert escape["escape_time_slope_autoregressive"] == pytest.approx(-0.5, abs=1e-6)
    assert math.isnan(escape["escape_time_slope_tabular_kl"])  # no lambda > 0: NaN, not None
    # At a fixed reward scale, rarity makes escape slower than the rescaling does.
    assert escape["escape_time_slope_rarity_tabular"] < -0.8
    assert escape["escape_time_slope_rarity_autoregressive"] < -0.6
    assert escape["rarity_bounds_hold_all"]
    assert escape["min_ratio_to_lower_bound_rarity_tabular"] >= 1
    assert escape["integrator_t_gamma_rel_change"] < 1e-5


def test_accuracy_sweep_covers_the_extremes_and_counts_checks(metrics):
    speed = metrics["theory_accuracy_speed"]
    assert speed["sweep_accuracy_min"] == 0.0 and speed["sweep_accuracy_max"] == 1.0
    assert speed["sweep_accuracy_min_fast"] == pytest.approx(speed["two_over_n_outputs"])
    assert speed["thm5_slow_bound_holds_all"] and speed["thm5_slow_bound_n_checked"] >= 3
    assert speed["thm5_fast_bound_holds_all"]
    assert speed["thm5_fast_bound_n_checked"] == speed["sweep_n_fast"]
    n_slow = speed["sweep_n_slow"]
    assert speed["thm5_slow_bound_n_checked"] + speed["sweep_n_censored_slow"] == n_slow


def test_policy_dependence_and_best_of_n_metrics(metrics):
    dependence = metrics["theory_policy_dependence"]
    assert dependence["thm3_accuracy_r"] == pytest.approx(9 / 45)  # r_G's best output
    assert dependence["thm3_accuracy_r_prime"] == pytest.approx(8 / 45)  # its second best
    assert dependence["thm3_smallest_flipping_t"] == 10.0
    assert math.isnan(dependence["thm3_largest_non_flipping_t"])
    bon = metrics["theory_best_of_n"]
    speed = metrics["theory_accuracy_speed"]
    # Same construction, read from theory_accuracy_speed: the same policy-gradient times.
    assert bon["pg_t_gamma_accurate_rm"] == speed["thm2_t_gamma_accurate_rm"]
    assert bon["pg_t_gamma_low_accuracy_rm"] == speed["thm2_t_gamma_low_accuracy_rm"]
    assert bon["bon_accurate_rm_is_best"]
