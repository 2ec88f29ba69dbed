"""Fast search for a Section 4.1 world in which the on/off-policy data mix moves the RMs (issue 19).

Two steps, both on a subset of the world's prompts so one design costs minutes, not the default
run's half hour:

    python scripts/design_search.py prepare            # samples and r_G labels, cached once
    python scripts/design_search.py run DESIGN [...]   # five mixes' RMs, then the check table

`prepare` draws, with lm_sft's world and policies: two initial-policy samples per RM-training and
test prompt (on-policy candidates), every off-policy candidate any design may use (the corpus
continuation, base-LM samples at several temperatures, and the Section 4.2 policies' samples when
they exist), r_G's score of each, and the initial policy's `n_samples` samples of the
policy-gradient prompts that rm_eval measures variance on. `run` trains one Bradley-Terry RM per
on-policy fraction with the design's settings (`DESIGNS`), scores the policy's samples and the
held-out test pairs, prints rm_eval's Section 4.1 checks, and appends one row per design to
data/design_search/sec41.csv (the record the book's "what we tried" table reads).

Run every `run` under the shared CPU lock: `flock /work/heavy.lock python scripts/...`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rmteacher.lm.rm.preferences import binarize

RECORD = Path("data/design_search/sec41.csv")
FRACTIONS = (1.0, 0.75, 0.5, 0.25, 0.0)
BASE_TEMPERATURES = (0.7, 1.0, 1.3, 1.6)


@dataclass(frozen=True)
class Design:
    """One candidate world for the mixes: how the RMs start, which off-policy candidates are
    binarised into the off-policy pair, and the training settings."""

    reason: str
    init: str = "policy"  # policy | gold | gold_body (r_G's body, a new head) | a model dir
    offpolicy_sources: tuple[str, ...] = ("off_corpus", "off_t1", "off_t1.3")
    n_pairs: int = 4000
    learning_rate: float = 5e-4
    epochs: float = 1.0
    batch_size: int = 64
    center_rewards_coefficient: float = 0.01
    offpolicy_rejected: str = "random"  # random: another candidate (UltraFeedback); worst


DESIGNS: dict[str, Design] = {
    "baseline": Design(
        "the committed world at search scale: RMs start from the initial policy, off-policy pairs "
        "are the best of the corpus continuation and base-LM samples (T 1, 1.3) vs another"
    ),
    "gold_init": Design(
        "start every RM from r_G itself (body and head), a model that already scores prompts: "
        "Bradley-Terry training cannot remove its between-prompt spread, so each mix's variance "
        "is set by how much within-prompt spread its data add on the policy's samples",
        init="gold",
    ),
    "gold_body": Design(
        "start from r_G's body with a new head: the features read the prompt, the head is learned",
        init="gold_body",
    ),
    "gold_init_extreme": Design(
        "r_G init, and off-policy pairs of coarse distinctions (best vs worst of five other "
        "writers: corpus, base LM at T 0.7-1.6) that r_G already orders with a wide margin, so "
        "off-policy data add little within-prompt spread while on-policy pairs (fine "
        "distinctions among the policy's own samples) add much",
        init="gold",
        offpolicy_sources=("off_corpus", "off_t0.7", "off_t1", "off_t1.3", "off_t1.6"),
        offpolicy_rejected="worst",
    ),
    "gold_body_lowlr": Design(
        "r_G's body with a new head, ten times smaller steps: Bradley-Terry drives within-prompt "
        "margins up until the loss is small, so long or large steps swamp any between-prompt "
        "spread and every mix ends near 1 (the paper's RMs move little from their start: lr 5e-7 "
        "on 2.8B parameters); smaller steps keep the start's between part, and the mixes differ "
        "in how much within-prompt spread their data add on the policy's samples",
        init="gold_body",
        learning_rate=5e-5,
    ),
    "gold_init_lowlr": Design(
        "r_G itself as the start, ten times smaller steps (as gold_body_lowlr)",
        init="gold",
        learning_rate=5e-5,
    ),
    "far_offpolicy": Design(
        "gold_body_lowlr, with off-policy candidates the policy does not write: the default "
        "sources include base-LM samples at temperature 1, nearly the initial policy's own "
        "distribution (it is that LM fine-tuned), so 'off-policy' pairs taught the same "
        "distinctions; here only the human continuation and base-LM samples at temperature 0.7 "
        "(a different register: repetitive, low-entropy)",
        init="gold_body",
        learning_rate=5e-5,
        offpolicy_sources=("off_corpus", "off_t0.7"),
    ),
    "far_offpolicy_noise": Design(
        "as far_offpolicy, with the human continuation against base-LM samples at temperature "
        "1.6 (near-random word salad), the farthest style from the policy's samples",
        init="gold_body",
        learning_rate=5e-5,
        offpolicy_sources=("off_corpus", "off_t1.6"),
    ),
    "policy_lowlr": Design(
        "the paper's start (the initial policy, new head) with ten times smaller steps: does the "
        "SFT model's own feature spread across prompts carry a between part when training "
        "moves it little?",
        learning_rate=5e-5,
    ),
}


def cache_dir(args) -> Path:
    path = Path(args.cache)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sub_world(world, sizes: dict[str, int]):
    from dataclasses import replace

    return replace(world, prompts={k: v[: sizes.get(k, len(v))] for k, v in world.prompts.items()})


def prepare(args) -> None:
    """Cache candidates (rm_train and test subsets) and the policy's evaluation samples."""
    import torch

    from rmteacher.core.hf import load_policy
    from rmteacher.lm.rm.evaluation import score_matrix
    from rmteacher.lm.world.policies import POLICY_SOURCES, policy_path
    from rmteacher.lm.world.prompts import World
    from rmteacher.lm.world.sampling import sample_responses
    from rmteacher.rewards.registry import load_reward

    torch.set_num_threads(args.threads)
    out = cache_dir(args)
    world = sub_world(World.load(), {"rm_train": args.rm_prompts, "test": args.test_prompts})
    gold = load_reward("models/gold_rm", "gold")
    policy, tokenizer = load_policy(world.policy_dir, "initial policy")
    base = load_policy(world.base_dir, "base LM")[0]
    others = {
        name: load_policy(str(policy_path(name)), name)[0]
        for name, sources in POLICY_SOURCES.items()
        if sources is not None and policy_path(name).is_dir()
    }
    gen = world.generation()
    for index, split in enumerate(("rm_train", "test")):
        passages = world.prompts[split]
        prompts = [p.prompt for p in passages]
        seed = 10 * index
        on = sample_responses(policy, tokenizer, prompts, 2, seed=seed, batch_size=512, **gen)
        frame = pd.DataFrame(
            {
                "prompt": prompts,
                "on_a": [s[0] for s in on],
                "on_b": [s[1] for s in on],
                "off_corpus": [p.continuation for p in passages],
            }
        )
        for k, temperature in enumerate(BASE_TEMPERATURES):
            off = sample_responses(
                base,
                tokenizer,
                prompts,
                1,
                seed=seed + 1 + k,
                chat=False,
                max_new_tokens=gen["max_new_tokens"],
                temperature=temperature,
                batch_size=512,
            )
            frame[f"off_t{temperature:g}"] = [s[0] for s in off]
        for k, (name, model) in enumerate(others.items()):
            off = sample_responses(
                model, tokenizer, prompts, 1, seed=seed + 7 + k, batch_size=512, **gen
            )
            frame[f"off_{name}"] = [s[0] for s in off]
        for column in [c for c in frame.columns if c != "prompt"]:
            frame[f"gold_{column}"] = gold(frame.prompt.tolist(), frame[column].tolist())
        frame.to_json(out / f"candidates_{split}.jsonl", orient="records", lines=True)
    prompts = world.prompt_texts("pg_train")[: args.pg_prompts]
    responses = sample_responses(
        policy, tokenizer, prompts, args.n_samples, seed=0, batch_size=512, **gen
    )
    np.save(out / "gold_matrix.npy", score_matrix(gold, prompts, responses))
    (out / "samples.json").write_text(json.dumps({"prompts": prompts, "responses": responses}))
    print(f"cached under {out}: columns {list(frame.columns)}")


