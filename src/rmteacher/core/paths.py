"""Every file location of the pipeline, in one place. Paths are relative to the repository root
(stages run there) and derive from stage names only, never from timestamps.

Stages exchange data only through these declared DVC outputs (`artifacts/`, `metrics/`, the
committed corpus and base LM); `plots/<stage>/` holds plot data for `dvc plots` and is never read
back by a stage.
"""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path("artifacts")
METRICS = Path("metrics")
PLOTS = Path("plots")
FIGURES = Path("book/figures")
EXECUTED = Path("book/executed")
NOTEBOOKS = Path("notebooks")

# theory_accuracy_speed: Theorem 2's construction, which theory_best_of_n reads
THEORY_CONSTRUCTION = ARTIFACTS / "theory_accuracy_speed" / "construction.json"

# lm_pretrain (committed to git, so a fresh clone skips the stage)
CORPUS = Path("data/corpus/corpus.jsonl.gz")
BASE_LM = Path("models/base_lm")
HELDOUT_DOCUMENTS = BASE_LM / "heldout_documents.json"

# lm_gold (committed to git as well): the ground-truth reward model r_G
GOLD_RM = Path("models/gold_rm")

# lm_sft
SFT = ARTIFACTS / "lm_sft"
SFT_POLICY = SFT / "policy"
WORLD = SFT / "world.json"
SFT_RECIPE = SFT / "recipe.json"  # passage format and lengths of the SFT, for sec42_policies

# rm_train
RM_TRAIN = ARTIFACTS / "rm_train"
RM_MANIFEST = RM_TRAIN / "manifest.json"

# rm_eval
RM_EVAL = ARTIFACTS / "rm_eval"
RM_TABLE = RM_EVAL / "rm_table.csv"  # Table 1, every column (metrics/rm_table.csv keeps four)
RM_TABLE_METRICS = METRICS / "rm_table.csv"
CHECKS = RM_EVAL / "checks.csv"  # the manipulation checks, computed before any policy gradient
NORMALIZATIONS = RM_EVAL / "normalization.json"
SUITE = RM_EVAL / "suite.json"  # the controls and the controlled family, as rm_eval built them
EVAL_SAMPLING = RM_EVAL / "sampling.json"  # seed and samples per prompt of rm_eval's samples

# rloo_lr, rloo and sec41_report
RLOO_LR = ARTIFACTS / "rloo_lr"
LR_CHOICE = RLOO_LR / "choice.json"
RLOO = ARTIFACTS / "rloo"
RLOO_RUNS = ARTIFACTS / "rloo_runs"  # one folder per cached unit (dvc.yaml's rloo_* matrix stages)
RLOO_SAMPLES = RLOO / "samples.csv"
CORRELATIONS = METRICS / "correlations.csv"

# alt_normalization: per run, the increases at the correlation epoch under the other
# normalisation (sec41_report's robustness gate reads them)
ALT_NORMALIZATION = ARTIFACTS / "alt_normalization"
ALT_NORMALIZATION_INCREASES = ALT_NORMALIZATION / "increases.csv"

# Section 4.2
SEC42_POLICIES = ARTIFACTS / "sec42_policies"
POLICY_LIST = SEC42_POLICIES / "policies.json"  # the Section 4.2 policies, in order
SEC42_EVAL = ARTIFACTS / "sec42_eval"
POLICY_RM_EVAL = SEC42_EVAL / "policy_rm_eval.csv"
REPORT_EXAMPLE = SEC42_EVAL / "report_example"
SEC42_PG = ARTIFACTS / "sec42_pg"
POLICY_RM_TABLE = METRICS / "policy_rm_table.csv"

# `rmteacher report` writes under report/<policy> unless --out is given
REPORTS = Path("report")


def candidates(split: str) -> Path:
    """rm_train's candidate preference pairs of one prompt split ('rm_train' or 'test')."""
    return RM_TRAIN / f"candidates_{split}.jsonl"


def reward_model(name: str) -> Path:
    """Directory of a trained proxy RM."""
    return RM_TRAIN / name


def reward_matrix(name: str, eval_dir: Path = RM_EVAL) -> Path:
    """Raw [prompts, samples] rewards of one RM on the initial policy's samples."""
    return eval_dir / f"rewards_{name}.npy"


def curves(stage: str) -> Path:
    """Evaluation curves of a policy-gradient stage's runs (one row per run and evaluation)."""
    return ARTIFACTS / stage / "curves.csv"


def train_logs(stage: str) -> Path:
    """Per-step trl logs of a policy-gradient stage's runs."""
    return ARTIFACTS / stage / "train_logs.csv"


def timings(name: str) -> Path:
    """Untracked wall-clock timings of a policy-gradient stage or unit (they differ every run)."""
    return ARTIFACTS / "timings" / f"{name}.csv"


def stage_log(stage: str) -> Path:
    """Untracked log of a stage's run: the warnings and library log records its notebook's
    kernel wrote to stderr (they name this machine's paths, so they stay out of the notebook)."""
    return ARTIFACTS / "logs" / f"{stage}.log"


def policy_eval(policy: str) -> Path:
    """sec42_eval's outputs for one initial policy (matrices, normalisations, samples)."""
    return SEC42_EVAL / policy
