"""Tables 10 and 12 analogs: for every initial policy x reward model, the RM's properties on that
policy and the increases its policy-gradient runs achieve; the best RM of each policy and whether
reward variance and accuracy predict it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rmteacher.metrics.rm_metrics import correlation, gold_tie_fraction

PREDICTORS = {
    "reward_variance": "reward variance",
    "onpolicy_accuracy": "on-policy accuracy (tie rule)",
    "onpolicy_accuracy_untied": "on-policy accuracy (untied)",
    "offpolicy_accuracy": "off-policy accuracy",
    "variance_and_accuracy": "variance & accuracy (Table 2's combined measure)",
    "teacher_score": "rmteacher report's teacher score",
}


def with_combined_measure(properties: pd.DataFrame) -> pd.DataFrame:
    """Adds Table 2's combined measure: the mean of reward variance and the mean of on- and
    off-policy accuracy (on-policy alone for an RM without off-policy pairs, such as the
    controlled family)."""
    accuracy_mean = properties[["onpolicy_accuracy", "offpolicy_accuracy"]].mean(axis=1)
    return properties.assign(variance_and_accuracy=(properties.reward_variance + accuracy_mean) / 2)


def final_increases(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of the proxy and r_G increase at each run's last evaluation,
    per (policy, variant, rm)."""
    last = curves[
        curves.step == curves.groupby(["policy", "variant", "rm", "seed"]).step.transform("max")
    ]
    stats = last.groupby(["policy", "variant", "rm"])[["gold_increase", "proxy_increase"]].agg(
        ["mean", "std"]
    )
    stats.columns = [f"{col}_{stat}" for col, stat in stats.columns]
    return stats.reset_index()


def policy_rm_table(properties: pd.DataFrame, increases: pd.DataFrame) -> pd.DataFrame:
    """One row per policy x RM (x variant): properties on that policy beside the increases."""
    props = with_combined_measure(properties)
    return props.merge(increases, on=["policy", "rm"], how="inner")


def best_rm_summary(table: pd.DataFrame, variant: str = "rloo") -> pd.DataFrame:
    """Per policy: the RM with the largest mean r_G increase, the RM each predictor would pick
    (its largest value), and the Spearman correlation of each predictor with the r_G increase
    over that policy's RMs."""
    rows = []
    for policy, group in table[table.variant == variant].groupby("policy", sort=False):
        group = group.set_index("rm")
        row = {
            "policy": policy,
            "best_rm": group.gold_increase_mean.idxmax(),
            "best_gold_increase": float(group.gold_increase_mean.max()),
        }
        for predictor in PREDICTORS:
            row[f"picked_by_{predictor}"] = group[predictor].idxmax()
            row[f"spearman_{predictor}"] = (
                correlation(group[predictor], group.gold_increase_mean)[1]
                if len(group) >= 3
                else float("nan")
            )
        rows.append(row)
    summary = pd.DataFrame(rows)
    for predictor in PREDICTORS:
        summary[f"{predictor}_picks_best"] = summary[f"picked_by_{predictor}"] == summary.best_rm
    return summary


