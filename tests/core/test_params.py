"""Parameter validation: one clear line naming the key, before any compute."""

from dataclasses import dataclass

import pytest

from rmteacher.core.params import STAGE_PARAMS, ParamsError, StageParams, param
from rmteacher.pipeline import stage_registry


@pytest.fixture
def demo_cls():
    @dataclass(frozen=True)
    class DemoParams(StageParams):
        """A test-only stage."""

        STAGE = "demo_stage"
        seed: int = param(0, "seed", ge=0)
        gamma: float = param(0.1, "improvement", gt=0, lt=2)
        method: str = param("dop853", "integrator", choices=("dop853", "rk45"))
        t_values: tuple[float, ...] = param((1.0, 2.0), "values of T", ge=1)
        flag: bool = param(False, "a switch")
        limit: int | None = param(None, "optional cap", ge=1)

        def check(self) -> None:
            if self.seed == 13:
                raise ParamsError(f"{self.STAGE}.seed: 13 is reserved")

    yield DemoParams
    STAGE_PARAMS.pop("demo_stage", None)


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"gamma": -0.1}, "demo_stage.gamma: expected a float > 0 and < 2, got -0.1"),
        ({"gamma": "0.1"}, "demo_stage.gamma: expected a float > 0 and < 2, got '0.1'"),
        ({"gamma": True}, "demo_stage.gamma: expected a float > 0 and < 2, got True"),
        ({"seed": 1.5}, "demo_stage.seed: expected an integer >= 0, got 1.5"),
        ({"method": "rk4"}, "demo_stage.method: expected one of 'dop853', 'rk45', got 'rk4'"),
        (
            {"t_values": [0.5, 2]},
            "demo_stage.t_values: expected a list of floats >= 1, got [0.5, 2]",
        ),
        ({"t_values": []}, "demo_stage.t_values: expected a non-empty list of float, got []"),
        ({"t_values": 3.0}, "demo_stage.t_values: expected a non-empty list of float, got 3.0"),
        ({"flag": "yes"}, "demo_stage.flag: expected a boolean, got 'yes'"),
        ({"limit": 0}, "demo_stage.limit: expected an integer >= 1, got 0"),
        (
            {"gama": 0.2},
            "demo_stage: unknown parameter 'gama' (did you mean 'gamma'?); allowed: "
            "seed, gamma, method, t_values, flag, limit",
        ),
        ({"seed": 13}, "demo_stage.seed: 13 is reserved"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(demo_cls, mapping, message):
    with pytest.raises(ParamsError) as info:
        demo_cls.from_mapping(mapping)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_good_values_are_converted_and_defaults_fill_in(demo_cls):
    params = demo_cls.from_mapping({"gamma": 1, "t_values": [1, 4], "limit": None})
    assert params.gamma == 1.0 and isinstance(params.gamma, float)
    assert params.t_values == (1.0, 4.0)
    assert params.seed == 0 and params.method == "dop853"
    assert params.to_dict()["t_values"] == [1.0, 4.0]
    assert demo_cls.from_mapping(params.to_dict()) == params
    assert [row[0] for row in demo_cls.describe()] == list(params.to_dict())


def test_every_registered_stage_has_valid_documented_defaults():
    registry = stage_registry()
    assert {
        "theory_gradient_bound",
        "theory_escape_time",
        "theory_accuracy_speed",
        "theory_policy_dependence",
        "theory_best_of_n",
    } <= set(registry)
    for cls in registry.values():
        assert cls.from_mapping(cls.defaults()) == cls()
        assert cls.__doc__ and all(doc for *_, doc in cls.describe())


def test_cross_field_checks_of_theory_stages():
    registry = stage_registry()
    with pytest.raises(ParamsError, match="lams: must include 0.0"):
        registry["theory_escape_time"].from_mapping({"lams": [0.05]})
    with pytest.raises(ParamsError, match="vocab_size\\*\\*seq_len"):
        registry["theory_gradient_bound"].from_mapping({"vocab_size": 16, "seq_len": 8})


def test_a_stage_takes_shared_settings_from_their_own_group():
    """A field declared with `shared` takes its default, bounds and doc from the shared group;
    from a params file it comes from that group (validated whole), never from the stage's own
    group; the flattened form (what papermill injects) round-trips."""
    from rmteacher.core.params import SHARED_GROUPS, ParamGroup, shared

    @dataclass(frozen=True)
    class DemoShared(ParamGroup):
        """A test-only shared group."""

        GROUP = "demo_shared"
        rate: float = param(0.5, "a rate", gt=0)
        steps: int = param(3, "steps", ge=1)

    @dataclass(frozen=True)
    class DemoTaker(StageParams):
        """A test-only stage taking one shared setting."""

        STAGE = "demo_taker"
        seed: int = param(0, "seed", ge=0)
        rate: float = shared(DemoShared, "rate")

    try:
        assert DemoTaker.shared_keys() == {"rate": "demo_shared"}
        assert [row[0] for row in DemoTaker.describe()] == ["seed"]  # its own group's keys
        params = DemoTaker.from_groups({"demo_taker": {"seed": 2}, "demo_shared": {"rate": 0.25}})
        assert (params.seed, params.rate) == (2, 0.25)
        assert DemoTaker.from_mapping(params.to_dict()) == params
        with pytest.raises(ParamsError, match="demo_taker.rate: set in the shared group"):
            DemoTaker.from_groups({"demo_taker": {"rate": 0.25}})
        with pytest.raises(ParamsError, match="demo_shared.rate: expected a float > 0"):
            DemoTaker.from_groups({"demo_shared": {"rate": -1}})
        with pytest.raises(ParamsError, match="demo_shared: unknown parameter 'stpes'"):
            DemoTaker.from_groups({"demo_shared": {"stpes": 4}})  # the whole group is checked
    finally:
        STAGE_PARAMS.pop("demo_taker", None)
        SHARED_GROUPS.pop("demo_shared", None)


def test_params_yaml_holds_the_pg_group_before_its_first_user():
    from rmteacher.pipeline import param_groups

    groups = list(param_groups())
    assert "pg" in groups and groups.index("pg") == groups.index("rloo_lr") - 1
