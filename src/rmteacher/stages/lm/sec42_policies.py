"""Stage sec42_policies: several initial policies for Section 4.2 - the Section 4.1 SFT policy
and the base LM fine-tuned on different parts of the corpus (trl SFTTrainer) - with a profile of
each one's outputs (length, vocabulary, r_G) showing that they differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param
from rmteacher.lm.world.policies import POLICY_SOURCES

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Sec42PoliciesParams(StageParams):
    """Several initial policies: the Section 4.1 SFT policy and the base LM fine-tuned on
    different parts of the corpus (trl SFTTrainer), with a profile of each one's outputs."""

    STAGE = "sec42_policies"
    seed: int = param(0, "seed of the fine-tuning data and order", ge=0)
    policies: tuple[str, ...] = param(
        tuple(POLICY_SOURCES),
        "initial policies ('sft' reuses lm_sft's)",
        choices=tuple(POLICY_SOURCES),
    )
    n_sft_examples: int = param(8000, "fine-tuning examples of each new policy", ge=8)
    epochs: float = param(1.0, "fine-tuning epochs", gt=0)
    learning_rate: float = param(1e-3, "fine-tuning learning rate", gt=0)
    batch_size: int = param(32, "fine-tuning batch size", ge=1)
    profile_prompts: int = param(128, "test prompts sampled to profile each policy", ge=2)
    profile_samples: int = param(4, "samples per profiling prompt", ge=2)

    def check(self) -> None:
        if len(set(self.policies)) != len(self.policies) or len(self.policies) < 2:
            raise ParamsError(f"{self.STAGE}.policies: at least two distinct policies")


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
    """Fine-tune every new policy (saved under artifacts/sec42_policies), then sample each policy
    on test prompts and profile its outputs."""
    import pandas as pd

    from rmteacher.core.hf import load_policy
    from rmteacher.lm.world.policies import (
        jensen_shannon,
        output_profile,
        policy_path,
        train_variant,
        unigram_distribution,
    )
    from rmteacher.lm.world.prompts import World
    from rmteacher.lm.world.sampling import sample_responses
    from rmteacher.rewards.registry import load_reward
    from rmteacher.stages.lm.lm_sft import LmSftParams

    sft = LmSftParams.from_file()  # prompt format and lengths of the Section 4.1 SFT
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
