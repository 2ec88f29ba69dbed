"""Resource bounds are part of validation: every size a stage takes is in its estimate, so a size
nobody can run is refused in one line naming it (memory) or warned about (work) before any
compute; the defaults and the small profiles pass silently."""

import dataclasses
import typing

import numpy as np
import pytest

from rmteacher import pipeline, resources
from rmteacher.core.params import ParamsError
from rmteacher.pipeline import stage_registry

AVAILABLE = 16 * resources.GB  # the machine these checks pretend to run on

# Numeric fields that are not sizes: a huge value costs no memory and no extra work, or the
# stage's own check bounds it. Every other int field, and every epochs-like float, is a size.
NOT_SIZES = {
    "seed": "a random seed",
    "split_seed": "a random seed",
    "perfect_seed": "a random seed",
    "family_seed": "a random seed",
    "temperature": "a sampling or initialisation scale",
    "init_scale": "an initialisation scale",
    "offset_scale": "a perturbation scale",
    "noise": "a ranking noise level",
    "lam": "a KL weight",
    "beta": "a KL weight",
    "grpo_beta": "a KL weight",
    "big_t": "a reward scale T",
    "learning_rate": "a step size",
    "adam_learning_rate": "a step size",
    "sgd_learning_rate": "a step size",
    "weight_decay": "a regulariser",
    "center_rewards_coefficient": "a regulariser",
    "max_grad_norm": "a clipping threshold",
    "max_kl": "a selection threshold",
    "matched_kl": "the KL at which increases are read",
    "increase_epoch": "the epoch at which increases are read (within the runs' epochs)",
    "perfect_factor": "a reward scale",
    "perfect_shift": "a reward shift",
    "check_pairs": "a manipulation-check threshold",
    "check_variance_span": "a manipulation-check threshold",
    "check_family_variance": "a manipulation-check threshold",
    "max_text_tokens": "a length filter (drops long records, allocates nothing)",
    "min_passage_words": "a length filter",
    "min_prompt_words": "a length filter",
    "window_stride": "a stride: larger means fewer passages",
    "warmup_steps": "a schedule length within the run's steps",
    "eval_every": "a schedule: larger means fewer evaluations",
    "n_head": "attention heads, which must divide n_embd",
    "ar_horizon": "an integration horizon: adaptive steps grow with its logarithm",
    "kl_horizon_factor": "an integration horizon: adaptive steps grow with its logarithm",
    "horizon_factor": "an integration horizon: adaptive steps grow with its logarithm",
}


def size_fields():
    """(stage, field) for every size field of every stage's parameter class."""
    for stage, cls in stage_registry().items():
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            tp = hints[item.name]
            args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
            if typing.get_origin(tp) is tuple or args[0] not in (int, float):
                continue
            if item.name in NOT_SIZES or args[0] is float and "epoch" not in item.name:
                continue
            yield stage, item.name


@pytest.fixture
def machine(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: AVAILABLE)


@pytest.mark.parametrize(
    "stage, key", list(size_fields()), ids=[f"{s}.{k}" for s, k in size_fields()]
)
def test_a_size_nobody_can_run_is_refused_or_warned_about_by_name(machine, stage, key):
    """A size set a million times beyond sense: validation refuses it (the field's own bound or
    a cross-field rule), the memory estimate refuses it naming the field, or the work estimate
    warns naming it. A size the estimates ignore fails here."""
    cls = stage_registry()[stage]
    default = cls().to_dict()[key]
    value = 10**9 if isinstance(default, int) else 1e9
    try:
        params = cls.from_mapping({key: value})
    except ParamsError:
        return  # refused by validation already
    named = f"{stage}.{key}="
    try:
        warnings = resources.check({stage: params})
    except ParamsError as err:
        assert named in str(err) and "--ignore-memory" in str(err), str(err)
        assert "\n" not in str(err)
        return
    assert any(named in warning for warning in warnings), warnings


@pytest.mark.parametrize("profile", ["default", "tiny", "gpu"])
def test_the_profiles_pass_without_refusal_or_warning(machine, profile):
    registry = stage_registry()
    overlay = pipeline.load_profile(profile, pipeline.repo_root() / "profiles")
    groups = {
        stage: cls.from_mapping({**cls.defaults(), **overlay.get(stage, {})})
        for stage, cls in registry.items()
    }
    assert resources.check(groups) == [] or profile == "gpu"


def test_every_stage_has_an_estimate():
    assert set(resources.ESTIMATES) == set(stage_registry())
    for stage, cls in stage_registry().items():
        memory, work = resources.estimate(cls())
        assert resources.NUMPY_KERNEL <= memory < 8 * resources.GB, stage
        assert work > 0, stage


def test_the_override_lets_a_large_size_through(machine):
    cls = stage_registry()["theory_gradient_bound"]
    params = cls.from_mapping({"n_scales": 10**9})
    with pytest.raises(ParamsError, match=r"^theory_gradient_bound.n_scales=1000000000: .* GB"):
        resources.check({"theory_gradient_bound": params})
    resources.check({"theory_gradient_bound": params}, ignore_memory=True)


def test_the_monte_carlo_check_streams_any_number_of_trials(monkeypatch):
    """n_mc beyond memory is drawn in chunks: the estimate's memory stays flat in n_mc, and the
    chunked estimate agrees with the exact Best-of-N value within its standard error."""
    from rmteacher.theory.exact import quantities

    cls = stage_registry()["theory_best_of_n"]
    small, huge = (resources.estimate(cls.from_mapping({"n_mc": n}))[0] for n in (10**6, 10**12))
    assert huge == small
    pi = np.full(6, 1 / 6)
    rm, gold = np.arange(6.0), np.arange(6.0) ** 2
    exact = quantities.best_of_n_expected_reward(pi, rm, gold, 3)
    monkeypatch.setattr(quantities, "MC_CHUNK_CELLS", 3 * 1000)  # 1,000 trials a chunk
    mean, se = quantities.best_of_n_monte_carlo(pi, rm, gold, 3, 20_500, np.random.default_rng(0))
    assert abs(mean - exact) < 4 * se and 0 < se < 0.2


def test_available_memory_respects_an_address_space_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (3 * resources.GB, hard))
        assert resources.available_memory() <= 3 * resources.GB
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
