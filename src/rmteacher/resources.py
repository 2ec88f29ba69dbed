"""Resource bounds, checked with the parameters: a configuration that cannot fit in this
machine's memory is refused before any compute, and one far beyond the default profile's work
gets a warning.

Each stage has a closed-form estimate of its peak memory (bytes: the arrays it allocates, the
samples it holds, the models it trains, on top of a kernel with its libraries) and of its work
(an abstract count - runs x steps x samples - only ever compared with the same stage's count at
its defaults). The refusal names the parameter whose return to its default lowers the estimate
most; `rmteacher check --ignore-memory` / `rmteacher run --ignore-memory`, or
RMTEACHER_IGNORE_MEMORY=1 (the way to pass it through `dvc repro`), overrides it.

The estimates are deliberately rough (a factor of two either way): they exist to stop sizes
that are orders of magnitude beyond what can run, before DVC deletes a stage's last good
outputs, not to predict a run. Sizes that may legitimately exceed memory are streamed by the
stages (the Best-of-N Monte Carlo check draws its trials in chunks), so they cost time, which
the warning reports, not memory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
from collections.abc import Callable
from pathlib import Path

from rmteacher.core import paths
from rmteacher.core.params import ParamsError, StageParams

IGNORE_ENV = "RMTEACHER_IGNORE_MEMORY"
FAR_BEYOND = 20.0  # work ratio to the defaults that earns a warning
GB = 1024**3
NUMPY_KERNEL = 0.4 * GB  # a kernel with numpy, scipy, pandas and matplotlib imported
TORCH_KERNEL = 1.2 * GB  # ... and torch, transformers and trl
F8 = 8  # bytes of a float64
ROW = 400  # bytes of one row of a results table (dict, then DataFrame)
TEXT = 300  # bytes of one held text (prompt, response or record)


def _model_dims(folder: Path = paths.BASE_LM) -> dict:
    """Width, depth, vocabulary and context of this world's committed base LM (the shape of
    every policy and RM trained from it); GPT-2 small-world defaults when it is absent."""
    dims = {"n_embd": 64, "n_layer": 4, "vocab_size": 2048, "n_positions": 64}
    try:
        config = json.loads((folder / "config.json").read_text())
        dims.update({k: int(config[k]) for k in dims if isinstance(config.get(k), int)})
    except (OSError, ValueError):
        pass
    return dims


def _training(batch: float, seq: float, n_embd: float, n_layer: float, vocab: float) -> float:
    """Bytes of training one GPT-2-like model: weights, gradients and Adam's moments (16 bytes
    a parameter), activations kept for the backward pass, and the logits' softmax and grad."""
    params = vocab * n_embd + n_layer * 12 * n_embd**2
    activations = batch * seq * n_layer * n_embd * 34 * 4
    logits = batch * seq * vocab * 4 * 3
    return 16 * params + activations + logits


def _world(p, batch: float, seq: float | None = None, models: int = 1) -> float:
    d = _model_dims()
    seq = seq or d["n_positions"]
    return models * _training(batch, seq, d["n_embd"], d["n_layer"], d["vocab_size"])


def _sampling(prompts: float, samples: float) -> float:
    """Bytes of sampling `samples` responses to each prompt in batches: the texts kept, plus a
    batch's logits and cache."""
    d = _model_dims()
    batch = min(prompts * samples, 512)
    return (
        prompts * samples * TEXT
        + batch * d["n_positions"] * (d["vocab_size"] + 4 * d["n_embd"]) * 4
    )


def _n(p, name: str, default: float = 1.0) -> float:
    """A size field's value (lists count their elements); `default` if the stage has none."""
    value = getattr(p, name, default)
    return float(len(value)) if isinstance(value, tuple) else float(value or 0)


# ---- one estimate per stage: (peak bytes, work) ----


def _gradient_bound(p):
    sequences = _n(p, "n_prompts") * _n(p, "vocab_size") ** _n(p, "seq_len")
    grid = _n(p, "n_policies") * _n(p, "shapes") * _n(p, "n_scales")
    params = sequences * (_n(p, "mlp_hidden") + _n(p, "vocab_size"))
    memory = NUMPY_KERNEL + 1.5 * grid * ROW + 20 * sequences * F8 + 4 * params * F8
    memory += 10 * _n(p, "n_outputs") ** 2 * F8
    work = grid * (_n(p, "n_outputs") + sequences) + _n(p, "n_policies") * params
    return memory, work