def with_offpolicy_pair(
    frame: pd.DataFrame, sources, seed: int, rejected: str = "random"
) -> pd.DataFrame:
    """The candidates with the design's off-policy pair (best of `sources` by r_G vs another,
    or vs the worst)."""
    frame = binarize(
        frame.drop(
            columns=[
                c
                for c in frame.columns
                if c.startswith("off_chosen")
                or c.startswith("off_rejected")
                or c.startswith("gold_off_chosen")
                or c.startswith("gold_off_rejected")
            ]
        ),
        list(sources),
        seed,
    )
    if rejected == "worst":
        scores = frame[[f"gold_{c}" for c in sources]].to_numpy()
        texts = frame[list(sources)].to_numpy()
        rows, worst = np.arange(len(frame)), scores.argmin(axis=1)
        frame["off_rejected"] = texts[rows, worst]
        frame["gold_off_rejected"] = scores[rows, worst]
    frame["on_fits"] = True
    frame["off_fits"] = True
    return frame


def initial_model(design: Design) -> str:
    """The model directory an RM starts from (for 'gold_body' r_G, whose head is replaced)."""
    from rmteacher.lm.world.prompts import World

    if design.init == "policy":
        return World.load().policy_dir
    if design.init in ("gold", "gold_body"):
        return "models/gold_rm"
    return design.init


