"""Shared fixtures: a tiny saved policy (tokenizer + 2-layer GPT-2) and a reward model from it.
Under pytest-xdist each worker gets its share of the CPU cores this process may use, so the
workers (and the pipeline subprocesses they start) never oversubscribe the machine. The
README's documented experiments, and the stages each would run, for the tests that hold the
README to them."""

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest


def worker_threads(cores: int, workers: int) -> int:
    """Threads per worker: the usable cores split evenly, at least one."""
    return max(1, cores // max(1, workers))


def pytest_configure(config):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:  # a user's setting wins
        threads = worker_threads(len(os.sched_getaffinity(0)), workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # torch and subprocesses read it at start
        os.environ["MKL_NUM_THREADS"] = str(threads)


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory):
    from rmteacher.lm.world.base_lm import new_gpt2
    from rmteacher.lm.world.corpus import load_documents
    from rmteacher.lm.world.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tiny_policy")
    texts = [d["text"] for d in load_documents()[:3000]]
    tokenizer = train_tokenizer(texts, 400)
    model = new_gpt2(tokenizer, n_embd=32, n_layer=2, n_head=2, n_positions=64, seed=0)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_reward_dir(tiny_policy_dir, tmp_path_factory):
    """A one-output sequence-classification RM initialised from the tiny policy."""
    from transformers import AutoModelForSequenceClassification

    from rmteacher.core.hf import load_tokenizer

    out = tmp_path_factory.mktemp("tiny_rm")
    tokenizer = load_tokenizer(tiny_policy_dir)
    rm = AutoModelForSequenceClassification.from_pretrained(tiny_policy_dir, num_labels=1)
    rm.config.pad_token_id = tokenizer.pad_token_id
    rm.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def tiny_config(family: str, tokenizer, **extra):
    """A 2-layer config of the paper's families: 'gpt_neox' (Pythia) or 'llama' (Llama 3),
    sized to `tokenizer`; `extra` overrides or adds fields."""
    from transformers import GPTNeoXConfig, LlamaConfig

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    common.update(extra)
    if family == "gpt_neox":  # Pythia's architecture: parallel attention + MLP, rotary on 1/4
        return GPTNeoXConfig(**common, rotary_pct=0.25, use_parallel_residual=True)
    return LlamaConfig(**common, num_key_value_heads=1)  # grouped-query attention, as Llama 3


@pytest.fixture(scope="session")
def tiny_hf_config():
    """`tiny_config`, for tests that build stand-ins of the paper's model families."""
    return tiny_config


class ReadmeExperiments:
    """The README's documented experiments and what DVC would run for each.

    An experiment block is a ```bash fence right after `<!-- experiments: KIND -->` (KIND
    `no-cache`: any clone; `pulled`: a clone after `make pull`); each `dvc exp run` line in it
    follows a `# runs: STAGE ...` comment naming every stage it reruns."""

    BLOCK = re.compile(r"<!-- experiments: ([a-z-]+) -->\n```bash\n(.*?)```", re.S)
    RUNNING = re.compile(r"Running stage '([^']+)'")

    def __init__(self, readme: Path):
        self.text = readme.read_text()

    def blocks(self) -> list[tuple[str, str]]:
        return self.BLOCK.findall(self.text)

    def commands(self, kind: str) -> list[tuple[str, set[str]]]:
        """(command, stages the README says it runs) for every experiment of blocks of `kind`."""
        found, named = [], None
        for block_kind, body in self.blocks():
            if block_kind != kind:
                continue
            for line in body.splitlines():
                if line.startswith("# runs:"):
                    named = set(line.removeprefix("# runs:").replace(",", " ").split())
                elif line.startswith("dvc exp run"):
                    assert named, f"README: no '# runs:' comment before {line!r}"
                    found.append((line.split(" #")[0].strip(), named))
                    named = None
        return found

    @staticmethod
    def parse(command: str) -> tuple[dict[str, str], list[str], bool]:
        """The -S overrides, the targets and whether -s (single item) is set; any other option
        fails, so the README never uses one these tests do not model."""
        words = shlex.split(command)
        assert words[:3] == ["dvc", "exp", "run"], command
        overrides, targets, single, rest = {}, [], False, iter(words[3:])
        for word in rest:
            if word in ("-S", "--set-param"):
                key, _, value = next(rest).partition("=")
                overrides[key] = value
            elif word in ("-s", "--single-item"):
                single = True
            elif word.startswith("-"):
                raise AssertionError(
                    f"README experiment uses an option the tests do not model: {word}"
                )
            else:
                targets.append(word)
        return overrides, targets, single

    @classmethod
    def would_run(cls, repo: Path, command: str, env: dict, pulled: bool) -> set[str]:
        """The stages `command` would run in `repo`: DVC's dry run, plus the stages within the
        command's scope downstream of one it lists (a dry run cannot know that a rerun stage's
        outputs change; params_check's stamp does not change with valid values, so it passes
        nothing on). Without the cache, `dvc exp run --dry` itself; with it, the overrides are
        written into params.yaml and `dvc repro --dry` runs in the workspace (`dvc exp run
        --dry` always works in a temporary copy without the cached outputs)."""
        import networkx as nx
        import yaml
        from dvc.repo import Repo

        overrides, targets, single = cls.parse(command)
        params = repo / "params.yaml"
        original = params.read_text()
        if pulled:
            values = yaml.safe_load(original)
            for key, value in overrides.items():
                group, _, name = key.partition(".")
                values[group][name] = yaml.safe_load(value)
            params.write_text(yaml.safe_dump(values, sort_keys=False))
            dry = ["dvc", "repro", "--dry", *(["-s"] if single else []), *targets]
        else:
            dry = ["dvc", "exp", "run", "--dry", *shlex.split(command)[3:]]
        try:
            result = subprocess.run(dry, cwd=repo, env=env, text=True, capture_output=True)
        finally:
            params.write_text(original)
        assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        listed = set(cls.RUNNING.findall(result.stdout))
        with Repo(str(repo)) as dvc:
            graph = dvc.index.graph
            stage = {s.name: s for s in graph}
            if single:
                scope = set(targets)
            elif targets:
                scope = set(targets) | {
                    s.name for t in targets for s in nx.descendants(graph, stage[t])
                }
            else:
                scope = set(stage)
            downstream = {
                s.name
                for name in listed - {"params_check"}
                for s in nx.ancestors(graph, stage[name])  # edges point to dependencies
            }
        return listed | (downstream & scope)


@pytest.fixture(scope="session")
def readme_experiments():
    """The README's documented experiments (`ReadmeExperiments`)."""
    return ReadmeExperiments(Path(__file__).resolve().parents[1] / "README.md")


# --- helpers of the stage-run tests (tests/test_cli.py, tests/test_pipeline.py) ---


def kernels_of_pid(pid: int) -> list[str]:
    """Command lines of running kernels whose connection file names the IPC sockets of `pid`."""
    found = []
    # -ww: never cut at the terminal's width (pytest sets COLUMNS), or no kernel is ever found
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    for line in ps.splitlines():
        if "ipykernel_launcher" not in line or "-f " not in line:
            continue
        connection = Path(line.split("-f ", 1)[1].split()[0])
        try:
            if f"rmteacher-kernel-{pid}" in connection.read_text():
                found.append(line)
        except OSError:  # removed by the time it is read: that kernel is gone
            continue
    return found


def kernel_pids_of(pid: int) -> list[int]:
    """Process ids of the running kernels of the `rmteacher run` with process id `pid`."""
    ps = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    lines = {line.split(None, 1)[1]: int(line.split()[0]) for line in ps.splitlines() if line}
    return [lines[command] for command in kernels_of_pid(pid) if command in lines]


def glued_value(notebook_path, name):
    """The text a notebook glued under `name`."""
    nb = json.loads(Path(notebook_path).read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if out.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return data.get("application/papermill.record/text/plain")
    raise KeyError(name)


@pytest.fixture
def kernels_of():
    """kernels_of(pid): command lines of the running kernels of `rmteacher run` process `pid`."""
    return kernels_of_pid


@pytest.fixture
def kernel_pids():
    """kernel_pids(pid): process ids of those kernels."""
    return kernel_pids_of


@pytest.fixture
def glued():
    """glued(notebook, name): the text an executed notebook glued under `name`."""
    return glued_value
