"""Stage parameters: one frozen, documented dataclass per DVC stage, validated before compute.

A stage's dataclass subclasses `StageParams`, sets `STAGE` (the params.yaml group and DVC stage
name) and declares its fields with `param(default, doc, ...)`; settings several stages share
(e.g. the policy-gradient regime) form a shared group (`ParamGroup` with `GROUP`), and a stage
takes the ones it uses as fields with `shared(Group, name)`. `from_mapping` rejects unknown keys,
wrong types and out-of-range values with a one-line `ParamsError` naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ruamel.yaml import YAML  # the YAML 1.2 reader DVC uses, so `1e-8` is a float for both
from ruamel.yaml.error import YAMLError


class ParamsError(ValueError):
    """A bad parameter; the message is one line naming the stage and key."""

    def _render_traceback_(self) -> list[str]:
        """How IPython (a notebook run by papermill or by hand) shows it: the one line, no
        frames, so papermill's error and the executed notebook say only what is wrong."""
        return [f"ParamsError: {self}"]


def param(
    default,
    doc: str,
    *,
    ge=None,
    gt=None,
    le=None,
    lt=None,
    choices=None,
    may_be_empty=False,
    reward=None,
):
    """A dataclass field with a default, a doc string and validation bounds. For tuple fields the
    bounds and choices apply to each element, and the list must not be empty unless
    `may_be_empty`. `reward` marks a field whose values name rewards ('spec': a reward spec;
    'rm': a pipeline RM's name or a reward spec; 'name': a pipeline RM's name; 'init': where an
    RM starts, `lm.rm.names.INITS` or a reward spec): the stage's
    `check` passes every such field to the one reward check, `lm.rm.specs.check_reward_fields`."""
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    meta["may_be_empty"] = may_be_empty
    meta["reward"] = reward
    return dataclasses.field(default=default, metadata=meta)


STAGE_PARAMS: dict[str, type[StageParams]] = {}
SHARED_GROUPS: dict[str, type[ParamGroup]] = {}


def shared(group: type[ParamGroup], name: str):
    """A stage field whose value comes from a shared group of params.yaml (`group.GROUP`), with
    that group's default, doc and bounds: a stage receives the shared settings it uses through
    its own params object, and declares exactly those keys (`group.name`) in dvc.yaml."""
    source = next(f for f in dataclasses.fields(group) if f.name == name)
    return dataclasses.field(
        default=source.default, metadata={**source.metadata, "group": group.GROUP}
    )


