"""Preference pairs for reward-model training (paper Section 4.1, App. F.1).

For every prompt two candidate pairs exist: an on-policy pair (two samples of the initial policy)
and an off-policy pair (the corpus's own continuation and a base-LM sample, neither produced by
the initial policy). Both are scored by the ground truth r_G. A mix with on-policy fraction f
takes the on-policy pair for the first round(f * N) prompts of one seeded permutation and the
off-policy pair for the rest, so each prompt is used once; pairs that r_G ties are dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmteacher.lm.world.sampling import sample_responses


def candidate_pairs(
    world, split: str, policy, base, tokenizer, gold, *, offpolicy_temperature, seed: int
) -> pd.DataFrame:
    """One row per prompt of `split`: prompt, on_a, on_b, off_a (corpus), off_b (base LM) and the
    r_G score of each response (gold_on_a, ...)."""
    passages = world.prompts[split]
    prompts = [p.prompt for p in passages]
    gen = world.generation()
    on = sample_responses(
        policy, tokenizer, prompts, 2, seed=seed, desc=f"{split} on-policy", **gen
    )
    off = sample_responses(
        base,
        tokenizer,
        prompts,
        1,
        seed=seed + 1,
        chat=False,
        max_new_tokens=gen["max_new_tokens"],
        temperature=offpolicy_temperature,
        desc=f"{split} off-policy",
    )
    frame = pd.DataFrame(
        {
            "prompt": prompts,
            "on_a": [s[0] for s in on],
            "on_b": [s[1] for s in on],
            "off_a": [p.continuation for p in passages],
            "off_b": [s[0] for s in off],
        }
    )
    for col in ("on_a", "on_b", "off_a", "off_b"):
        frame[f"gold_{col}"] = gold(frame["prompt"].tolist(), frame[col].tolist())
    return frame


def mix_pairs(candidates: pd.DataFrame, onpolicy_fraction: float, seed: int) -> pd.DataFrame:
    """The training pairs of one RM: columns prompt, chosen, rejected, source ('on'/'off').
    Pairs tied under r_G are dropped."""
    n = len(candidates)
    order = np.random.default_rng(seed).permutation(n)
    on_policy = np.zeros(n, dtype=bool)
    on_policy[order[: int(round(onpolicy_fraction * n))]] = True
    rows = []
    for use_on, row in zip(on_policy, candidates.itertuples(index=False), strict=True):
        kind = "on" if use_on else "off"
        a, b = getattr(row, f"{kind}_a"), getattr(row, f"{kind}_b")
        ga, gb = getattr(row, f"gold_{kind}_a"), getattr(row, f"gold_{kind}_b")
        if ga == gb:
            continue
        chosen, rejected = (a, b) if ga > gb else (b, a)
        rows.append({"prompt": row.prompt, "chosen": chosen, "rejected": rejected, "source": kind})
    if not rows:
        raise ValueError(
            "every preference pair is tied under the ground truth; no data to train on"
        )
    return pd.DataFrame(rows)


def offpolicy_eval_pairs(candidates: pd.DataFrame) -> tuple[list[str], list[list[str]], np.ndarray]:
    """(prompts, [[corpus, base LM]] responses, r_G [M, 2]) for held-out off-policy accuracy."""
    responses = candidates[["off_a", "off_b"]].values.tolist()
    gold = candidates[["gold_off_a", "gold_off_b"]].to_numpy()
    return candidates["prompt"].tolist(), responses, gold