def _escape_time(p):
    runs = (_n(p, "t_values") + _n(p, "rare_probs")) * _n(p, "lams")
    steps = 200 * (1e-8 / _n(p, "rtol", 1e-8)) ** 0.2 * (1 + abs(_log10(_n(p, "ar_horizon", 1e4))))
    steps *= 1 + _log10(_n(p, "kl_horizon_factor", 20.0))
    sequences = _n(p, "n_prompts") * _n(p, "vocab_size") ** _n(p, "seq_len")
    dense = runs * steps * (_n(p, "n_outputs") + sequences) * 6 * F8
    jac = _n(p, "jacobian_samples") * sequences * (_n(p, "mlp_hidden") + _n(p, "vocab_size")) * F8
    memory = TORCH_KERNEL + dense + 4 * jac
    work = dense / F8 + runs * _n(p, "jacobian_samples") * sequences * _n(p, "mlp_hidden")
    return memory, work


def _accuracy_speed(p):
    runs = 2 * _n(p, "n_rankings") + 3
    steps = 200 * (1 + _log10(_n(p, "horizon_factor", 1e6)))
    memory = NUMPY_KERNEL + runs * (ROW + steps * _n(p, "n_outputs") * 6 * F8)
    return memory, runs * steps * _n(p, "n_outputs")


def _policy_dependence(p):
    runs = 4 * (_n(p, "t_values") + 1)
    memory = NUMPY_KERNEL + runs * 400 * _n(p, "n_outputs") * 6 * F8
    return memory, runs * 400 * _n(p, "n_outputs")


def _best_of_n(p):
    from rmteacher.theory.exact.quantities import MC_CHUNK_CELLS  # the trials drawn at once

    rms = _n(p, "n_random_rms") + 2
    trials = _n(p, "n_mc") * 4 * _n(p, "max_n")  # four checked N, two RMs
    chunk = min(_n(p, "n_mc") * _n(p, "max_n"), MC_CHUNK_CELLS)
    memory = NUMPY_KERNEL + 6 * chunk * F8 + rms * _n(p, "max_n") * ROW
    return memory, 2 * trials + rms * _n(p, "max_n") * 2000


def _lm_pretrain(p):
    d = _n(p, "n_embd"), _n(p, "n_layer"), _n(p, "vocab_size")
    memory = TORCH_KERNEL + _training(_n(p, "batch_size"), _n(p, "block_size"), *d)
    memory += 8 * _n(p, "n_positions") ** 2 * _n(p, "batch_size") * _n(p, "n_layer") * 4
    memory += _n(p, "heldout_passages") * TEXT * 20  # documents held out, whole
    work = _n(p, "epochs") * (d[0] ** 2 * d[1] + d[0] * d[2]) * _n(p, "n_positions")
    return memory, work


def _lm_gold(p):
    d = _n(p, "n_embd"), _n(p, "n_layer"), 2048.0
    texts = _n(p, "n_passages") * (_n(p, "temperatures") + 2)
    seq = _n(p, "max_prompt_words") + _n(p, "continuation_words") + _n(p, "max_new_tokens")
    memory = TORCH_KERNEL + texts * TEXT + _training(_n(p, "batch_size"), 2 * seq, *d)
    memory += _sampling(_n(p, "n_passages"), _n(p, "temperatures"))
    work = texts * _n(p, "epochs") * (d[0] ** 2 * d[1]) + texts * _n(p, "max_new_tokens")
    return memory, work


def _lm_sft(p):
    records = sum(_n(p, k) for k in ("n_rm_prompts", "n_pg_prompts", "n_test_prompts"))
    records += _n(p, "n_sft_examples")
    seq = _n(p, "prompt_words") + _n(p, "continuation_words") + _n(p, "max_new_tokens")
    memory = TORCH_KERNEL + records * TEXT * 2 + _world(p, _n(p, "batch_size"), 2 * seq)
    return memory, _n(p, "n_sft_examples") * _n(p, "epochs") * seq


def _rm_train(p):
    rms = _n(p, "onpolicy_fractions")
    memory = TORCH_KERNEL + 6 * _n(p, "n_pairs") * TEXT + _world(p, 2 * _n(p, "batch_size"))
    memory += _sampling(_n(p, "n_pairs"), 2 + _n(p, "offpolicy_temperatures"))
    work = rms * _n(p, "n_pairs") * _n(p, "epochs") + _n(p, "n_pairs") * 4
    return memory, work


