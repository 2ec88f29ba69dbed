"""Section 4.2's reordering check before any policy gradient, at search scale (issue 19).

    python scripts/sec42_flip_check.py [--prompts 512] [--rm NAME=SPEC ...]

Samples every Section 4.2 policy (sec42_policies' outputs, lm_sft's world) on the first
`--prompts` policy-gradient prompts, scores the samples with r_G and each RM (by default the
policies' own RMs from artifacts/sec42_policies/rm_manifest.json, plus the lexicon scorers and
any `--rm` given), and prints sec42_eval's named checks and strongest flips
(`rmteacher.lm.analysis.sec42.ordering_flips` / `sec42_checks`), the same functions the stage runs
at full scale. Run it under the shared CPU lock.
"""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import pandas as pd


def main() -> None:
    import torch

    from rmteacher.core import paths
    from rmteacher.core.hf import load_policy
    from rmteacher.lm.analysis.sec42 import ordering_flips, sec42_checks
    from rmteacher.lm.rm.evaluation import score_matrix
    from rmteacher.lm.world.policies import POLICY_SOURCES, policy_path
    from rmteacher.lm.world.prompts import World
    from rmteacher.lm.world.sampling import sample_responses
    from rmteacher.metrics.rm_metrics import gold_tie_fraction, reward_variance
    from rmteacher.rewards.normalize import Normalization
    from rmteacher.rewards.registry import load_reward

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--rm", action="append", default=[], help="NAME=SPEC")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(2)

    manifest = json.loads((paths.SEC42_POLICIES / "rm_manifest.json").read_text())
    specs = {rm["name"]: rm["path"] for rm in manifest["rms"]}
    specs.update({"afinn": "afinn", "textblob": "textblob"})
    specs.update(dict(item.split("=", 1) for item in args.rm))
    gold = load_reward(manifest["gold"], "gold")
    rewards = {name: load_reward(spec, name) for name, spec in specs.items()}
    world = World.load()
    prompts = world.prompt_texts("pg_train")[: args.prompts]
    matrices, rows = {}, []
    for policy in [p for p in POLICY_SOURCES if policy_path(p).is_dir()]:
        model, tokenizer = load_policy(str(policy_path(policy)), policy)
        responses = sample_responses(
            model, tokenizer, prompts, args.samples, seed=0, batch_size=512, **world.generation()
        )
        g = score_matrix(gold, prompts, responses)
        matrices[policy] = {"gold": g}
        for name, reward in rewards.items():
            raw = score_matrix(reward, prompts, responses)
            matrices[policy][name] = raw
        for name, raw in matrices[policy].items():
            rows.append(
                {
                    "policy": policy,
                    "rm": name,
                    "reward_variance": reward_variance(Normalization.from_rewards(raw)(raw)),
                    "gold_tie_fraction": gold_tie_fraction(g),
                }
            )
    table = pd.DataFrame(rows)
    from rmteacher.lm.experiments.sec42_eval import variance_noise

    table["variance_noise"] = [
        variance_noise(matrices[r.policy][r.rm], args.bootstrap, 0) for r in table.itertuples()
    ]
    flips = ordering_flips(matrices, args.bootstrap, 0)
    checks = sec42_checks(
        table, flips, SimpleNamespace(check_flip_strength=2.0, check_gold_ties=0.05)
    )
    print(table.pivot(index="rm", columns="policy", values="reward_variance").round(3))
    print(table.pivot(index="rm", columns="policy", values="variance_noise").round(4))
    print(flips.head(10).round(4).to_string())
    print(checks[["check", "requirement", "value", "passed"]].to_string(index=False))
    if args.out:
        checks.to_csv(args.out, index=False)
        flips.to_csv(args.out.replace(".csv", "_flips.csv"), index=False)


if __name__ == "__main__":
    main()
