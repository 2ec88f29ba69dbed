"""Stage sec42_policies: several initial policies for Section 4.2 - the Section 4.1 SFT policy
and the base LM fine-tuned on different parts of the corpus (trl SFTTrainer) - with a profile of
each one's outputs (length, vocabulary, r_G) showing that they differ."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from rmteacher.core import paths
from rmteacher.core.hf import load_policy
from rmteacher.lm.world.policies import (
    POLICY_SOURCES,
    jensen_shannon,
    output_profile,
    policy_path,
    train_variant,
    unigram_distribution,
)
from rmteacher.lm.world.prompts import World
from rmteacher.lm.world.sampling import sample_responses
from rmteacher.lm.world.sft import SftRecipe
from rmteacher.rewards.registry import load_reward
from rmteacher.stages.lm.params.sec42_policies import Sec42PoliciesParams


@dataclass(frozen=True)
class PoliciesResult:
    """`logs`: SFT logs of the new policies; `profiles`: per policy, the output profile;
    `examples`: one sample of each policy for a few prompts; `divergence`: Jensen-Shannon
    divergence between the policies' word distributions; `lengths`: words per sample;
    `metrics`."""

    logs: pd.DataFrame
    profiles: pd.DataFrame
    examples: pd.DataFrame
    divergence: pd.DataFrame
    lengths: pd.DataFrame
    metrics: dict


def run(params: Sec42PoliciesParams) -> PoliciesResult:
    """Fine-tune every new policy (saved under artifacts/sec42_policies) the way lm_sft trained
    the Section 4.1 policy (its saved `SftRecipe`), list the policies for the later Section 4.2
    stages (artifacts/sec42_policies/policies.json), then sample each policy on test prompts and
    profile its outputs."""
    sft = SftRecipe.load()  # prompt format and lengths of the Section 4.1 SFT
    world = World.load()
    gold = load_reward("vader")
    logs = []
    for name in params.policies:
        if POLICY_SOURCES[name] is None:
            continue  # the Section 4.1 initial policy, trained by lm_sft
        log = train_variant(
            name,
            sft,
            params.n_sft_examples,
            params.epochs,
            params.learning_rate,
            params.batch_size,
            params.seed,
        )
        logs.append(log.assign(policy=name))
    logs = pd.concat(logs, ignore_index=True)
    paths.POLICY_LIST.parent.mkdir(parents=True, exist_ok=True)
    paths.POLICY_LIST.write_text(json.dumps(list(params.policies)) + "\n")
    prompts = world.prompt_texts("test")[: params.profile_prompts]
    samples, profiles = {}, []
    for name in params.policies:
        model, tokenizer = load_policy(str(policy_path(name)), f"policy '{name}'")
        samples[name] = sample_responses(
            model,
            tokenizer,
            prompts,
            params.profile_samples,
            seed=params.seed,
            **world.generation(),
        )
        profile = output_profile(samples[name], gold.matrix(prompts, samples[name]))
        profiles.append({"policy": name, **profile})
    profiles = pd.DataFrame(profiles).set_index("policy")
    examples = pd.DataFrame(
        {name: [s[0] for s in samples[name][:6]] for name in params.policies}, index=prompts[:6]
    )
    words = {
        name: unigram_distribution([r for rs in samples[name] for r in rs])
        for name in params.policies
    }
    divergence = pd.DataFrame(
        {a: {b: jensen_shannon(words[a], words[b]) for b in params.policies} for a in words}
    )
    lengths = pd.DataFrame(
        [
            {"policy": n, "words": len(r.split())}
            for n in params.policies
            for rs in samples[n]
            for r in rs
        ]
    )
    off_diagonal = [divergence.loc[a, b] for a in words for b in words if a != b]
    metrics = {
        "n_policies": len(params.policies),
        "min_pairwise_js_divergence": float(min(off_diagonal)),
        **{
            f"{policy}_{key}": float(value)
            for policy, row in profiles.iterrows()
            for key, value in row.items()
        },
    }
    return PoliciesResult(logs, profiles, examples, divergence, lengths, metrics)