def _rm_eval(p):
    prompts, samples = _n(p, "n_prompts"), _n(p, "n_samples")
    rms = (
        10
        + _n(p, "family_noise") * (_n(p, "family_compression") + _n(p, "family_amplification"))
        + _n(p, "family_between")
    )
    matrices = rms * prompts * samples * F8 * 3
    pairs = prompts * samples * (samples - 1) / 2 * F8 * 4
    memory = TORCH_KERNEL + _sampling(prompts, samples) + matrices + pairs
    return memory, rms * prompts * samples


def _pg(p, runs: float, epochs: float):
    """A policy-gradient stage: one run at a time, each sampling k completions of a step's
    prompts and evaluating on eval_prompts x eval_samples."""
    step = _n(p, "prompts_per_step", 16) * _n(p, "num_generations", 2)
    evals = _n(p, "eval_prompts", 128) * _n(p, "eval_samples", 4)
    memory = TORCH_KERNEL + _world(p, step, models=2) + _sampling(evals, 1)
    work = runs * epochs * 2048 * _n(p, "num_generations", 2)
    work += runs * epochs * _n(p, "evals_per_epoch", 4) * evals
    return memory, work


def _rloo_lr(p):
    return _pg(p, _n(p, "learning_rates") * _n(p, "seeds"), _n(p, "epochs"))


def _rloo(p):
    main = _n(p, "seeds") * (_n(p, "rms") + _n(p, "beta0_rms")) * _n(p, "epochs")
    family = _n(p, "family_seeds") * 12 * _n(p, "family_epochs")
    noclip = _n(p, "noclip_seeds") * _n(p, "noclip_rms") * _n(p, "noclip_epochs")
    memory, work = _pg(p, 1.0, main + family + noclip)
    evals = _n(p, "eval_prompts", 128) * _n(p, "eval_samples", 4)
    noclip_evals = _n(p, "noclip_evals_per_epoch", 1) - _n(p, "evals_per_epoch", 4)
    work += noclip * noclip_evals * evals  # the ablation evaluates on its own schedule
    memory += _n(p, "keep_samples") * _n(p, "eval_prompts") * TEXT * 50
    memory += (_n(p, "num_processes") - 1) * TORCH_KERNEL  # one more kernel per process
    return memory, work


def _bootstrap(p, cells: float):
    """A report that resamples seeds `n_bootstrap` times over `cells` values."""
    memory = NUMPY_KERNEL + 4 * _n(p, "n_bootstrap") * cells * F8
    return memory, _n(p, "n_bootstrap") * cells


def _sec41_report(p):
    return _bootstrap(p, 30 * 5 * 20)


def _sec42_policies(p):
    policies = _n(p, "policies")
    memory = TORCH_KERNEL + _n(p, "n_sft_examples") * TEXT * 2 + _world(p, _n(p, "batch_size"))
    memory += _sampling(_n(p, "profile_prompts"), _n(p, "profile_samples"))
    own = _n(p, "own_rm_policies")  # each own RM: 2 * pairs prompts sampled twice, then trained
    if own:
        memory += 6 * _n(p, "own_rm_pairs") * TEXT + _world(p, 2 * _n(p, "own_rm_batch_size"))
        memory += _sampling(2 * _n(p, "own_rm_pairs"), 2)
    work = policies * (_n(p, "n_sft_examples") * _n(p, "epochs") * 40)
    work += policies * _n(p, "profile_prompts") * _n(p, "profile_samples")
    work += own * _n(p, "own_rm_pairs") * 5
    return memory, work


def _sec42_eval(p):
    prompts, samples, rms = _n(p, "n_prompts"), _n(p, "n_samples"), _n(p, "reward_models") + 1
    memory = TORCH_KERNEL + _sampling(prompts, samples) + 6 * rms * prompts * samples * F8
    memory += prompts * samples * (samples - 1) / 2 * F8 * 4
    work = rms * prompts * samples * (4 + _n(p, "n_bootstrap"))
    return memory, work


def _sec42_pg(p):
    runs = _n(p, "reward_models") * (_n(p, "seeds") + 2 * _n(p, "grpo_seeds")) * 4
    memory, work = _pg(p, runs, _n(p, "epochs"))
    work *= _n(p, "n_train_prompts") / 2048
    return memory, work


def _sec42_report(p):
    return _bootstrap(p, 4 * 7 * 3 * 5)


