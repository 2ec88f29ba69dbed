"""Evaluate reward models as teachers of one policy, before any RLHF (the paper's Section 4 view):
sample n responses per prompt from the policy pi, score them with every RM (and r_G), normalise
each RM globally on these samples and report its reward variance and on-policy accuracy.

Which RM will teach pi best? The paper's Table 2 correlates RM properties measured this way with
the reward increase after one policy-gradient epoch (n = 6 RMs):

* reward variance alone predicts the increase of the RM's *own* reward best (Pearson 0.982,
  Spearman 1.0), as Theorem 1 says: low variance means a flat objective and slow progress;
* for the *ground-truth* increase, the best predictor is the average of reward variance and
  accuracy (0.940 / 0.828), while accuracy alone is poor (on-policy: -0.283 / 0.200), because a
  fast but wrong teacher optimises the wrong reward (Theorem 2 and the reward-hacking curves).

So with a gold reward the ranking uses (reward variance + on-policy accuracy) / 2; both lie in
[0, 1] on comparable scales after the global normalisation. Table 2 averages variance with the mean
of on- and off-policy accuracy (reconstructed: the only definition that reproduces all five of
Table 2's Spearman values from Table 1); a report has no
off-policy pairs, and Appendix E.1 finds the on-policy-only average about as predictive (0.809 /
0.828 for the GRM ground truth). Without a gold reward only the variance is measurable, and it
predicts how fast each RM's own reward rises, not whether r_G follows."""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from rmteacher.core.hf import load_policy
from rmteacher.lm.rm.evaluation import TABLE1_COLUMNS, score_matrix
from rmteacher.lm.rm.teacher_inputs import GOLD, ReportInputError, check_report_inputs
from rmteacher.lm.world.sampling import sample_responses
from rmteacher.metrics.rm_metrics import (
    accuracy,
    gold_tie_fraction,
    onpolicy_properties,
    untied_accuracy,
)
from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import Reward, RewardError, load_reward, loads_a_model

PREDICTORS = {
    "combined": "(reward variance + on-policy accuracy) / 2",
    "combined_untied": "(reward variance + untied on-policy accuracy) / 2",
    "variance": "reward variance",
}
# Above this share of sample pairs tied by the gold, the tie rule credits an RM for tying where
# the gold ties, so the ranking uses accuracy over the pairs the gold does not tie.
UNTIED_ABOVE = 0.05


@dataclass
class PolicyReport:
    """Every RM evaluated on one policy's samples.

    `matrices[name]` holds the raw rewards r(x_p, y_pi) as a [P, n] array, in the order of
    `prompts` and `responses` (prompt-major); the gold one, if any, is under 'gold'.
    `normalizations[name]` is the paper's global shift and scale fitted on these samples, and
    `table` has one row per RM (gold last) with Table 1's columns (off-policy ones NaN) plus
    `teacher_score` and `predicted_rank` (1 = predicted best teacher; NaN for gold)."""

    policy: str
    prompts: list[str]
    responses: list[list[str]]
    matrices: dict[str, np.ndarray]
    normalizations: dict[str, Normalization]
    table: pd.DataFrame
    settings: dict = field(default_factory=dict)

    @property
    def has_gold(self) -> bool:
        return GOLD in self.matrices

    @property
    def ranking(self) -> list[str]:
        """RM names from the predicted best teacher to the worst."""
        ranked = self.table.dropna(subset=["predicted_rank"]).sort_values("predicted_rank")
        return ranked["rm"].tolist()