def between_share(raw: np.ndarray) -> float:
    """Share of an RM's total variance (initial-policy samples) that lies between prompts."""
    total = raw.var(ddof=1)
    return float(raw.mean(axis=1).var(ddof=1) / total) if total > 0 else float("nan")


def evaluate(reward, samples, gold_matrix, test) -> dict:
    from rmteacher.lm.rm.evaluation import score_matrix
    from rmteacher.lm.rm.preferences import heldout_pairs
    from rmteacher.metrics.rm_metrics import reward_variance, untied_accuracy
    from rmteacher.rewards.normalize import Normalization

    raw = score_matrix(reward, samples["prompts"], samples["responses"])
    row = {
        "reward_variance": reward_variance(Normalization.from_rewards(raw)(raw)),
        "onpolicy_accuracy_untied": untied_accuracy(raw, gold_matrix),
        "between_share": between_share(raw),
        "raw_within_std": float(np.sqrt(raw.var(axis=1, ddof=1).mean())),
    }
    for kind in ("on", "off"):
        prompts, responses, gold = heldout_pairs(test, kind)
        row[f"heldout_{kind}_accuracy_untied"] = untied_accuracy(
            score_matrix(reward, prompts, responses), gold
        )
    return row


def checks(table: pd.DataFrame, gold: dict) -> dict:
    from scipy import stats

    mixes = table[table.rm.str.startswith("rm_")]
    off_share = 1 - mixes.onpolicy_fraction
    return {
        "variance_min": float(mixes.reward_variance.min()),
        "variance_max": float(mixes.reward_variance.max()),
        "variance_span": float(mixes.reward_variance.max() / mixes.reward_variance.min()),
        "variance_trend": float(stats.spearmanr(mixes.onpolicy_fraction, mixes.reward_variance)[0]),
        "offpolicy_trend": float(stats.spearmanr(off_share, mixes.heldout_off_accuracy_untied)[0]),
        "min_onpolicy_accuracy_untied": float(mixes.onpolicy_accuracy_untied.min()),
        "gold_variance": gold["reward_variance"],
        "gold_ties": gold["ties"],
    }