def _alt_normalization(p):
    memory, work = _pg(p, 7 * _n(p, "seeds"), _n(p, "epochs"))
    boot_memory, boot_work = _bootstrap(p, 7 * _n(p, "seeds"))
    return max(memory, boot_memory), work + boot_work


def _reward_scaling(p):
    return _pg(p, 2 * _n(p, "scales") * _n(p, "seeds"), _n(p, "epochs"))


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else 0.0


ESTIMATES: dict[str, Callable[[StageParams], tuple[float, float]]] = {
    "theory_gradient_bound": _gradient_bound,
    "theory_escape_time": _escape_time,
    "theory_accuracy_speed": _accuracy_speed,
    "theory_policy_dependence": _policy_dependence,
    "theory_best_of_n": _best_of_n,
    "lm_pretrain": _lm_pretrain,
    "lm_gold": _lm_gold,
    "lm_sft": _lm_sft,
    "rm_train": _rm_train,
    "rm_eval": _rm_eval,
    "rloo_lr": _rloo_lr,
    "rloo": _rloo,
    "sec41_report": _sec41_report,
    "sec42_policies": _sec42_policies,
    "sec42_eval": _sec42_eval,
    "sec42_pg": _sec42_pg,
    "sec42_report": _sec42_report,
    "alt_normalization": _alt_normalization,
    "reward_scaling": _reward_scaling,
}


def estimate(params: StageParams) -> tuple[float, float]:
    """(peak bytes, work) of a stage's params; a stage with no estimate counts as a kernel."""
    fn = ESTIMATES.get(params.STAGE)
    return fn(params) if fn else (NUMPY_KERNEL, 1.0)


def driver(params: StageParams, which: int) -> str:
    """The field whose return to its default lowers estimate[which] (0 memory, 1 work) most."""
    base = estimate(params)[which]
    defaults = type(params)()
    best, best_drop = "", 1.0
    for item in dataclasses.fields(params):
        value = getattr(params, item.name)
        if value == getattr(defaults, item.name):
            continue
        try:
            lowered = estimate(
                dataclasses.replace(params, **{item.name: getattr(defaults, item.name)})
            )
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            continue
        drop = base / max(lowered[which], 1e-300)
        if drop > best_drop:
            best, best_drop = item.name, drop
    return best


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory() -> float:
    """Bytes this process may still allocate: the least of the kernel's MemAvailable, the
    cgroup's remaining limit and the address-space / data limits."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(float(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        cap = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = float(Path("/sys/fs/cgroup/memory.current").read_text())
        if cap != "max":
            limits.append(float(cap) - used)
    except (OSError, ValueError):
        pass
    for kind in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
        soft = resource.getrlimit(kind)[0]
        if soft not in (resource.RLIM_INFINITY, -1):
            limits.append(float(soft))
    return min(limits) if limits else float("inf")


def size(n: float) -> str:
    for unit, scale in (("TB", 1024**4), ("GB", GB), ("MB", 1024**2)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n / 1024:.3g} kB"


def check(groups: dict[str, StageParams], ignore_memory: bool = False) -> list[str]:
    """Refuse (ParamsError, one line) the first group whose estimated peak memory exceeds the
    available memory (unless `ignore_memory`); return a warning line for every group whose
    work is FAR_BEYOND its defaults'."""
    available = available_memory()
    warnings = []
    for stage, params in groups.items():
        try:
            memory, work = estimate(params)
        except OverflowError:
            memory = work = float("inf")
        if memory > available and not ignore_memory:
            key = driver(params, 0)
            named = f"{stage}.{key}={getattr(params, key)!r}" if key else stage
            raise ParamsError(
                f"{named}: this stage would need about {size(memory)} of memory, more than the "
                f"{size(available)} available here; lower it, or override with --ignore-memory "
                f"({IGNORE_ENV}=1 under dvc repro)"
            )
        threads = getattr(params, "threads", None)
        if threads is not None and threads > available_cores():
            warnings.append(
                f"warning: {stage}.threads={threads!r}: more torch threads than this machine's "
                f"{available_cores()} cores, so the threads contend and each run slows down"
            )
        default_work = estimate(type(params)())[1]
        ratio = work / default_work if default_work else 1.0
        if ratio > FAR_BEYOND:
            key = driver(params, 1)
            named = f"{stage}.{key}={getattr(params, key)!r}" if key else stage
            warnings.append(
                f"warning: {named}: about {ratio:.3g}x the default profile's work for this stage, "
                "so expect it to run that much longer"
            )
    return warnings