def variance_effect(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant: Pearson and Spearman correlation, over all policy x RM cells, of the reward
    variance with the proxy increase. RLOO and unscaled GRPO should show the paper's positive
    relation; GRPO with per-group std scaling removes the reward's scale and with it the effect."""
    rows = []
    for variant, group in table.groupby("variant", sort=False):
        pearson, spearman = (
            correlation(group.reward_variance, group.proxy_increase_mean)
            if len(group) >= 3
            else (np.nan, np.nan)
        )
        rows.append(
            {
                "variant": variant,
                "variance_proxy_pearson": pearson,
                "variance_proxy_spearman": spearman,
            }
        )
    return pd.DataFrame(rows)


def best_rm_bootstrap(curves: pd.DataFrame, variant: str, n_boot: int, seed: int) -> pd.DataFrame:
    """How sure the best RM is: per policy, the fraction of bootstrap resamples (each RM's seeds
    drawn with replacement) in which each RM has the largest mean final r_G increase."""
    rng = np.random.default_rng(seed)
    runs = curves[curves.variant == variant]
    last = runs[runs.step == runs.groupby(["policy", "rm", "seed"]).step.transform("max")]
    rows = []
    for policy, group in last.groupby("policy", sort=False):
        per_rm = {rm: g.gold_increase.to_numpy() for rm, g in group.groupby("rm")}
        names = list(per_rm)
        wins = np.zeros(len(names))
        for _ in range(n_boot):
            means = [rng.choice(v, size=len(v), replace=True).mean() for v in per_rm.values()]
            wins[int(np.argmax(means))] += 1
        rows.extend(
            {"policy": policy, "rm": rm, "best_fraction": w / n_boot}
            for rm, w in zip(names, wins, strict=True)
        )
    return pd.DataFrame(rows)


def rm_tie_fractions(cells: pd.DataFrame, eval_dir) -> pd.DataFrame:
    """For each (policy, rm) cell: the fraction of sample pairs of a prompt to which the RM gives
    equal rewards, from `eval_dir/<policy>/rewards_<rm>.npy` (sec42_eval's [prompts, samples]
    matrices). With k = 2 a tied pair is a group with zero advantage."""
    pairs = cells[["policy", "rm"]].drop_duplicates()
    return pd.DataFrame(
        [
            {
                "policy": policy,
                "rm": rm,
                "rm_tie_fraction": gold_tie_fraction(
                    np.load(Path(eval_dir) / policy / f"rewards_{rm}.npy")
                ),
            }
            for policy, rm in pairs.itertuples(index=False)
        ]
    )


def final_runs(curves: pd.DataFrame, variant: str = "rloo") -> pd.DataFrame:
    """One row per run of `variant` at its last evaluation: policy, rm, seed, increases."""
    runs = curves[curves.variant == variant]
    last = runs.step == runs.groupby(["policy", "rm", "seed"]).step.transform("max")
    return runs[last][["policy", "rm", "seed", "gold_increase", "proxy_increase"]]


def best_against_runner_up(runs: pd.DataFrame) -> pd.DataFrame:
    """Per policy: the RM with the largest mean r_G increase, the runner-up, and the Welch
    95 % interval and p-value of their difference (seeds as replicates)."""
    from scipy import stats

    rows = []
    for policy, group in runs.groupby("policy", sort=False):
        means = group.groupby("rm").gold_increase.mean().sort_values(ascending=False)
        best, second = means.index[0], means.index[1]
        a = group[group.rm == best].gold_increase.to_numpy()
        b = group[group.rm == second].gold_increase.to_numpy()
        test = stats.ttest_ind(a, b, equal_var=False)
        low, high = test.confidence_interval(0.95)
        rows.append(
            {
                "policy": policy,
                "best_rm": best,
                "runner_up": second,
                "difference": float(a.mean() - b.mean()),
                "low": float(low),
                "high": float(high),
                "p_welch": float(test.pvalue),
            }
        )
    return pd.DataFrame(rows)


def interaction_test(runs: pd.DataFrame) -> dict:
    """Two-way ANOVA of the r_G increase on policy and RM with seeds as replicates: the F-test of
    the policy x RM interaction (does the ranking of RMs change with the policy?). Cells may
    have unequal seed counts; sums of squares are the standard ones for balanced cells."""
    from scipy import stats

    y = runs.gold_increase.to_numpy()
    grand = y.mean()
    cell = runs.groupby(["policy", "rm"]).gold_increase
    cell_mean = cell.transform("mean").to_numpy()
    policy_mean = runs.groupby("policy").gold_increase.transform("mean").to_numpy()
    rm_mean = runs.groupby("rm").gold_increase.transform("mean").to_numpy()
    n_policy, n_rm = runs.policy.nunique(), runs.rm.nunique()
    ss_interaction = float(((cell_mean - policy_mean - rm_mean + grand) ** 2).sum())
    ss_error = float(((y - cell_mean) ** 2).sum())
    df_interaction = (n_policy - 1) * (n_rm - 1)
    df_error = len(y) - n_policy * n_rm
    if df_interaction <= 0 or df_error <= 0 or ss_error == 0:
        return {
            "interaction_f": float("nan"),
            "interaction_p": float("nan"),
            "interaction_df": df_interaction,
            "error_df": df_error,
        }
    f = (ss_interaction / df_interaction) / (ss_error / df_error)
    return {
        "interaction_f": float(f),
        "interaction_p": float(stats.f.sf(f, df_interaction, df_error)),
        "interaction_df": df_interaction,
        "error_df": df_error,
    }


def predictor_correlations(
    table: pd.DataFrame, runs: pd.DataFrame, predictors, n_boot: int, seed: int
) -> pd.DataFrame:
    """Per policy and predictor: Spearman correlation over the policy's RMs between the
    predictor (measured before training) and the mean r_G increase, with a 95 % interval from
    resampling each cell's seeds."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    rows = []
    for policy, group in runs.groupby("policy", sort=False):
        props = table[table.policy == policy].set_index("rm")
        cells = {rm: g.gold_increase.to_numpy() for rm, g in group.groupby("rm")}
        rms = [rm for rm in cells if rm in props.index]
        if len(rms) < 3:
            continue
        means = np.array([cells[rm].mean() for rm in rms])
        draws = np.array(
            [[rng.choice(cells[rm], len(cells[rm])).mean() for rm in rms] for _ in range(n_boot)]
        )
        for predictor in predictors:
            x = props.loc[rms, predictor].to_numpy(dtype=float)
            if np.ptp(x) == 0:
                continue
            value = float(stats.spearmanr(x, means)[0])
            boot = [stats.spearmanr(x, d)[0] for d in draws if np.ptp(d) > 0]
            boot = [b for b in boot if np.isfinite(b)]  # (all undefined: no interval, no warning)
            low, high = np.nanquantile(boot, [0.025, 0.975]) if boot else (np.nan, np.nan)
            rows.append(
                {
                    "policy": policy,
                    "predictor": predictor,
                    "spearman": value,
                    "low": float(low),
                    "high": float(high),
                }
            )
    return pd.DataFrame(rows)


def ranking_agreement(
    predicted: pd.DataFrame, runs: pd.DataFrame, n_boot: int, seed: int
) -> pd.DataFrame:
    """How well a predicted teacher ranking (policy, rm, predicted_rank; 1 = best) matches the
    realised RLOO ranking by mean r_G increase: per policy, Spearman between predicted and
    realised ranks with a seed-bootstrap 95 % interval, and whether the predicted best RM is the
    realised best (top-1 hit)."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    rows = []
    for policy, group in runs.groupby("policy", sort=False):
        ranks = predicted[predicted.policy == policy].set_index("rm").predicted_rank.astype(float)
        cells = {
            rm: g.gold_increase.to_numpy() for rm, g in group.groupby("rm") if rm in ranks.index
        }
        rms = list(cells)
        if len(rms) < 3:
            continue
        means = np.array([cells[rm].mean() for rm in rms])
        score = -ranks.loc[rms].to_numpy()  # higher = predicted better
        value = float(stats.spearmanr(score, means)[0])
        boot = [
            stats.spearmanr(score, [rng.choice(cells[rm], len(cells[rm])).mean() for rm in rms])[0]
            for _ in range(n_boot)
        ]
        low, high = np.nanquantile(boot, [0.025, 0.975])
        rows.append(
            {
                "policy": policy,
                "spearman": value,
                "low": float(low),
                "high": float(high),
                "predicted_best": rms[int(np.argmax(score))],
                "realised_best": rms[int(np.argmax(means))],
                "top1_hit": rms[int(np.argmax(score))] == rms[int(np.argmax(means))],
            }
        )
    return pd.DataFrame(rows)


def variance_difference_draws(
    a: np.ndarray, b: np.ndarray, n_boot: int, seed: int
) -> tuple[float, np.ndarray]:
    """(reward variance of a - that of b, bootstrap draws of it) for two RMs' raw [P, n]
    matrices on one policy's samples: prompts resampled together for both (paired), each RM's
    normalisation refitted on every draw."""
    from rmteacher.metrics.rm_metrics import reward_variance
    from rmteacher.rewards.normalize import Normalization

    def variance(raw):
        return reward_variance(Normalization.from_rewards(raw)(raw))

    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for i in range(n_boot):
        rows = rng.integers(0, len(a), len(a))
        draws[i] = variance(a[rows]) - variance(b[rows])
    return variance(a) - variance(b), draws


def ordering_flips(matrices: dict[str, dict[str, np.ndarray]], n_boot: int, seed: int):
    """Theorem 6's manipulation check on measured RMs: for every two RMs (a, b) and two policies
    (p, q), the variance difference d = var(a) - var(b) on each policy, its paired-bootstrap
    noise (std), and the flip strength min(d_p / noise_p, -d_q / noise_q) - positive when a is
    above b on p and below on q, and >= 2 when both gaps exceed twice their noise.
    `matrices[policy][rm]` are raw [P, n] reward matrices on that policy's own samples. One row
    per flip (a before b by name, a above b on p and below on q: each flip once), strongest
    first."""
    policies = list(matrices)
    rms = sorted(set.intersection(*(set(m) for m in matrices.values())))
    rms = [rm for rm in rms if rm != "gold"]
    diffs = {}
    for p in policies:
        for i, a in enumerate(rms):
            for b in rms[i + 1 :]:
                d, draws = variance_difference_draws(matrices[p][a], matrices[p][b], n_boot, seed)
                diffs[(p, a, b)] = (d, float(draws.std()))
                diffs[(p, b, a)] = (-d, float(draws.std()))
    rows = []
    for p in policies:
        for q in policies:
            for a in rms:
                for b in rms:
                    if p == q or a >= b or (p, a, b) not in diffs:
                        continue
                    (dp, sp), (dq, sq) = diffs[(p, a, b)], diffs[(q, a, b)]
                    if dp > 0 > dq:
                        rows.append(
                            {
                                "rm_a": a,
                                "rm_b": b,
                                "policy_a_above": p,
                                "policy_a_below": q,
                                "difference_on_p": dp,
                                "noise_on_p": sp,
                                "difference_on_q": dq,
                                "noise_on_q": sq,
                                "flip_strength": min(dp / sp, -dq / sq),
                            }
                        )
    columns = [
        "rm_a", "rm_b", "policy_a_above", "policy_a_below", "difference_on_p", "noise_on_p",
        "difference_on_q", "noise_on_q", "flip_strength",
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("flip_strength", ascending=False, ignore_index=True)


def sec42_checks(table: pd.DataFrame, flips: pd.DataFrame, params) -> pd.DataFrame:
    """Section 4.2's manipulation checks, before any policy gradient (rows check, what,
    requirement, value, passed, like rm_eval's): does some RM's variance differ across
    policies beyond its noise, does the ordering of two RMs by variance flip across policies
    beyond twice the noise of each gap (Theorem 6's construction), and does r_G tie few of
    each policy's sample pairs. `table`: sec42_eval's per policy x RM rows (reward_variance,
    variance_noise, gold_tie_fraction)."""
    proxies = table[table.rm != "gold"]
    spread = proxies.groupby("rm").agg(
        lowest=("reward_variance", "min"),
        highest=("reward_variance", "max"),
        noise=("variance_noise", "max"),
    )
    separation = ((spread.highest - spread.lowest) / spread.noise).max()
    best = float(flips.flip_strength.iloc[0]) if len(flips) else float("nan")
    ties = float(table.groupby("policy").gold_tie_fraction.first().max())
    need = params.check_flip_strength
    rows = [
        (
            "variance_differs",
            "largest (highest - lowest variance across policies) / noise over the RMs",
            f">= {need:g}",
            float(separation),
            bool(separation >= need),
        ),
        (
            "ordering_flip",
            "strongest flip of two RMs' variance order across two policies: min over the two "
            "policies of gap / paired-bootstrap noise"
            + (
                f" ({flips.rm_a.iloc[0]} above {flips.rm_b.iloc[0]} on "
                f"{flips.policy_a_above.iloc[0]}, below on {flips.policy_a_below.iloc[0]})"
                if len(flips)
                else " (no flip)"
            ),
            f">= {need:g}",
            best,
            bool(best >= need),
        ),
        (
            "gold_ties",
            "largest share of a policy's sample pairs r_G ties",
            f"<= {params.check_gold_ties:g}",
            ties,
            bool(ties <= params.check_gold_ties),
        ),
    ]
    return pd.DataFrame(rows, columns=["check", "what", "requirement", "value", "passed"])
