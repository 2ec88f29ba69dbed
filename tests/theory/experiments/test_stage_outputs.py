"""The five theory stages' library runs at tiny size: every number a book page glues from an
executed notebook exists and formats with the page's format spec (the book builds with -W), and
the metrics say what the pages claim. Consistency checks (outcomes that hold by construction) are
kept apart from the tests of the theorems, which could fail."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from myst_nb.core.variables import format_plain_text

from rmteacher.core import paths
from rmteacher.core.params import load_params_file
from rmteacher.stages.theory import (
    accuracy_speed,
    best_of_n,
    escape_time,
    gradient_bound,
    policy_dependence,
)
from rmteacher.theory.theorem2 import Theorem2Construction

ROOT = Path(__file__).resolve().parents[3]
GLUE_REF = re.compile(r"\{glue(?::text)?\}`\.\./executed/(theory_\w+)\.ipynb::(\w+)(?::([^`]+))?`")
# Names a notebook glues besides the metrics: a figure or table, or an entry of `glue_values`.
NOTEBOOK_GLUE = re.compile(r"""glue_name="(\w+)"|stage\.table\("(\w+)"|glue_values=\{([^}]*)\}""")
TINY = load_params_file(ROOT / "profiles" / "tiny.yaml")
# Edge cases on top of the tiny profile: no KL weight (the KL slopes have no points) and a T
# sweep in which the ranking flips at every T (no non-flipping T).
EDGE = {
    "theory_escape_time": {"lams": [0.0]},
    "theory_policy_dependence": {"t_values": [10.0, 20.0]},
}


def stage_params(cls, **extra):
    return cls.from_mapping({**TINY.get(cls.STAGE, {}), **extra})


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """{stage: run result} from the tiny profile plus EDGE (run in a scratch directory:
    theory_accuracy_speed saves its construction under artifacts/)."""
    construction = stage_params(accuracy_speed.AccuracySpeedParams)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("theory_stages"))
        return run_all(construction)


def run_all(construction):
    return {
        "theory_gradient_bound": gradient_bound.run(
            stage_params(gradient_bound.GradientBoundParams)
        ),
        "theory_escape_time": escape_time.run(
            stage_params(escape_time.EscapeTimeParams, **EDGE["theory_escape_time"])
        ),
        "theory_accuracy_speed": accuracy_speed.run(construction),
        "theory_policy_dependence": policy_dependence.run(
            stage_params(
                policy_dependence.PolicyDependenceParams, **EDGE["theory_policy_dependence"]
            )
        ),
        "theory_best_of_n": best_of_n.run(stage_params(best_of_n.BestOfNParams), construction),
    }


@pytest.fixture(scope="module")
def metrics(results):
    """{stage: metrics}, as the notebooks glue them."""
    return {stage: result.metrics for stage, result in results.items()}


def notebook_glue_names(stage):
    """Names the stage's notebook glues other than its metrics."""
    notebook = json.loads((ROOT / "notebooks" / f"{stage}.ipynb").read_text())
    sources = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    names = set()
    for figure, table, values in NOTEBOOK_GLUE.findall(sources):
        names |= {figure, table, *re.findall(r"\"(\w+)\":", values)}
    return names - {""}


def glue_references():
    for page in sorted((ROOT / "book" / "theory").glob("*.md")):
        for stage, key, fmt in GLUE_REF.findall(page.read_text()):
            yield page.name, stage, key, fmt


def test_every_glued_number_exists_and_formats(metrics):
    refs = list(glue_references())
    assert len(refs) > 40
    for page, stage, key, fmt in refs:
        if key not in metrics[stage]:
            assert key in notebook_glue_names(stage), (page, key)
            continue
        value = metrics[stage][key]
        assert value is not None, (page, key)
        value = value.item() if isinstance(value, np.generic) else value
        format_plain_text(repr(value), fmt)  # what myst-nb does with the glued text/plain


