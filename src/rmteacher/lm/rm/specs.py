"""The one check of every parameter that names a reward, wherever it sits (any stage, single or
list field, any profile): a stage whose fields are declared with `param(..., reward=KIND)` calls
`check_reward_fields` from its `check` (so every validation of its group runs it), and
`check_pipeline_rm_names` checks the names of the pipeline's own RMs against the groups that
train or build them.

Kinds: 'spec' - a reward spec (`rewards.registry.check_reward_spec`: a registered scorer,
`module:function`, a model folder whose files are checked, or online a Hub id); 'rm' - the name
of one of the pipeline's RMs (a Section 4.1 mix, a control, a controlled-family member) or else a
reward spec; 'name' - a pipeline RM's name only; 'init' - where an RM starts (`names.INITS`:
the initial policy, r_G, r_G's body) or else a reward spec (a model directory).
"""

from __future__ import annotations

import dataclasses
import re

from rmteacher.core.params import ParamsError, StageParams
from rmteacher.lm.rm.names import CONTROLS, INITS
from rmteacher.lm.rm.suite import family_grid, family_name
from rmteacher.rewards.registry import check_reward_spec

PIPELINE_RM = re.compile(
    r"rm_onpolicy_\d+|rm_own_\w+|fam_n[0-9.e+-]+_c[0-9.e+-]+(_a[0-9.e+-]+)?(_b[0-9.e+-]+)?|"
    + "|".join(CONTROLS)
)


def is_pipeline_rm(name: str) -> bool:
    """Whether `name` has the form of an RM the pipeline builds (rm_train's mixes, rm_eval's
    controls and family members, sec42_policies' own RMs)."""
    return isinstance(name, str) and PIPELINE_RM.fullmatch(name) is not None


def check_reward_field(params: StageParams, key: str, kind: str) -> None:
    """Every value of a reward field: one ParamsError line naming the stage, key and value."""
    value = getattr(params, key)
    what = f"{params.STAGE}.{key}"
    for spec in value if isinstance(value, tuple) else (value,):
        if kind in ("rm", "name") and is_pipeline_rm(spec) or kind == "init" and spec in INITS:
            continue
        if kind == "name":
            raise ParamsError(
                f"{what}: '{spec}' is not one of the pipeline's RMs (rm_onpolicy_<percent>, "
                f"fam_n<noise>_c<floor>[_a<ceiling>][_b<lambda>], rm_own_<policy>, "
                f"{', '.join(CONTROLS)})"
            )

        try:
            check_reward_spec(spec, f"{what} ({spec})" if isinstance(value, tuple) else what)
        except ValueError as err:
            raise ParamsError(" ".join(str(err).split())) from None


def check_reward_fields(params: StageParams) -> None:
    """Every field of `params` declared with `reward=KIND`."""

    for item in dataclasses.fields(params):
        if item.metadata.get("reward"):
            check_reward_field(params, item.name, item.metadata["reward"])


# Fields that list pipeline RMs only, checked by their stage against its own list of names (so
# they need no reward check), whose names must still be ones these params build.
PIPELINE_RM_FIELDS = {"rloo": ("rms", "beta0_rms", "noclip_rms")}


def pipeline_rm_names(groups: dict[str, StageParams]) -> set[str] | None:
    """The RM names the pipeline builds under these groups: rm_train's mixes, the controls,
    rm_eval's family and sec42_policies' own RMs; None when a group that decides them is
    missing."""
    if "rm_train" not in groups or "rm_eval" not in groups:
        return None

    rm_train, rm_eval = groups["rm_train"], groups["rm_eval"]
    mixes = {f"rm_onpolicy_{round(100 * f)}" for f in rm_train.onpolicy_fractions}
    family = {family_name(*member) for member in family_grid(rm_eval)}
    policies = groups.get("sec42_policies")
    own = {f"rm_own_{p}" for p in policies.own_rm_policies} if policies is not None else set()
    return mixes | family | own | set(CONTROLS)


def check_pipeline_rm_names(groups: dict[str, StageParams]) -> None:
    """Every pipeline-RM name in a reward field is one these groups build (one line naming the
    field and the built RMs)."""
    built = pipeline_rm_names(groups)
    if built is None:
        return

    for stage, params in groups.items():
        for item in dataclasses.fields(params):
            named = item.name in PIPELINE_RM_FIELDS.get(stage, ())
            if item.metadata.get("reward") not in ("rm", "name") and not named:
                continue
            value = getattr(params, item.name)
            for name in value if isinstance(value, tuple) else (value,):
                if is_pipeline_rm(name) and name not in built:
                    raise ParamsError(
                        f"{stage}.{item.name}: '{name}' is not an RM these params build "
                        f"({', '.join(sorted(built))})"
                    )