def predicted_ranking(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of a Table 1-style frame (columns rm, reward_variance, onpolicy_accuracy and
    onpolicy_accuracy_untied) with `teacher_score` and `predicted_rank` added and rows sorted best
    first, the gold row last.

    The score is (reward_variance + on-policy accuracy) / 2 when on-policy accuracies are known
    and reward_variance otherwise (see the module docstring); the accuracy is the untied one when
    the gold ties more than `UNTIED_ABOVE` of the sample pairs (attribute gold_tie_fraction) and
    leaves untied pairs to measure it on, the paper's tie-rule one otherwise. Ties share the
    better rank."""
    table = table.copy()
    candidates = table["rm"] != GOLD
    untied = (
        table.attrs.get("gold_tie_fraction", 0.0) > UNTIED_ABOVE
        and "onpolicy_accuracy_untied" in table
        and bool(table.loc[candidates, "onpolicy_accuracy_untied"].notna().all())
    )
    use_accuracy = (
        bool(table.loc[candidates, "onpolicy_accuracy"].notna().any())
        if "onpolicy_accuracy" in table
        else False
    )
    score = table["reward_variance"]
    if use_accuracy:
        column = "onpolicy_accuracy_untied" if untied else "onpolicy_accuracy"
        score = (table["reward_variance"] + table[column]) / 2
    table["teacher_score"] = score.where(candidates)
    ranks = table["teacher_score"].rank(ascending=False, method="min")
    table["predicted_rank"] = ranks.astype("Int64")
    table = table.sort_values(["predicted_rank", "rm"], na_position="last", kind="stable")
    predictor = ("combined_untied" if untied else "combined") if use_accuracy else "variance"
    attrs = dict(table.attrs)
    table = table.reset_index(drop=True)
    table.attrs.update(attrs, predictor=predictor)
    return table


def rm_rows(
    matrices: dict[str, np.ndarray],
    offpolicy_matrices: dict[str, np.ndarray] | None = None,
    offpolicy_gold: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, Normalization]]:
    """(Table 1-style frame, normalisations) from raw [P, n] matrices; on-policy accuracies are
    against matrices['gold'] when present, off-policy ones (NaN for an RM without off-policy
    scores) compare each RM's [M, 2] scores of fixed pairs with the pairs' gold scores, as in
    rm_eval.rm_table."""
    gold = matrices.get(GOLD)
    rows, norms = [], {}
    for name, raw in matrices.items():
        norms[name] = Normalization.from_rewards(raw)
        row = {"rm": name, **onpolicy_properties(raw, norms[name](raw), gold)}
        off = (offpolicy_matrices or {}).get(name)
        if off is not None and offpolicy_gold is not None:
            row["offpolicy_accuracy"] = accuracy(off, offpolicy_gold)
            row["offpolicy_accuracy_untied"] = untied_accuracy(off, offpolicy_gold)
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=TABLE1_COLUMNS)
    if gold is not None:
        table.attrs["gold_tie_fraction"] = gold_tie_fraction(gold)
    return table, norms


def evaluate_rewards_on_policy(
    policy_spec: str,
    reward_specs: dict[str, object],
    gold_spec: object | None,
    prompts: list[str],
    n_samples: int = 10,
    seed: int = 0,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    *,
    offpolicy: tuple[list[str], list[list[str]], np.ndarray] | None = None,
    progress: bool = True,
) -> PolicyReport:
    """Sample `n_samples` responses per prompt from the policy (chat template, temperature
    `temperature`, no top-k/top-p, seeded), score them with every reward in `reward_specs`
    ({table name: spec}, see rewards.registry; an already loaded reward or any callable
    f(prompts, responses) also works, so a notebook can load RMs once for several policies) and
    with `gold_spec` (or None), and measure each RM as in Table 1. `offpolicy` = (prompts, [M][2]
    response pairs, [M, 2] gold scores), as rm_eval.rm_table takes them, adds off-policy
    accuracies (the ranking still uses on-policy accuracy only).

    Inputs are checked first (ReportInputError, one line), and every reward that is cheap to
    load (a scorer, a plug-in function, a callable) is probed on two responses before the policy
    samples anything. Uses CUDA when present; the policy is released before the RMs are loaded,
    and each RM after it has scored."""
    check_report_inputs(
        policy_spec, reward_specs, gold_spec, prompts, n_samples, max_new_tokens, temperature
    )
    if offpolicy is not None:
        _check_offpolicy(*offpolicy)
    rewards = dict(reward_specs)
    if gold_spec is not None:
        rewards[GOLD] = gold_spec
    light = probe_light_rewards(rewards, prompts)

    steps = tqdm(
        total=1 + len(rewards),
        desc="sampling",
        file=sys.stderr,
        disable=not progress,
        mininterval=1.0,
        bar_format="{desc:<28} {bar:20} {n}/{total} [{elapsed}]",
    )
    model, tokenizer = load_policy(policy_spec, "--policy")
    responses = sample_responses(
        model,
        tokenizer,
        list(prompts),
        n_samples,
        seed=seed,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
    )
    del model
    _release(torch)
    steps.update()
    matrices, off_matrices = {}, {}
    for name, spec in rewards.items():
        steps.set_description_str(f"scoring {name}"[:28])
        what = "--gold" if name == GOLD else "--reward-model"
        reward = light[name] if name in light else load_reward(spec, name, what)
        matrices[name] = score_matrix(reward, list(prompts), responses)
        if offpolicy is not None:
            off_matrices[name] = score_matrix(reward, list(offpolicy[0]), offpolicy[1])
        del reward
        _release(torch)
        steps.update()
    steps.set_description_str("done")
    steps.close()
    table, norms = rm_rows(matrices, off_matrices, None if offpolicy is None else offpolicy[2])
    settings = {
        "policy": policy_spec,
        "n_prompts": len(prompts),
        "n_samples": n_samples,
        "seed": seed,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "rewards": {k: v if isinstance(v, str) else type(v).__name__ for k, v in rewards.items()},
    }
    ranked = predicted_ranking(table)
    ranked.attrs.update(table.attrs)
    return PolicyReport(policy_spec, list(prompts), responses, matrices, norms, ranked, settings)


PROBE_RESPONSES = ("Yes.", "I am not sure about that, to be honest.")


def probe_light_rewards(rewards: dict[str, object], prompts: list[str]) -> dict[str, object]:
    """Load every reward that needs no model weights (a registered scorer, a `module:function`
    spec, a callable or a loaded Reward) and score two fixed responses to the first prompt, so a
    plug-in that raises, returns the wrong number of scores or a non-finite score stops the
    report (ReportInputError naming it) before the policy samples. Model-backed RMs are loaded
    one at a time after sampling, as before; their specs were checked by check_report_inputs.
    Returns {name: loaded reward} for the probed ones."""

    loaded = {}
    for name, spec in rewards.items():
        what = "--gold" if name == GOLD else "--reward-model"
        if isinstance(spec, str):
            if loads_a_model(spec):
                continue  # loading it now would hold it beside the policy
            reward = load_reward(spec, name, what)
        else:  # a loaded reward or a callable: wrap it for the shape and finiteness checks
            reward = spec if isinstance(spec, Reward) else Reward(name, spec)
        try:
            reward([prompts[0]] * len(PROBE_RESPONSES), list(PROBE_RESPONSES))
        except RewardError as err:
            raise ReportInputError(f"{what} {name}: {err} (probe before sampling)") from None
        loaded[name] = reward
    return loaded


def _check_offpolicy(prompts, pairs, gold) -> None:
    shape = np.shape(gold)
    if not (len(prompts) == len(pairs) == shape[0] > 0 and shape[1:] == (2,)):
        raise ReportInputError(
            f"offpolicy: expected M prompts, M response pairs and [M, 2] gold scores, got "
            f"{len(prompts)}, {len(pairs)} and {shape}"
        )
    if any(len(pair) != 2 for pair in pairs):
        raise ReportInputError("offpolicy: every response pair must hold two responses")


def _release(torch) -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
