"""Running stages and managing parameters for the DVC pipeline.

`run_stage` validates a stage's params.yaml group, then executes notebooks/<stage>.ipynb with
papermill into book/executed/<stage>.ipynb. `apply_profile` overlays profiles/<name>.yaml onto
params.yaml (comments preserved); `write_params` regenerates params.yaml from the defaults.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from rmteacher import resources
from rmteacher.core import lifeline, paths, progress, runs
from rmteacher.core.hf import check_model_files, model_folders
from rmteacher.core.params import (
    SHARED_GROUPS,
    STAGE_PARAMS,
    ParamGroup,
    ParamsError,
    StageParams,
    load_params_file,
    shared_group,
)
from rmteacher.core.stage import STAGE_LOG_ENV, StageOutputs, parameters_cell, repo_root
from rmteacher.lm.rm.specs import check_pipeline_rm_names

# One parameter module per stage, in pipeline order (each stage's `run` is in
# rmteacher.stages.<track>.<module>). They import nothing heavy, so `rmteacher check` is cheap.
STAGE_MODULES = (
    "rmteacher.stages.theory.params.gradient_bound",
    "rmteacher.stages.theory.params.escape_time",
    "rmteacher.stages.theory.params.accuracy_speed",
    "rmteacher.stages.theory.params.policy_dependence",
    "rmteacher.stages.theory.params.best_of_n",
    "rmteacher.stages.lm.params.lm_pretrain",
    "rmteacher.stages.lm.params.lm_gold",
    "rmteacher.stages.lm.params.lm_sft",
    "rmteacher.stages.lm.params.rm_train",
    "rmteacher.stages.lm.params.rm_eval",
    "rmteacher.stages.lm.params.rloo_lr",
    "rmteacher.stages.lm.params.rloo",
    "rmteacher.stages.lm.params.sec41_report",
    "rmteacher.stages.lm.params.sec42_policies",
    "rmteacher.stages.lm.params.sec42_eval",
    "rmteacher.stages.lm.params.sec42_pg",
    "rmteacher.stages.lm.params.sec42_report",
    "rmteacher.stages.lm.params.alt_normalization",
    "rmteacher.stages.lm.params.reward_scaling",
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
    """Drops teardown records after an interrupt, and nbclient's "Kernel died ..." always: the
    stage's own error line says that its kernel died."""
    return not _INTERRUPTED.is_set() and not record.getMessage().startswith("Kernel died")


def _interrupt(signum, frame):
    """Every Ctrl-C, SIGTERM or parent-death signal raises (should library code swallow one, the
    next still stops the stage); only the stage's own cleanup ignores them (see run_stage)."""
    _INTERRUPTED.set()
    raise KeyboardInterrupt


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
HIDDEN_IN_BOOK = ("parameters", "injected-parameters")  # plumbing: the book leaves these out
PROGRESS_MARKS = ("it/s]", "s/it]", "\r")


def _kernel_manager_class():
    """A kernel manager on local IPC sockets instead of TCP ports: nothing listens on the network
    and ipykernel prints no "running over TCP without encryption" warning."""
    # jupyter_client (~0.2 s): only when a stage runs, not for `rmteacher check`
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


def stage_params(
    stage: str,
    path: str | Path = "params.yaml",
    deep: bool = False,
    overrides: dict[str, Any] | None = None,
) -> StageParams:
    """The validated parameter group of one stage (`deep`: also the checks that build seeded
    models, `StageParams.check_models`; `overrides`: keys set on top of the file's group, as
    `rmteacher run --set` does)."""
    data = load_params_file(path)
    registry = stage_registry()
    if overrides and stage in data and stage in registry:
        shared = registry[stage].shared_keys()  # e.g. a policy-gradient setting lives in `pg`
        data = {name: dict(group or {}) for name, group in data.items()}
        for key, value in overrides.items():
            data.setdefault(shared.get(key, stage), {})[key] = value
    return _group_params(registry, data, stage, path, deep)