@dataclass(frozen=True)
class ParamGroup:
    """A documented, validated group of params.yaml. A subclass that sets `GROUP` and is not a
    stage is a shared group (settings several stages take with `shared`)."""

    GROUP: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("GROUP") and not getattr(cls, "STAGE", ""):
            SHARED_GROUPS[cls.GROUP] = cls

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> ParamGroup:
        """Validate a params group and build the dataclass (missing keys take their defaults)."""
        mapping = dict(mapping or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in mapping:
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ParamsError(
                    f"{cls.GROUP}: unknown parameter '{key}'{hint}; allowed: {', '.join(fields)}"
                )
        hints = typing.get_type_hints(cls)
        values = {
            name: _coerce(cls.GROUP, name, hints[name], field.metadata, mapping[name])
            for name, field in fields.items()
            if name in mapping
        }
        instance = cls(**values)
        instance.check()
        return instance

    def check(self) -> None:
        """Cross-field rules; subclasses override and raise ParamsError. Runs in every
        validation, so it stays light (numpy and scipy at most; no torch, no model loading)."""

    def check_models(self) -> None:
        """Rules that need seeded models built with torch (e.g. whether a target is reachable
        from an initial MLP policy). Run by `rmteacher check --deep`, the params_check stage and
        `rmteacher run`, not by a plain `rmteacher check`; subclasses override."""

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return cls().to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def describe(cls) -> list[tuple[str, str, object, str]]:
        """(name, type, default, doc) of the keys of this group in params.yaml (a stage's shared
        fields belong to their own group)."""
        hints = typing.get_type_hints(cls)
        return [
            (f.name, _type_name(hints[f.name]), f.default, f.metadata.get("doc", ""))
            for f in dataclasses.fields(cls)
            if "group" not in f.metadata
        ]


@dataclass(frozen=True)
class StageParams(ParamGroup):
    """Base class of every stage's parameters: its own params.yaml group (`STAGE`, also the DVC
    stage name) and the fields it takes from shared groups (`shared`)."""

    STAGE: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("STAGE"):
            cls.GROUP = cls.STAGE  # the stage's own group, named as the stage
            STAGE_PARAMS[cls.STAGE] = cls

    @classmethod
    def shared_keys(cls) -> dict[str, str]:
        """{field: shared group} of the fields this stage takes from shared groups."""
        return {
            f.name: f.metadata["group"] for f in dataclasses.fields(cls) if "group" in f.metadata
        }

    @classmethod
    def from_groups(cls, data: Mapping[str, Any], path: str | Path = "params.yaml") -> StageParams:
        """This stage's params from a whole params file's groups: its own group (missing: the
        defaults) and, for its shared fields, the shared groups (each validated whole)."""
        group = data.get(cls.STAGE)
        if group is not None and not isinstance(group, dict):
            raise ParamsError(f"{path}: group '{cls.STAGE}' must be a mapping, got {group!r}")
        values = dict(group or {})
        keys = cls.shared_keys()
        for key in values:
            if key in keys:
                raise ParamsError(
                    f"{cls.STAGE}.{key}: set in the shared group '{keys[key]}' "
                    f"({keys[key]}.{key}), not in {cls.STAGE}"
                )
        for name in dict.fromkeys(keys.values()):
            settings = shared_group(name, data, path)
            values |= {key: getattr(settings, key) for key, g in keys.items() if g == name}
        return cls.from_mapping(values)

    def into_groups(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A params file's groups (`data`) with this stage's values written back: its own fields
        in its group, each shared field in its shared group (`from_groups` reads them back)."""
        out = {name: dict(group or {}) for name, group in data.items()}
        keys = self.shared_keys()
        values = self.to_dict()
        out[self.STAGE] = {k: v for k, v in values.items() if k not in keys}
        for key, group in keys.items():
            out.setdefault(group, {})[key] = values[key]
        return out


def shared_group(name: str, data: Mapping[str, Any], path: str | Path = "params.yaml"):
    """The validated shared group `name` of a params file's groups (missing: the defaults)."""
    group = data.get(name)
    if group is not None and not isinstance(group, dict):
        raise ParamsError(f"{path}: group '{name}' must be a mapping, got {group!r}")
    return SHARED_GROUPS[name].from_mapping(group)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _bounds_text(meta: Mapping[str, Any]) -> str:
    parts = [
        f"{op} {meta[key]}"
        for key, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if meta.get(key) is not None
    ]
    return (" " + " and ".join(parts)) if parts else ""


def _scalar(stage: str, key: str, tp: Any, meta: Mapping[str, Any], value: Any, plural: bool):
    """Check one scalar value against its type, bounds and choices; return it converted."""
    noun = {int: "an integer", float: "a float", str: "a string", bool: "a boolean"}[tp]
    if plural:
        noun = {int: "integers", float: "floats", str: "strings", bool: "booleans"}[tp]
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    choices = meta.get("choices")
    if ok and choices is not None and value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ParamsError(f"{stage}.{key}: expected one of {allowed}, got {value!r}")
    if ok and tp in (int, float):
        bounds = (
            ("ge", lambda a, b: a >= b),
            ("gt", lambda a, b: a > b),
            ("le", lambda a, b: a <= b),
            ("lt", lambda a, b: a < b),
        )
        ok = all(meta.get(k) is None or test(value, meta[k]) for k, test in bounds)
    if not ok:
        raise ValueError(noun + _bounds_text(meta))
    return float(value) if tp is float else value


def _coerce(stage: str, key: str, tp: Any, meta: Mapping[str, Any], value: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    try:
        if origin is tuple:
            empty_ok = meta.get("may_be_empty", False)
            if not isinstance(value, list | tuple) or (len(value) == 0 and not empty_ok):
                raise ValueError("non-empty list")
            return tuple(_scalar(stage, key, args[0], meta, v, True) for v in value)
        return _scalar(stage, key, tp, meta, value, False)
    except ParamsError:
        raise
    except ValueError as err:
        what = str(err)
        if origin is tuple and not what.startswith("non-empty"):
            what = f"a list of {what}"
        elif origin is tuple:
            what = f"a non-empty list of {_type_name(args[0])}"
        raise ParamsError(f"{stage}.{key}: expected {what}, got {value!r}") from None


def load_params_file(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such params file")
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ParamsError(f"{path}: cannot read it ({type(err).__name__})") from None
    if data is None:
        raise ParamsError(f"{path}: empty; `rmteacher params --write` writes the defaults")
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of stage groups")
    return data
