"""Preference pairs for reward-model training (paper Section 4.1, App. F.1).

Every prompt has two candidate pairs, both labelled by the ground truth r_G:

* on-policy: two samples of the initial policy, as in the paper;
* off-policy: responses the initial policy did not write, binarised as UltraFeedback is - several
  candidates from other sources (the corpus's own continuation and base-LM samples at the given
  temperatures), the one r_G likes best as `chosen` and a random other one as `rejected`. In the
  UltraFeedback world the candidates are the record's own two responses, so this is the paper's
  relabelling: the pair as recorded, swapped where r_G prefers the rejected response.

Two samples of one policy differ little, so on-policy pairs teach fine distinctions among the
responses the policy actually writes; best-of-several pairs from other writers differ a lot and
teach coarse ones. That difference is what the paper's on/off-policy mixes manipulate.

A mix with on-policy fraction f has exactly `n_pairs` pairs: walking one seeded permutation of the
prompts, the first round(f * n_pairs) prompts whose on-policy pair is usable give their on-policy
pair and the next prompts give their off-policy pair, so each prompt is used at most once and
every mix has the same number of pairs. A pair is usable if r_G does not tie it and both texts fit
the model's context (the RM trainer would otherwise drop it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmteacher.core.hf import context_length
from rmteacher.lm.rm.gold import chat_texts
from rmteacher.lm.world.sampling import sample_responses

RECORDED = ["off_uf_chosen", "off_uf_rejected"]


def offpolicy_sources(temperatures, recorded_pairs: bool = False) -> list[str]:
    """Column names of the off-policy candidates: the corpus and one per base-LM temperature, or
    an UltraFeedback record's chosen and rejected responses (and any base-LM samples)."""
    first = RECORDED if recorded_pairs else ["off_corpus"]
    return [*first, *(f"off_t{t:g}" for t in temperatures)]


def candidate_pairs(
    world, split: str, policy, base, tokenizer, gold, *, offpolicy_temperatures, seed: int
) -> pd.DataFrame:
    """One row per prompt of `split`: the two on-policy samples (on_a, on_b), the off-policy
    candidates (`offpolicy_sources`), the r_G score of each (gold_<column>) and the binarised
    off-policy pair (off_chosen, off_rejected with their scores). `base` may be None when
    there are no base-LM temperatures."""
    passages = world.prompts[split]
    prompts = [p.prompt for p in passages]
    recorded = passages[0].rejected is not None
    sources = offpolicy_sources(offpolicy_temperatures, recorded)
    if len(sources) < 2:
        raise ValueError(
            "rm_train.offpolicy_temperatures: the corpus world needs at least one base-LM "
            "temperature (an off-policy pair needs two candidates)"
        )
    gen = world.generation()
    on = sample_responses(
        policy, tokenizer, prompts, 2, seed=seed, desc=f"{split} on-policy", batch_size=512, **gen
    )
    frame = pd.DataFrame(
        {
            "prompt": prompts,
            "on_a": [s[0] for s in on],
            "on_b": [s[1] for s in on],
        }
    )
    if recorded:
        frame[RECORDED[0]] = [p.continuation for p in passages]
        frame[RECORDED[1]] = [p.rejected for p in passages]
    else:
        frame["off_corpus"] = [p.continuation for p in passages]
    for index, temperature in enumerate(offpolicy_temperatures):
        off = sample_responses(
            base,
            tokenizer,
            prompts,
            1,
            seed=seed + 1 + index,
            chat=False,
            max_new_tokens=gen["max_new_tokens"],
            temperature=temperature,
            batch_size=512,
            desc=f"{split} base LM at T={temperature:g}",
        )
        frame[f"off_t{temperature:g}"] = [s[0] for s in off]
    for column in ("on_a", "on_b", *sources):
        frame[f"gold_{column}"] = gold(frame["prompt"].tolist(), frame[column].tolist())
    frame = binarize(frame, sources, seed)
    limit = context_length(policy.config) or np.inf
    for kind, columns in (("on", ("on_a", "on_b")), ("off", ("off_chosen", "off_rejected"))):
        lengths = [chat_lengths(tokenizer, frame.prompt, frame[c]) for c in columns]
        frame[f"{kind}_fits"] = np.maximum(*lengths) <= limit
    return frame


