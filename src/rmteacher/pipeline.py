"""Running stages and managing parameters for the DVC pipeline.

`run_stage` validates a stage's params.yaml group, then executes notebooks/<stage>.ipynb with
papermill into book/executed/<stage>.ipynb. `apply_profile` overlays profiles/<name>.yaml onto
params.yaml (comments preserved); `write_params` regenerates params.yaml from the defaults.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

from rmteacher.core import paths
from rmteacher.core.params import STAGE_PARAMS, ParamsError, StageParams, load_params_file
from rmteacher.core.stage import STAGE_LOG_ENV, StageOutputs, repo_root

# One module per stage, in pipeline order: each defines the stage's parameter class and `run`.
# Importing them is cheap (heavy libraries are imported inside `run`), so `rmteacher check` is too.
STAGE_MODULES = (
    "rmteacher.theory.experiments.gradient_bound",
    "rmteacher.theory.experiments.escape_time",
    "rmteacher.theory.experiments.accuracy_speed",
    "rmteacher.theory.experiments.policy_dependence",
    "rmteacher.theory.experiments.best_of_n",
    "rmteacher.lm.experiments.lm_pretrain",
    "rmteacher.lm.experiments.lm_gold",
    "rmteacher.lm.experiments.lm_sft",
    "rmteacher.lm.experiments.rm_train",
    "rmteacher.lm.experiments.rm_eval",
    "rmteacher.lm.experiments.rloo_lr",
    "rmteacher.lm.experiments.rloo",
    "rmteacher.lm.experiments.sec41_report",
    "rmteacher.lm.experiments.sec42_policies",
    "rmteacher.lm.experiments.sec42_eval",
    "rmteacher.lm.experiments.sec42_pg",
    "rmteacher.lm.experiments.sec42_report",
    "rmteacher.lm.experiments.alt_normalization",
    "rmteacher.lm.experiments.reward_scaling",
)

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MPLBACKEND": "Agg",
}


class StageFailed(RuntimeError):
    """A stage's notebook raised; the message names the executed notebook to read."""


class StageInterrupted(RuntimeError):
    """Ctrl-C or SIGTERM stopped a stage; its executed notebook and metrics were removed."""


# Set when Ctrl-C or SIGTERM arrives during a stage. Tearing the kernel down then makes nbclient
# log "Kernel died while waiting for execute reply" (through papermill's logger) and asyncio log
# the cell task's unretrieved DeadKernelError, possibly only when the task is collected at exit;
# neither says anything the one interruption line does not, so both loggers drop their records
# from the interrupt on. A real kernel death with no interrupt is still logged.
_INTERRUPTED = threading.Event()
TEARDOWN_LOGGERS = ("papermill", "asyncio")
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # SIGTERM stops a stage like Ctrl-C


def _not_after_interrupt(record: logging.LogRecord) -> bool:
    return not _INTERRUPTED.is_set()


def _interrupt(signum, frame):
    _INTERRUPTED.set()
    raise KeyboardInterrupt


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
HIDDEN_IN_BOOK = ("parameters", "injected-parameters")  # plumbing: the book leaves these out
PROGRESS_MARKS = ("it/s]", "s/it]", "\r")


def _kernel_manager_class():
    """A kernel manager on local IPC sockets instead of TCP ports: nothing listens on the network
    and ipykernel prints no "running over TCP without encryption" warning."""
    import subprocess
    import tempfile

    from jupyter_client.manager import AsyncKernelManager

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            ip = Path(tempfile.gettempdir()) / f"rmteacher-kernel-{os.getpid()}"
            kwargs.setdefault("ip", str(ip))
            super().__init__(**kwargs)

        async def start_kernel(self, **kwargs):
            # the kernel's own log lines (how it was interrupted, that its parent exited) stay
            # out of the stage's output; what a cell raises reaches the executed notebook and the
            # error line. (`start_kernel`, not `_async_start_kernel`: jupyter_client binds the
            # public name to the base class's coroutine, so overriding the private one is a no-op.)
            kwargs.setdefault("stderr", subprocess.DEVNULL)
            return await super().start_kernel(**kwargs)

    return IpcKernelManager


