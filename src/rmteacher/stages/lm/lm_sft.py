"""Stage lm_sft: the prompt splits (RM training / policy gradient / test) and the initial policy,
the base LM fine-tuned with trl's SFTTrainer to continue a prompt in the chat format."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rmteacher.core import paths
from rmteacher.core.hf import load_policy, load_tokenizer
from rmteacher.lm.world.prompts import MOODS, make_world
from rmteacher.lm.world.sampling import sample_responses
from rmteacher.lm.world.sft import SftRecipe, train_policy
from rmteacher.rewards.registry import load_reward
from rmteacher.stages.lm.params.lm_sft import LmSftParams


@dataclass(frozen=True)
class SftResult:
    """`log`: trl's per-step SFT log; `samples`: initial-policy and base-LM samples beside the
    corpus continuation for a few test prompts; `metrics`: SFT fit and r_G of the samples."""

    log: pd.DataFrame
    samples: pd.DataFrame
    metrics: dict


def run(params: LmSftParams, quicklook_prompts: int = 256) -> SftResult:
    """Split the prompts, fine-tune and save the initial policy and the world description, then
    sample both policies on `quicklook_prompts` test prompts. In this world r_G scores the
    samples and the sentiment (VADER) of the policy's responses per mood instruction shows
    whether it follows the instructions; with UltraFeedback the samples stand beside the
    recorded preferred response (its ground truth is rm_train's)."""
    tokenizer = load_tokenizer(params.base_policy) if params.prompt_data else None
    world = make_world(params, tokenizer)  # fails fast if lm_pretrain has not run
    log = train_policy(
        paths.SFT_POLICY,
        world.prompts["sft"],
        params,
        epochs=params.epochs,
        learning_rate=params.learning_rate,
        batch_size=params.batch_size,
        seed=params.seed,
    )
    world.save()
    SftRecipe.of(params).save()
    policy, tokenizer = load_policy(str(paths.SFT_POLICY), "initial policy")
    base, _ = load_policy(world.base_dir, "base LM")
    passages = world.prompts["test"][:quicklook_prompts]
    prompts = [p.prompt for p in passages]
    gen = world.generation()
    sft_samples = sample_responses(policy, tokenizer, prompts, 4, seed=params.seed, **gen)
    base_samples = sample_responses(
        base, tokenizer, prompts, 4, seed=params.seed, chat=False, **gen
    )
    reference = "preferred (UltraFeedback)" if params.prompt_data else "corpus"
    samples = pd.DataFrame(
        {
            "prompt": prompts[:6],
            "initial policy": [s[0] for s in sft_samples[:6]],
            "base LM": [s[0] for s in base_samples[:6]],
            reference: [p.continuation for p in passages[:6]],
        }
    )
    sentiment, gold = (
        ({}, {})
        if params.prompt_data
        else _corpus_metrics(prompts, passages, sft_samples, base_samples)
    )
    metrics = {
        **sentiment,
        "sft_final_loss": float(log["loss"].tail(20).mean()),
        "sft_final_token_accuracy": float(log["mean_token_accuracy"].tail(20).mean()),
        "sft_steps": int(log["step"].max()),
        **gold,
        "mean_response_words": float(np.mean([len(s.split()) for ss in sft_samples for s in ss])),
        **{f"n_{split}_prompts": len(ps) for split, ps in world.prompts.items()},
    }
    return SftResult(log, samples, metrics)


def _corpus_metrics(prompts, passages, sft_samples, base_samples) -> tuple[dict, dict]:
    """(the policy's VADER sentiment per mood instruction, r_G of the policy, base-LM and corpus
    responses), in this world only."""
    gold = load_reward(str(paths.GOLD_RM), "gold")
    vader = load_reward("vader")
    mood = np.array(
        [next((m for m, head in MOODS.items() if p.startswith(head)), "plain") for p in prompts]
    )
    response_sentiment = vader.matrix(prompts, sft_samples).mean(axis=1)
    sentiment = {
        f"initial_policy_sentiment_{m}": float(response_sentiment[mood == m].mean())
        for m in ("happy", "sad", "plain")
        if (mood == m).any()
    }
    return sentiment, {
        "initial_policy_mean_gold": float(gold.matrix(prompts, sft_samples).mean()),
        "base_lm_mean_gold": float(gold.matrix(prompts, base_samples).mean()),
        "corpus_mean_gold": float(gold(prompts, [p.continuation for p in passages]).mean()),
    }