def chat_lengths(tokenizer, prompts, responses) -> np.ndarray:
    """Token count of each (prompt, response) as a reward model reads it (chat template)."""

    texts = chat_texts(tokenizer, list(prompts), list(responses))
    return np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]])


def binarize(frame: pd.DataFrame, sources: list[str], seed: int) -> pd.DataFrame:
    """Add the off-policy pair: the candidate r_G scores highest, and a random other one."""
    scores = frame[[f"gold_{c}" for c in sources]].to_numpy()
    texts = frame[sources].to_numpy()
    best = scores.argmax(axis=1)
    rng = np.random.default_rng(seed)
    other = (best + rng.integers(1, len(sources), size=len(frame))) % len(sources)
    rows = np.arange(len(frame))
    return frame.assign(
        off_chosen=texts[rows, best],
        off_rejected=texts[rows, other],
        gold_off_chosen=scores[rows, best],
        gold_off_rejected=scores[rows, other],
    )


def pair(row, kind: str):
    """(chosen, rejected, r_G gap) of a candidate row's on- or off-policy pair (gap 0: tied)."""
    if kind == "off":
        return row.off_chosen, row.off_rejected, row.gold_off_chosen - row.gold_off_rejected
    if row.gold_on_a >= row.gold_on_b:
        return row.on_a, row.on_b, row.gold_on_a - row.gold_on_b
    return row.on_b, row.on_a, row.gold_on_b - row.gold_on_a


def mix_pairs(
    candidates: pd.DataFrame, onpolicy_fraction: float, n_pairs: int, seed: int
) -> pd.DataFrame:
    """The training pairs of one RM (see the module docstring): columns prompt, chosen, rejected,
    source ('on'/'off') and gap (the r_G difference)."""
    n_on = int(round(onpolicy_fraction * n_pairs))
    wanted = {"on": n_on, "off": n_pairs - n_on}
    order = np.random.default_rng(seed).permutation(len(candidates))
    rows = []
    for index in order:
        kind = "on" if wanted["on"] > 0 else "off"
        if wanted[kind] == 0:
            break
        row = candidates.iloc[index]
        chosen, rejected, gap = pair(row, kind)
        if gap == 0 or not row[f"{kind}_fits"]:
            continue
        rows.append(
            {
                "prompt": row.prompt,
                "chosen": chosen,
                "rejected": rejected,
                "source": kind,
                "gap": gap,
            }
        )
        wanted[kind] -= 1
    if any(wanted.values()):
        raise ValueError(
            f"rm_train: {n_pairs} untied pairs at on-policy fraction {onpolicy_fraction:g} need "
            f"more than the {len(candidates)} prompts (raise lm_sft.n_rm_prompts)"
        )
    return pd.DataFrame(rows)


def heldout_pairs(
    candidates: pd.DataFrame, kind: str
) -> tuple[list[str], list[list[str]], np.ndarray]:
    """(prompts, [[chosen, rejected]] responses, r_G [M, 2]) of every prompt's on- or off-policy
    pair, for held-out accuracy."""
    pairs = [pair(row, kind) for row in candidates.itertuples(index=False)]
    scores = (
        candidates[["gold_off_chosen", "gold_off_rejected"]].to_numpy()
        if kind == "off"
        else np.sort(candidates[["gold_on_a", "gold_on_b"]].to_numpy(), axis=1)[:, ::-1]
    )
    return candidates["prompt"].tolist(), [[c, r] for c, r, _ in pairs], scores


def offpolicy_eval_pairs(candidates: pd.DataFrame):
    """The held-out off-policy pairs (see `heldout_pairs`)."""
    return heldout_pairs(candidates, "off")
