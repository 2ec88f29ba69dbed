"""Stage lm_gold: the ground truth r_G, a GPT-2 reward model regressing the VADER sentiment of
prompt + response (see `rmteacher.lm.rm.gold`). Like the base LM it is trained once and committed
(models/gold_rm), so a fresh clone never retrains it; the stage is frozen in dvc.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rmteacher.core import paths
from rmteacher.core.hf import load_policy, n_parameters
from rmteacher.lm.rm import gold
from rmteacher.lm.world.sft import training_documents
from rmteacher.rewards.registry import SequenceClassifierReward
from rmteacher.stages.lm.params.lm_gold import GoldParams

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class GoldResult:
    """`log`: the regression's training log; `heldout`: held-out examples with their VADER label
    and r_G score; `metrics`: size, agreement with VADER overall and per source."""

    log: pd.DataFrame
    heldout: pd.DataFrame
    metrics: dict


def run(params: GoldParams) -> GoldResult:
    """Build the examples, train r_G, save it to models/gold_rm, and measure it on held-out
    passages."""
    base, tokenizer = load_policy(str(paths.BASE_LM), "base LM")
    passages = gold.passages_of_varied_length(
        training_documents(),
        params.n_passages,
        params.min_prompt_words,
        params.max_prompt_words,
        params.continuation_words,
        params.seed,
    )
    examples = gold.training_examples(
        base, tokenizer, passages, params.temperatures, params.max_new_tokens, params.seed
    )
    n_heldout = int(round(params.heldout_fraction * len(passages)))
    heldout_prompts = {p.prompt for p in passages[:n_heldout]}
    is_heldout = examples.prompt.isin(heldout_prompts)
    model = gold.new_reward_model(
        tokenizer,
        params.n_embd,
        params.n_layer,
        params.n_head,
        base.config.n_positions,
        params.seed,
    )
    log = gold.fit(
        model,
        tokenizer,
        examples[~is_heldout].sample(frac=1.0, random_state=params.seed),
        epochs=params.epochs,
        learning_rate=params.learning_rate,
        batch_size=params.batch_size,
        seed=params.seed,
    )
    gold.save(model, tokenizer, paths.GOLD_RM)
    scorer = SequenceClassifierReward(str(paths.GOLD_RM))
    heldout = examples[is_heldout].reset_index(drop=True)
    scores = np.concatenate(
        [
            scorer(list(chunk.prompt), list(chunk.response))
            for _, chunk in heldout.groupby(heldout.index // 512)
        ]
    )
    heldout = heldout.assign(gold=scores)
    by_prompt = heldout.groupby("prompt").indices
    pairs = np.array([(i, j) for rows in by_prompt.values() for i in rows for j in rows if i < j])
    metrics = {
        "n_parameters": n_parameters(model),
        "train_examples": int((~is_heldout).sum()),
        "heldout_examples": len(heldout),
        "final_train_loss": float(log["loss"].tail(10).mean()) if "loss" in log else None,
        **gold.agreement(heldout.gold.to_numpy(), heldout.label.to_numpy(), pairs),
        **{
            f"pearson_with_vader_{source}": float(np.corrcoef(g.gold, g.label)[0, 1])
            for source, g in heldout.groupby("source")
        },
    }
    return GoldResult(log, heldout, metrics)
