"""Stage sec42_policies: several initial policies for Section 4.2 - the Section 4.1 SFT policy
and the base LM fine-tuned on different parts of the corpus (trl SFTTrainer) - with a profile of
each one's outputs (length, vocabulary, r_G) showing that they differ, and for some of them an RM
of their own, trained on pairs of that policy's samples (`rm_own_<policy>`): RMs each sensitive
to what one policy writes, which sec42_eval checks reorder across policies."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from rmteacher.core import paths
from rmteacher.core.hf import context_length, load_policy
from rmteacher.lm.rm.names import init_source
from rmteacher.lm.rm.preferences import chat_lengths, mix_pairs
from rmteacher.lm.rm.training import read_manifest, train_reward_model
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
    `own_rms`: the RM trained on each own-RM policy's pairs; `metrics`."""

    logs: pd.DataFrame
    profiles: pd.DataFrame
    examples: pd.DataFrame
    divergence: pd.DataFrame
    lengths: pd.DataFrame
    own_rms: pd.DataFrame
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
    own_rms = train_own_rms(params, world) if params.own_rm_policies else pd.DataFrame()
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
    metrics.update(
        {f"{r.rm}_train_accuracy": float(r.final_train_accuracy) for r in own_rms.itertuples()}
    )
    return PoliciesResult(logs, profiles, examples, divergence, lengths, own_rms, metrics)


def train_own_rms(params: Sec42PoliciesParams, world) -> pd.DataFrame:
    """One RM per policy in `own_rm_policies`, trained on r_G-labelled pairs of two of that
    policy's samples on the RM-training prompts (ties and pairs that do not fit dropped), from
    `own_rm_init`; saved under artifacts/sec42_policies/rms with a manifest. Returns one row per
    RM (rm, policy, pairs, final training accuracy)."""
    gold_spec = read_manifest()["gold"]
    gold = load_reward(gold_spec, "gold")
    n_prompts = min(len(world.prompts["rm_train"]), 2 * params.own_rm_pairs)
    prompts = world.prompt_texts("rm_train")[:n_prompts]
    rows, entries = [], []
    for policy in params.own_rm_policies:
        name = f"rm_own_{policy}"
        model, tokenizer = load_policy(str(policy_path(policy)), f"policy '{policy}'")
        samples = sample_responses(
            model, tokenizer, prompts, 2, seed=params.seed + 1, batch_size=512,
            desc=f"{policy} pairs", **world.generation(),
        )  # fmt: skip
        frame = pd.DataFrame(
            {"prompt": prompts, "on_a": [s[0] for s in samples], "on_b": [s[1] for s in samples]}
        )
        for column in ("on_a", "on_b"):
            frame[f"gold_{column}"] = gold(prompts, frame[column].tolist())
        limit = context_length(model.config) or float("inf")
        lengths = [chat_lengths(tokenizer, frame.prompt, frame[c]) for c in ("on_a", "on_b")]
        frame["on_fits"] = (lengths[0] <= limit) & (lengths[1] <= limit)
        pairs = mix_pairs(frame, 1.0, params.own_rm_pairs, params.seed)
        init_dir, new_head = init_source(params.own_rm_init, str(policy_path(policy)), gold_spec)
        out = paths.SEC42_POLICIES / "rms" / name
        log = train_reward_model(
            init_dir, out, pairs, epochs=1.0, learning_rate=params.own_rm_learning_rate,
            batch_size=params.own_rm_batch_size, center_rewards_coefficient=0.01,
            seed=params.seed, name=name, new_head=new_head,
        )  # fmt: skip
        accuracy = log["accuracy"].tail(20).mean() if "accuracy" in log else float("nan")
        rows.append(
            {"rm": name, "policy": policy, "pairs": len(pairs), "final_train_accuracy": accuracy}
        )
        entries.append({"name": name, "policy": policy, "pairs": len(pairs), "path": str(out)})
    (paths.SEC42_POLICIES / "rm_manifest.json").write_text(
        json.dumps({"gold": gold_spec, "init": params.own_rm_init, "rms": entries}, indent=1) + "\n"
    )
    return pd.DataFrame(rows)