def _group_params(
    registry: dict[str, type[StageParams]], data: dict, stage: str, path, deep: bool
) -> StageParams:
    if stage not in registry:
        raise ParamsError(f"unknown stage '{stage}'; stages: {', '.join(registry)}")
    if stage not in data:
        raise ParamsError(
            f"{path}: no group '{stage}'; `rmteacher params --write` writes every group's defaults"
        )
    group = data[stage]
    if group is not None and not isinstance(group, dict):
        raise ParamsError(f"{path}: group '{stage}' must be a mapping, got {group!r}")
    try:
        params = registry[stage].from_groups(data, path)
        if deep:
            params.check_models()
        return params
    except ParamsError:
        raise
    except ValueError as err:  # e.g. a reward spec that names no scorer, model or function
        raise ParamsError(" ".join(str(err).split())) from None


def check_params_file(
    path: str | Path = "params.yaml", deep: bool = False
) -> dict[str, StageParams]:
    """Validate every group; unknown and missing groups are errors too (`deep`: see
    `stage_params`). The file is read once. Returns {stage: validated params}."""
    registry = stage_registry()
    data = load_params_file(path)
    for group in data:
        if group not in registry and group not in SHARED_GROUPS:
            raise ParamsError(f"{path}: unknown group '{group}'; {_known(registry)}")
    missing = [stage for stage in registry if stage not in data]
    if missing:
        raise ParamsError(
            f"{path}: no group {', '.join(repr(m) for m in missing)} (dvc.yaml reads every "
            "group); `rmteacher params --write` writes the defaults"
        )
    for group in SHARED_GROUPS:
        shared_group(group, data, path)  # each shared group is validated whole
    groups = {
        stage: _group_params(registry, data, stage, path, deep)
        for stage in data
        if stage in registry
    }
    check_across_groups(groups)
    return groups


def _known(registry) -> str:
    return f"stages: {', '.join(registry)}; shared groups: {', '.join(SHARED_GROUPS)}"


def check_across_groups(groups: dict[str, StageParams]) -> None:
    """Rules that join groups: every pipeline RM a reward field names is built by rm_train and
    rm_eval; sec42_pg trains only on RMs sec42_eval evaluated."""
    check_pipeline_rm_names(groups)
    if "sec42_pg" in groups and "sec42_eval" in groups:
        evaluated = groups["sec42_eval"].reward_models
        missing = [rm for rm in groups["sec42_pg"].reward_models if rm not in evaluated]
        if missing:
            raise ParamsError(
                f"sec42_pg.reward_models: {', '.join(missing)} not in sec42_eval.reward_models "
                "(the policy-gradient runs are normalised with sec42_eval's measurements)"
            )


def stage_names() -> list[str]:
    return list(stage_registry())


def parse_assignments(assignments: list[str] | None) -> dict[str, Any]:
    """`--set key=value` pairs as {key: value}, each value read as YAML (as `dvc exp run -S`
    reads it: `3`, `1e-3`, `[0, 1]`, `null`, `vader`)."""

    out = {}
    for text in assignments or []:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"--set: expected KEY=VALUE, got '{text}'")
        try:
            out[key.strip()] = YAML(typ="safe", pure=True).load(value)
        except YAMLError as err:
            first = str(err).splitlines()[0]
            raise ParamsError(f"--set {key.strip()}: not a YAML value ({first})") from None
    return out