def test_result_tables_are_the_plot_data_the_metrics_summarize(results):
    """The tables a notebook writes as plot data hold the runs its metrics count."""
    bound = results["theory_gradient_bound"]
    assert len(bound.tabular) == bound.metrics["n_instances_tabular"]
    assert len(bound.autoregressive) == bound.metrics["n_instances_autoregressive"]
    runs = results["theory_escape_time"].escape_times
    assert set(runs.design) == {"all_prompts", "one_prompt", "rarity"}
    speed = results["theory_accuracy_speed"]
    assert len(speed.head_to_head) == 2
    assert (speed.sweep.rm == accuracy_speed.SLOW).sum() == speed.metrics["sweep_n_slow"]
    bon = results["theory_best_of_n"]
    assert len(bon.gold_by_n) == bon.metrics["bon_n_rms_compared"] * 8  # tiny max_n = 8
    assert bon.monte_carlo_check.z.abs().max() == bon.metrics["bon_mc_max_abs_z"]


def test_consistency_check_t_sweep_slope_is_minus_one_half(metrics):
    """Consistency check, not a test of Theorems 1/4: without KL the T sweep only rescales time
    (t_gamma(T) = T t_gamma(1) while Var(T) = Var(1) / T^2), so any correct integrator gives -1/2
    for every policy. It catches a broken integrator or sweep, nothing about the theorems."""
    escape = metrics["theory_escape_time"]
    assert escape["escape_time_slope_tabular"] == pytest.approx(-0.5, abs=1e-6)
    assert escape["escape_time_slope_autoregressive"] == pytest.approx(-0.5, abs=1e-6)
    assert escape["all_prompts_design_time_spread"] == pytest.approx(16.0, rel=1e-6)  # T: 1..16
    assert math.isnan(escape["escape_time_slope_tabular_kl"])  # no lambda > 0: NaN, not None
    assert escape["integrator_t_gamma_rel_change"] < 1e-5


def test_consistency_check_gradient_slope_is_one_half(metrics):
    """Consistency check: at initialization the tabular gradient is linear in the reward scale
    and the variance quadratic, so the slope under pure rescaling is 1/2 by construction."""
    slope = metrics["theory_gradient_bound"]["scaling_slope_grad_vs_variance_tabular"]
    assert slope == pytest.approx(0.5, abs=1e-9)


def test_gradient_bounds_hold_lemma8_nearly_tight(metrics):
    """Lemma 8 and Proposition 2: every gradient lies below its bound; Lemma 8 nearly attained."""
    bound = metrics["theory_gradient_bound"]
    assert 0.9 < bound["max_grad_to_bound_ratio_tabular"] <= 1.0
    assert bound["max_grad_to_bound_ratio_tabular_prop2"] <= 1.0
    assert bound["max_grad_to_bound_ratio_autoregressive"] <= 1.0


def test_rarity_sweep_tests_the_escape_time_bounds(metrics):
    """The informative exponents (Theorems 1/4, Proposition 3): at a fixed reward scale, lowering
    the variance by making the rewarded output rare slows escape more than rescaling does, and
    every run stays above its lower bound (Proposition 3 tabular, Theorem 4 MLP)."""
    escape = metrics["theory_escape_time"]
    assert escape["escape_time_slope_rarity_tabular"] < -0.8
    assert escape["escape_time_slope_rarity_autoregressive"] < -0.6
    assert escape["rarity_bounds_hold_all"]
    assert escape["min_ratio_to_lower_bound_rarity_tabular"] >= 1
    assert escape["min_ratio_to_lower_bound_rarity_autoregressive"] >= 1
    assert escape["min_ratio_to_lower_bound_tabular"] >= 1
    assert escape["min_ratio_to_lower_bound_autoregressive"] >= 1


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


def test_best_of_n_reads_the_construction_theory_accuracy_speed_saved(tmp_path, monkeypatch):
    """Without a `construction`, Best-of-N uses the one theory_accuracy_speed saved (its declared
    artifact, what the notebook relies on), not the defaults."""
    construction = accuracy_speed.AccuracySpeedParams.from_mapping({"seed": 3, "n_rankings": 2})
    monkeypatch.chdir(tmp_path)
    Theorem2Construction.of(construction).save(paths.THEORY_CONSTRUCTION)
    params = stage_params(best_of_n.BestOfNParams)
    from_file = best_of_n.run(params).metrics
    assert from_file == best_of_n.run(params, construction).metrics
    assert from_file != best_of_n.run(params, accuracy_speed.AccuracySpeedParams()).metrics