def run(args) -> None:
    import torch

    from rmteacher.lm.rm.preferences import mix_pairs
    from rmteacher.lm.rm.training import train_reward_model
    from rmteacher.metrics.rm_metrics import gold_tie_fraction, reward_variance
    from rmteacher.rewards.normalize import Normalization
    from rmteacher.rewards.registry import load_reward

    torch.set_num_threads(args.threads)
    design = DESIGNS[args.design]
    if args.pairs:
        design = Design(**{**asdict(design), "n_pairs": args.pairs})
    cache = cache_dir(args)
    samples = json.loads((cache / "samples.json").read_text())
    gold_matrix = np.load(cache / "gold_matrix.npy")
    frames = {
        split: with_offpolicy_pair(
            pd.read_json(cache / f"candidates_{split}.jsonl", lines=True),
            design.offpolicy_sources,
            args.seed,
            design.offpolicy_rejected,
        )
        for split in ("rm_train", "test")
    }
    out = cache / "runs" / args.design
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    init = initial_model(design)
    rows = []
    for fraction in FRACTIONS:
        name = f"rm_onpolicy_{round(100 * fraction)}"
        pairs = mix_pairs(frames["rm_train"], fraction, design.n_pairs, args.seed)
        if not (args.reuse and (out / name / "model.safetensors").is_file()):
            train_reward_model(
                init,
                out / name,
                pairs,
                epochs=design.epochs,
                learning_rate=design.learning_rate,
                batch_size=design.batch_size,
                center_rewards_coefficient=design.center_rewards_coefficient,
                seed=args.seed,
                name=name,
                new_head=design.init == "gold_body",
            )
        reward = load_reward(str(out / name), name)
        rows.append(
            {
                "rm": name,
                "onpolicy_fraction": fraction,
                **evaluate(reward, samples, gold_matrix, frames["test"]),
            }
        )
        print(pd.DataFrame(rows).round(3).to_string(index=False), flush=True)
    if design.init not in ("policy", "gold_body"):  # a causal LM or a new head: no RM yet
        init_row = evaluate(load_reward(init, "init"), samples, gold_matrix, frames["test"])
        rows.append({"rm": "init", "onpolicy_fraction": float("nan"), **init_row})
    table = pd.DataFrame(rows)
    gold = {
        "reward_variance": reward_variance(Normalization.from_rewards(gold_matrix)(gold_matrix)),
        "ties": gold_tie_fraction(gold_matrix),
    }
    result = checks(table, gold)
    seconds = time.time() - start
    print(table.round(3).to_string(index=False))
    print(json.dumps({k: round(v, 4) for k, v in result.items()}, indent=1))
    record = {
        "design": args.design,
        "reason": design.reason,
        "settings": json.dumps({k: v for k, v in asdict(design).items() if k != "reason"}),
        "scale": f"{design.n_pairs} pairs, {len(gold_matrix)} prompts x "
        f"{gold_matrix.shape[1]} samples, {len(frames['test'])} test pairs",
        **result,
        **{
            f"{r.rm}_{c}": getattr(r, c)
            for r in table.itertuples()
            for c in (
                "reward_variance",
                "onpolicy_accuracy_untied",
                "heldout_off_accuracy_untied",
                "between_share",
            )
        },
        "seconds": round(seconds),
    }
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    old = pd.read_csv(RECORD) if RECORD.is_file() else pd.DataFrame()
    pd.concat([old, pd.DataFrame([record])], ignore_index=True).to_csv(RECORD, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="/tmp/rmteacher_design_search")
    parser.add_argument("--threads", type=int, default=2)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--rm-prompts", type=int, default=8000)
    p.add_argument("--test-prompts", type=int, default=1024)
    p.add_argument("--pg-prompts", type=int, default=512)
    p.add_argument("--n-samples", type=int, default=10)
    r = sub.add_parser("run")
    r.add_argument("design", nargs="+", choices=sorted(DESIGNS))
    r.add_argument("--pairs", type=int, default=0)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--reuse", action="store_true", help="evaluate RMs already trained")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args)
    else:
        for name in args.design:
            run(argparse.Namespace(**{**vars(args), "design": name}))


if __name__ == "__main__":
    main()