def tidy_executed(path: Path, root: Path) -> None:
    """Make an executed notebook a function of its inputs: drop run timestamps and durations,
    absolute paths and environment, progress-bar widgets and their state, and stderr progress
    lines. Same seed, same notebook bytes; the committed notebooks stay small. The parameters
    cells get the `remove-cell` tag: the book shows the stage's work, not papermill's plumbing
    (the injected values stay in the notebook, and `{glue}` quotes each as `param_<name>`)."""
    nb = json.loads(path.read_text())
    meta = nb.get("metadata", {})
    meta.pop("widgets", None)
    run = meta.get("papermill", {})
    for key in ("start_time", "end_time", "duration", "environment_variables"):
        run.pop(key, None)
    for key in ("input_path", "output_path"):
        if key in run:
            run[key] = os.path.relpath(run[key], root)
    for cell in nb.get("cells", []):
        cell_meta = cell.get("metadata", {})
        tags = cell_meta.get("tags", [])
        if "injected-parameters" in tags:
            cell["id"] = "injected-parameters"  # papermill draws a random id
        if set(tags) & set(HIDDEN_IN_BOOK) and "remove-cell" not in tags:
            cell_meta["tags"] = [*tags, "remove-cell"]
        cell_meta.pop("execution", None)
        for key in ("start_time", "end_time", "duration"):
            cell_meta.get("papermill", {}).pop(key, None)
        if "outputs" in cell:
            cell["outputs"] = [out for out in cell["outputs"] if not _is_progress(out)]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


# an absolute path: a root-level directory followed by at least one more component
ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:home|root|tmp|work|Users|usr|opt|var|private|mnt)/")


def notebook_problems(notebook: dict) -> list[str]:
    """What makes an executed notebook unfit for the book or dependent on the machine that ran
    it: a virtual-environment or absolute path, a stderr stream (a warning or log record that
    belongs in the stage's log), an error, a parameters cell the book would show."""
    found = []
    text = json.dumps(notebook, ensure_ascii=False)
    if "/.venv/" in text or "site-packages" in text:
        found.append("a virtual-environment path")
    found += [f"absolute path {m!r}" for m in sorted(set(ABSOLUTE_PATH.findall(text)))]
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {index}: stderr {''.join(output['text'])[:80]!r}")
            if output.get("output_type") == "error":
                found.append(f"cell {index}: error {output.get('ename')}")
        tags = cell.get("metadata", {}).get("tags", [])
        if set(tags) & set(HIDDEN_IN_BOOK) and "remove-cell" not in tags:
            found.append(f"cell {index}: parameters cell shown in the book")
    return found


def injected_params(notebook: dict) -> dict:
    """The `params` papermill injected into an executed notebook."""
    (cell,) = [
        c
        for c in notebook["cells"]
        if "injected-parameters" in c.get("metadata", {}).get("tags", [])
    ]
    import ast

    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["params"]:
            return ast.literal_eval(node.value)
    raise ValueError("the injected-parameters cell assigns no `params`")


def _is_progress(output: dict) -> bool:
    if WIDGET_MIME in output.get("data", {}):
        return True
    text = output.get("text", "")
    text = "".join(text) if isinstance(text, list) else text
    return (
        output.get("output_type") == "stream"
        and output.get("name") == "stderr"
        and any(mark in text for mark in PROGRESS_MARKS)
    )


def stage_registry() -> dict[str, type[StageParams]]:
    """{stage name: parameter class} in pipeline order (the order of params.yaml)."""
    classes = {}
    for module in STAGE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            raise ParamsError(f"cannot import stage definitions from {module}: {err}") from None
    by_module = {cls.__module__: cls for cls in STAGE_PARAMS.values()}
    for module in STAGE_MODULES:
        cls = by_module[module]
        classes[cls.STAGE] = cls
    return classes


def stage_params(stage: str, path: str | Path = "params.yaml", deep: bool = False) -> StageParams:
    """The validated parameter group of one stage (`deep`: also the checks that build seeded
    models, `StageParams.check_models`)."""
    return _group_params(stage_registry(), load_params_file(path), stage, path, deep)


def _group_params(
    registry: dict[str, type[StageParams]], data: dict, stage: str, path, deep: bool
) -> StageParams:
    if stage not in registry:
        raise ParamsError(f"unknown stage '{stage}'; stages: {', '.join(registry)}")
    if stage not in data:
        raise ParamsError(f"{path}: no group '{stage}' (stages: {', '.join(registry)})")
    group = data[stage]
    if group is not None and not isinstance(group, dict):
        raise ParamsError(f"{path}: group '{stage}' must be a mapping, got {group!r}")
    try:
        params = registry[stage].from_mapping(group)
        if deep:
            params.check_models()
        return params
    except ParamsError:
        raise
    except ValueError as err:  # e.g. a reward spec that names no scorer, model or function
        raise ParamsError(" ".join(str(err).split())) from None