class StageRun:
    """Where one `rmteacher run` writes: in place when DVC runs it, else a scratch folder."""

    def __init__(self, stage: str, root: Path, folder: Path | None):
        self.stage, self.root, self.folder = stage, root, folder
        self.outputs = StageOutputs(stage, folder or root)

    def remove_partial(self) -> str:
        """Remove what would look done; returns what was removed, for the message."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            return f"its scratch folder {runs.describe(self.folder, self.root)} was removed"
        self.outputs.executed_path.unlink(missing_ok=True)
        self.outputs.metrics_path.unlink(missing_ok=True)
        return "its executed notebook and metrics were removed"


def check_stage_inputs(stage: str, root: Path) -> None:
    """Every saved model among the stage's declared inputs (dvc.yaml deps) loads: its config,
    tokenizer and weight headers parse (one line naming the folder, before any compute)."""
    for dep in runs.stage_paths(root, stage, "deps"):
        for folder in model_folders(root / dep):
            try:
                check_model_files(folder, f"stage {stage}")
            except ValueError as err:
                raise ParamsError(str(err)) from None


def run_stage(
    stage: str,
    params_path: str | Path = "params.yaml",
    overrides: dict[str, Any] | None = None,
    ignore_memory: bool = False,
) -> tuple[float, Path | None]:
    """Validate, then execute one stage's notebook; returns the wall time in seconds and the
    scratch folder it wrote to (None when DVC runs it and it wrote DVC's outputs).

    Ctrl-C, SIGTERM or the death of the dvc that runs it stop it at any moment (the deep check,
    kernel start, a cell, the tidying) with one line: the kernel is shut down and what would look
    done is removed (StageInterrupted)."""
    root = repo_root()
    notebook = StageOutputs(stage, root).notebook_path
    cells = 0
    if notebook.is_file():
        cells = 1 + sum(
            c.get("cell_type") == "code" for c in json.loads(notebook.read_text())["cells"]
        )
    channel = Path(tempfile.mkstemp(prefix=f"rmteacher-progress-{stage}-", suffix=".jsonl")[1])
    printer = progress.Printer(stage, channel, cells).start()
    printer.phase = "checking the params and the models it reads"
    _INTERRUPTED.clear()
    for name in TEARDOWN_LOGGERS:
        logging.getLogger(name).addFilter(_not_after_interrupt)  # a no-op when already there
    previous = {signum: signal.signal(signum, _interrupt) for signum in INTERRUPT_SIGNALS}
    run = None
    try:
        params = stage_params(stage, root / params_path, deep=True, overrides=overrides)
        for warning in check_resources({stage: params}, ignore_memory=ignore_memory):
            print(warning, file=sys.stderr)
        if not notebook.is_file():
            raise ParamsError(f"stage '{stage}' has no notebook at {notebook.relative_to(root)}")
        check_stage_inputs(stage, root)
        in_place = runs.writes_in_place(stage, root)
        if overrides and runs.under_dvc(stage, root):
            raise ParamsError(
                "--set: DVC runs this stage from params.yaml; change the file or use "
                "`dvc exp run -S` instead"
            )
        folder = None
        if not in_place:
            data = params.into_groups(load_params_file(root / params_path))
            folder = runs.make_scratch(root, stage, data[stage], data)
        run = StageRun(stage, root, folder)
        seconds = _execute(run, params, printer, channel)
        if _INTERRUPTED.is_set():  # an interrupt some library caught and dropped still stops it
            raise KeyboardInterrupt
        return seconds, folder
    except KeyboardInterrupt:
        for signum in INTERRUPT_SIGNALS:  # a second Ctrl-C does not cut the cleanup short
            signal.signal(signum, signal.SIG_IGN)
        stop_children()  # a kernel whose shutdown was cut short dies with its stage
        removed = run.remove_partial() if run else "nothing was written"
        why = lifeline.lost_parent()
        raise StageInterrupted(
            f"stage '{stage}' " + (f"stopped: {why}" if why else "interrupted") + f"; {removed}"
        ) from None
    finally:
        printer.stop()
        channel.unlink(missing_ok=True)
        os.environ.pop(progress.CHANNEL, None)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _execute(run: StageRun, params: StageParams, printer, channel: Path) -> float:
    """papermill: the notebook into the run's executed notebook, with the validated group."""
    outputs, where = run.outputs, run.folder or run.root
    executed = outputs.executed_path
    os.environ.update(OFFLINE_ENV)
    log = paths.stage_log(run.stage)  # the kernel sends its stderr there (core.stage.open_stage)
    (where / log).parent.mkdir(parents=True, exist_ok=True)
    (where / log).write_text("")
    os.environ[STAGE_LOG_ENV] = str(log)
    os.environ[progress.CHANNEL] = str(channel)
    executed.parent.mkdir(parents=True, exist_ok=True)
    printer.phase = "starting the kernel"
    import papermill  # ~0.4 s: only when a stage runs, not for `rmteacher check`
    from nbclient.exceptions import DeadKernelError

    start = time.perf_counter()
    printer.phase = "running the notebook"
    try:
        papermill.execute_notebook(
            str(outputs.notebook_path),
            str(executed),
            parameters={"params": params.to_dict()},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(where),
            kernel_manager_class=_kernel_manager_class(),
        )
    except papermill.PapermillExecutionError as err:
        outputs.metrics_path.unlink(missing_ok=True)  # nothing half-finished looks done
        raise StageFailed(
            f"stage '{run.stage}' failed ({err.ename}: {err.evalue}); see "
            f"{runs.describe(executed, run.root).rstrip('/')} (warnings and library logs: {log})"
        ) from None
    except DeadKernelError:
        if _INTERRUPTED.is_set():
            raise KeyboardInterrupt from None
        removed = run.remove_partial()
        raise StageFailed(
            f"stage '{run.stage}' failed: its kernel died (killed from outside, often by the "
            f"system for lack of memory; `rmteacher check` estimates it); {removed}"
        ) from None
    printer.phase = "tidying the executed notebook"
    tidy_executed(executed, where)
    return time.perf_counter() - start


def stop_children(grace: float = 2.0) -> None:
    """Stop and reap every child process of this one (the stage's kernel, if papermill's own
    shutdown did not finish): SIGTERM, then SIGKILL after `grace` seconds. Linux (/proc) only."""
    me = os.getpid()
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            children.append(int(stat.parent.name))
    deadline = time.monotonic() + grace
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in children:
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def check_resources(groups: dict[str, StageParams], ignore_memory: bool = False) -> list[str]:
    """Refuse (ParamsError) a group whose estimated peak memory exceeds this machine's available
    memory, unless `ignore_memory` (or RMTEACHER_IGNORE_MEMORY=1); return warnings for groups
    whose estimated work is far beyond the default profile's."""
    ignore = ignore_memory or os.environ.get(resources.IGNORE_ENV, "") not in ("", "0")
    return resources.check(groups, ignore_memory=ignore)


UNIT_STAGES = ("rloo", "sec42_pg")  # stages whose runs are DVC-cached units (matrix stages)


def run_unit(
    stage: str,
    unit: str,
    seed: int,
    rms: list[str] | None = None,
    params_path="params.yaml",
    out: str | None = None,
) -> int:
    """One cached unit of a policy-gradient stage, as dvc.yaml's matrix stages call it
    (`rmteacher pg-run`): validate, then train here, or in `num_processes` processes under
    `accelerate launch` (data parallel; one process per GPU, gloo on CPU); writes to the unit's
    folder, or `out`. `rms`: only the unit's runs on these RMs (a trial run). Returns the exit
    code."""
    if stage not in UNIT_STAGES:
        raise ParamsError(f"pg-run: stage '{stage}' has no cached units ({', '.join(UNIT_STAGES)})")
    # torch (~1.3 s): the stage module loads only for pg-run, not `rmteacher check`
    module = importlib.import_module(f"rmteacher.stages.lm.{stage}")
    params = stage_params(stage, repo_root() / params_path)
    module.unit_specs(params, unit, seed, rms)  # ParamsError before anything is loaded
    os.environ.update(OFFLINE_ENV)
    launched = "LOCAL_RANK" in os.environ  # set by accelerate launch in every process
    if getattr(params, "num_processes", 1) > 1 and not launched:  # sec42_pg: one process
        argv = ["pg-run", stage, unit, "--seed", str(seed), "--params", str(params_path)]
        argv += [a for rm in rms or [] for a in ("--rm", rm)]
        argv += ["--out", str(out)] if out else []
        return _accelerate_launch(params.num_processes, argv)
    accelerator = None
    if launched:
        import torch  # loaded by the stage module above already
        from accelerate import Accelerator  # ~1.3 s: only in processes accelerate launched

        accelerator = Accelerator(cpu=not torch.cuda.is_available())  # before any model loads
    module.run_unit(params, unit, seed, rms, accelerator=accelerator, out=out)
    return 0


def _accelerate_launch(processes: int, argv: list[str]) -> int:
    """`accelerate launch` of `python -m rmteacher ARGV` on `processes` local processes: one per
    GPU where there are GPUs (NCCL), else CPU processes (gloo)."""
    import torch  # ~1 s: only for pg-run, not `rmteacher check`

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
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def param_groups() -> dict[str, type[ParamGroup]]:
    """Every group of params.yaml in file order: the stages in pipeline order, each shared group
    (e.g. `pg`) just before the first stage that takes settings from it."""
    groups: dict[str, type[ParamGroup]] = {}
    for stage, cls in stage_registry().items():
        for name in dict.fromkeys(cls.shared_keys().values()):
            groups.setdefault(name, SHARED_GROUPS[name])
        groups[stage] = cls
    return groups


def group_defaults(cls: type[ParamGroup]) -> dict[str, Any]:
    """The defaults of the keys a group holds in params.yaml (a stage's shared fields are its
    shared groups' keys)."""
    own = {name for name, *_ in cls.describe()}
    return {key: value for key, value in cls.defaults().items() if key in own}


def check_group(groups: dict, name: str, mapping, path) -> None:
    """Validate one group of a params file or profile on its own (a stage group may not set its
    shared fields: they belong to the shared group)."""
    if name not in groups:
        raise ParamsError(f"{path}: unknown stage '{name}'; {_known(stage_registry())}")
    if not isinstance(mapping, dict):
        raise ParamsError(f"{path}: group '{name}' must be a mapping")
    cls = groups[name]
    if issubclass(cls, StageParams):
        cls.from_groups({name: mapping}, path)
    else:
        cls.from_mapping(mapping)


def render_defaults() -> str:
    """params.yaml text for the default profile: one group per stage and per shared group, each
    key documented."""
    doc = CommentedMap()
    for index, (name, cls) in enumerate(param_groups().items()):
        group = CommentedMap()
        for key, _type, default, text in cls.describe():
            value = default
            if isinstance(default, tuple):
                value = CommentedSeq(default)
                value.fa.set_flow_style()
            group[key] = value
            group.yaml_set_comment_before_after_key(key, before=text, indent=2)
        doc[name] = group
        head = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        doc.yaml_set_comment_before_after_key(name, before=("\n" if index else "") + head)
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
    groups = param_groups()
    if set(data) != set(groups):
        return False
    for name in groups:
        check_group(groups, name, data[name] or {}, path)
    return all(
        {**group_defaults(cls), **(data[name] or {})} == group_defaults(cls)
        for name, cls in groups.items()
    )


def _parameters_cell_sources() -> dict[Path, list[str]]:
    """{notebook: the source lines its parameters cell should hold}, from the dataclasses."""
    root = repo_root()
    out = {}
    for stage, cls in stage_registry().items():
        text = parameters_cell(cls)
        lines = text.splitlines(keepends=True)
        out[StageOutputs(stage, root).notebook_path] = lines
    return out


def _tagged_parameters_cell(nb: dict) -> dict | None:
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    return tagged[0] if len(tagged) == 1 else None


def write_parameters_cells() -> list[Path]:
    """Rewrite every stage notebook's parameters cell from its dataclass (nothing else of the
    notebook changes); returns the notebooks rewritten."""
    written = []
    for path, lines in _parameters_cell_sources().items():
        if not path.is_file():
            continue
        nb = json.loads(path.read_text())
        cell = _tagged_parameters_cell(nb)
        if cell is None:
            raise ParamsError(f"{path}: expected exactly one cell tagged 'parameters'")
        if cell["source"] != lines:
            cell["source"] = lines
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            written.append(path)
    return written


def stale_parameters_cells() -> list[str]:
    """Notebooks whose parameters cell differs from what their dataclass generates."""
    stale = []
    for path, lines in _parameters_cell_sources().items():
        cell = _tagged_parameters_cell(json.loads(path.read_text())) if path.is_file() else None
        if cell is None or cell["source"] != lines:
            stale.append(str(path.relative_to(repo_root())))
    return stale


def load_profile(name: str, profiles_dir: Path) -> dict[str, dict[str, Any]]:
    """The validated overlay {group: {key: value}} of profiles/<name>.yaml ('default' = all
    registered defaults)."""
    groups = param_groups()
    if name == "default":
        return {group: group_defaults(cls) for group, cls in groups.items()}
    path = profiles_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in profiles_dir.glob("*.yaml")) + ["default"]
        raise ParamsError(f"no profile '{name}' ({path}); available: {', '.join(known)}")
    overlay = load_params_file(path)
    for group, mapping in overlay.items():
        check_group(groups, group, mapping, path)  # type and range check of the overridden keys
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
    groups = param_groups()
    for group in overlay:
        check_group(groups, group, dict(doc[group]), params_path)
    stream = io.StringIO()
    yaml.dump(doc, stream)
    params_path.write_text(stream.getvalue())
    return changes