def check_params_file(path: str | Path = "params.yaml", deep: bool = False) -> None:
    """Validate every group; unknown top-level groups are errors too (`deep`: see
    `stage_params`). The file is read once."""
    registry = stage_registry()
    data = load_params_file(path)
    for group in data:
        if group not in registry:
            raise ParamsError(f"{path}: unknown group '{group}'; stages: {', '.join(registry)}")
    for stage in data:
        _group_params(registry, data, stage, path, deep)


def stage_names() -> list[str]:
    return list(stage_registry())


def run_stage(stage: str, params_path: str | Path = "params.yaml") -> float:
    """Validate, then execute one stage's notebook; returns the wall time in seconds."""
    root = repo_root()
    params = stage_params(stage, root / params_path, deep=True)  # ParamsError before compute
    outputs = StageOutputs(stage, root)
    notebook, executed = outputs.notebook_path, outputs.executed_path
    if not notebook.is_file():
        raise ParamsError(f"stage '{stage}' has no notebook at {notebook.relative_to(root)}")
    os.environ.update(OFFLINE_ENV)
    log = paths.stage_log(stage)  # the kernel sends its stderr there (core.stage.open_stage)
    (root / log).parent.mkdir(parents=True, exist_ok=True)
    (root / log).write_text("")
    os.environ[STAGE_LOG_ENV] = str(log)
    executed.parent.mkdir(parents=True, exist_ok=True)
    import papermill

    start = time.perf_counter()
    _INTERRUPTED.clear()
    for name in TEARDOWN_LOGGERS:
        logging.getLogger(name).addFilter(_not_after_interrupt)  # a no-op when already there
    previous = {signum: signal.signal(signum, _interrupt) for signum in INTERRUPT_SIGNALS}
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters={"params": params.to_dict()},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(root),
            kernel_manager_class=_kernel_manager_class(),
        )
    except papermill.PapermillExecutionError as err:
        outputs.metrics_path.unlink(missing_ok=True)  # nothing half-finished looks done
        raise StageFailed(
            f"stage '{stage}' failed ({err.ename}: {err.evalue}); see {executed.relative_to(root)}"
            f" (warnings and library logs: {log})"
        ) from None
    except KeyboardInterrupt:
        executed.unlink(missing_ok=True)  # the kernel is shut down; nothing looks complete
        outputs.metrics_path.unlink(missing_ok=True)
        raise StageInterrupted(
            f"stage '{stage}' interrupted; its executed notebook and metrics were removed"
        ) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    tidy_executed(executed, root)
    return time.perf_counter() - start


UNIT_STAGES = ("rloo",)  # stages whose runs are DVC-cached units (dvc.yaml's matrix stages)


def run_unit(
    stage: str,
    unit: str,
    seed: int,
    rm: str | None = None,
    params_path="params.yaml",
    out: str | None = None,
) -> int:
    """One cached unit of a policy-gradient stage, as dvc.yaml's matrix stages call it
    (`rmteacher pg-run`): validate, then train here, or in `num_processes` processes under
    `accelerate launch` (data parallel; one process per GPU, gloo on CPU); writes to the unit's
    folder, or `out`. Returns the exit code."""
    if stage not in UNIT_STAGES:
        raise ParamsError(f"pg-run: stage '{stage}' has no cached units ({', '.join(UNIT_STAGES)})")
    from rmteacher.lm.experiments import rloo

    params = stage_params(stage, repo_root() / params_path)
    rloo.unit_specs(params, unit, seed, rm)  # ParamsError before anything is loaded
    os.environ.update(OFFLINE_ENV)
    launched = "LOCAL_RANK" in os.environ  # set by accelerate launch in every process
    if params.num_processes > 1 and not launched:
        argv = ["pg-run", stage, unit, "--seed", str(seed), "--params", str(params_path)]
        argv += (["--rm", rm] if rm else []) + (["--out", str(out)] if out else [])
        return _accelerate_launch(params.num_processes, argv)
    accelerator = None
    if launched:
        import torch
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=not torch.cuda.is_available())  # before any model loads
    rloo.run_unit(params, unit, seed, rm, accelerator=accelerator, out=out)
    return 0


def _accelerate_launch(processes: int, argv: list[str]) -> int:
    """`accelerate launch` of `python -m rmteacher ARGV` on `processes` local processes: one per
    GPU where there are GPUs (NCCL), else CPU processes (gloo)."""
    import subprocess
    import sys

    import torch

    gpus = torch.cuda.device_count()
    if gpus and gpus < processes:
        raise ParamsError(f"num_processes={processes} but this machine has {gpus} GPU(s)")
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--num_processes", str(processes), "--num_machines", "1", "--multi_gpu",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "rmteacher", *argv,
    ]  # fmt: skip
    return subprocess.run(command, check=False).returncode


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def render_defaults() -> str:
    """params.yaml text for the default profile: one group per stage, each key documented."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    doc = CommentedMap()
    for index, (stage, cls) in enumerate(stage_registry().items()):
        group = CommentedMap()
        for name, _type, default, text in cls.describe():
            value = default
            if isinstance(default, tuple):
                value = CommentedSeq(default)
                value.fa.set_flow_style()
            group[name] = value
            group.yaml_set_comment_before_after_key(name, before=text, indent=2)
        doc[stage] = group
        head = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        doc.yaml_set_comment_before_after_key(stage, before=("\n" if index else "") + head)
    stream = io.StringIO()
    stream.write("# Default profile. Regenerate with `rmteacher params --write`; override with\n")
    stream.write("# `dvc exp run -S group.key=value` or a profile (`make repro PROFILE=tiny`).\n")
    _yaml().dump(doc, stream)
    return stream.getvalue()


def write_params(path: str | Path = "params.yaml") -> Path:
    path = Path(path)
    path.write_text(render_defaults())
    return path


def params_match_defaults(path: str | Path = "params.yaml") -> bool:
    data = load_params_file(path)
    registry = stage_registry()
    return set(data) == set(registry) and all(
        registry[stage].from_mapping(data[stage]).to_dict() == registry[stage].defaults()
        for stage in registry
    )


def load_profile(name: str, profiles_dir: Path) -> dict[str, dict[str, Any]]:
    """The validated overlay {stage: {key: value}} of profiles/<name>.yaml ('default' = all
    registered defaults)."""
    registry = stage_registry()
    if name == "default":
        return {stage: cls.defaults() for stage, cls in registry.items()}
    path = profiles_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in profiles_dir.glob("*.yaml")) + ["default"]
        raise ParamsError(f"no profile '{name}' ({path}); available: {', '.join(known)}")
    overlay = load_params_file(path)
    for stage, group in overlay.items():
        if stage not in registry:
            raise ParamsError(f"{path}: unknown stage '{stage}'; stages: {', '.join(registry)}")
        if not isinstance(group, dict):
            raise ParamsError(f"{path}: group '{stage}' must be a mapping")
        registry[stage].from_mapping(group)  # type and range check of the overridden keys
    return overlay


def apply_profile(name: str, params_path: str | Path = "params.yaml") -> list[str]:
    """Overlay a profile onto params.yaml in place (comments kept); returns 'stage.key: old -> new'
    for every changed value. The file is untouched if the profile or the result is invalid."""
    params_path = Path(params_path)
    if not params_path.is_file():
        raise ParamsError(f"no such params file: {params_path}")
    try:  # the project holding the params file, else the one we are in
        root = repo_root(params_path.parent)
    except FileNotFoundError:
        try:
            root = repo_root()
        except FileNotFoundError:
            raise ParamsError(
                f"no project (dvc.yaml) at or above {params_path.parent} or here: "
                "profiles/ is not found"
            ) from None
    overlay = load_profile(name, root / "profiles")
    yaml = _yaml()
    doc = yaml.load(params_path.read_text())
    changes = []
    for stage, group in overlay.items():
        target = doc.setdefault(stage, {})
        for key, value in group.items():
            old = target.get(key)
            plain_old = list(old) if isinstance(old, list) else old
            if plain_old != value:
                changes.append(f"{stage}.{key}: {plain_old!r} -> {value!r}")
                target[key] = value
    registry = stage_registry()
    for stage in overlay:
        registry[stage].from_mapping(dict(doc[stage]))
    stream = io.StringIO()
    yaml.dump(doc, stream)
    params_path.write_text(stream.getvalue())
    return changes
