"""One label map for the whole book: the code names of columns, RMs, policies, variants and
sweep levels, as a reader should see them in tables, legends and axis labels.

    label("rm_onpolicy_75")      # 'mix 75 % on-policy'
    label("fam_n0.5_c0.3")       # 'family η = 0.5, c = 0.3'
    label("kl")                  # 'KL to the initial policy (nats)'
    label("y_gamma first")       # 'y_γ first'

Labels are plain Unicode; `$...$` marks TeX that matplotlib renders (e.g. `$r_G$`) and that
`html_label` turns into HTML for tables. A name the map does not know is shown with its
underscores as spaces, so a new column is readable before anyone adds it here.
"""

from __future__ import annotations

import html
import re

R_G = "$r_G$"

LABELS: dict[str, str] = {
    # reward models (Section 4.1 controls and off-the-shelf scorers)
    "gold": R_G,
    "perfect": "perfect RM (shifted)",  # r_G shifted, scaled down on half the prompts
    "perfect_unshifted": "perfect RM (unshifted)",
    "afinn": "AFINN",
    "textblob": "TextBlob",
    "vader": "VADER",
    "minilm_sentiment": "MiniLM sentiment",
    "length": "length",
    # initial policies (Section 4.2) and algorithm variants
    "sft": "SFT",
    "sft_austen": "SFT on Austen",
    "sft_quotes": "SFT on quotations",
    "rloo": "RLOO",
    "grpo": "GRPO",
    "grpo_group": "GRPO, per-group std scaling",
    "main": "main runs",
    "beta0": "β = 0",
    "noclip": "no gradient clipping",
    "adam": "Adam",
    "sgd": "SGD",
    # theory sweeps
    "tabular": "tabular",
    "shared_mlp": "shared MLP",
    "prefix_table": "prefix table",
    "top_step": "top step",
    "all_prompts": "all prompts scaled",
    "one_prompt": "one prompt scaled",
    "rarity": "rarity sweep",
    "y_gamma first": "y_γ first",
    "alpha = 1": "α = 1",
    "pi in Pi (likes y_gamma)": "π ∈ Π (likes y_γ)",
    "pi' in Pi' (likes y'_gamma)": "π′ ∈ Π′ (likes y′_γ)",
    "pi with r": "π with r",
    "pi with r'": "π with r′",
    "pi' with r": "π′ with r",
    "pi' with r'": "π′ with r′",
    "reversed r_G": f"reversed {R_G}",
    "base_t0.7": "base LM, temperature 0.7",
    "base_t1": "base LM, temperature 1",
    "base_t1.3": "base LM, temperature 1.3",
    "corpus": "corpus continuation",
    # columns: RM properties
    "rm": "RM",
    "policy": "policy",
    "variant": "variant",
    "seed": "seed",
    "seeds": "seeds",
    "reward_variance": "reward variance",
    "onpolicy_accuracy": "on-policy accuracy",
    "onpolicy_accuracy_untied": "on-policy accuracy (untied)",
    "offpolicy_accuracy": "off-policy accuracy",
    "offpolicy_accuracy_untied": "off-policy accuracy (untied)",
    "heldout_on_accuracy_untied": "held-out on-policy pairs",
    "heldout_off_accuracy_untied": "held-out off-policy pairs",
    "accuracy_mean": "on- & off-policy accuracy",
    "variance_and_accuracy": "reward variance & accuracy",
    "teacher_score": "teacher score",
    "predicted_rank": "predicted rank",
    "realised_rank": "realised rank",
    "gold_tie_fraction": f"{R_G} ties (share of pairs)",
    "rm_tie_fraction": "RM ties (share of pairs)",
    "variance_noise": "variance noise (bootstrap std)",
    "raw": "raw reward",
    "raw_mean": "raw mean",
    "raw_std": "raw std",
    "raw_per_prompt_variance": "raw per-prompt variance",
    "eta": "rank noise η",
    "compression": "compression c",
    # columns: policy-gradient outcomes
    "gold_increase": f"{R_G} increase",
    "gold_increase_mean": f"{R_G} increase",
    "gold_increase_std": f"{R_G} increase, std",
    "proxy_increase": "proxy increase",
    "proxy_increase_mean": "proxy increase",
    "proxy_increase_std": "proxy increase, std",
    "gold_at_kl": f"{R_G} increase at the matched KL",
    "kl": "KL to the initial policy (nats)",
    "vader_change": "VADER change (raw)",
    "grad_norm": "gradient norm",
    "within_group_variance": "within-group variance",
    "learning_rate": "learning rate",
    "epoch": "epoch",
    "step": "step",
    "proxy_raw": "RM score (raw)",
    "gold_raw": f"{R_G} score (raw)",
    "response": "response",
    "prompt": "prompt",
    "when": "when",
    "mean_words": "mean length (words)",
    "distinct_word_ratio": "distinct-word ratio",
    "gold_mean": f"mean {R_G}",
    "gold_zero_fraction": f"share with {R_G} = 0",
    "gold_within_prompt_std": f"within-prompt std of {R_G}",
    # columns: checks, claims and statistics
    "check": "check",
    "what": "what it measures",
    "requirement": "requirement",
    "passed": "result",
    "claim": "claim",
    "verdict": "verdict",
    "value": "value",
    "statistic": "statistic",
    "property": "RM property",
    "predictor": "predictor",
    "spearman": "Spearman",
    "pearson": "Pearson",
    "proxy_pearson": "proxy, Pearson",
    "proxy_spearman": "proxy, Spearman",
    "gold_pearson": f"{R_G}, Pearson",
    "gold_spearman": f"{R_G}, Spearman",
    "t_gamma": "$t_\\gamma$",
    "variance": "reward variance",
    "accuracy": "accuracy",
}

# rm_onpolicy_75 -> mix 75 % on-policy; fam_n0.5_c0.3 -> family η = 0.5, c = 0.3
_MIX = re.compile(r"^rm_onpolicy_(\d+)$")
_FAMILY = re.compile(r"^fam_n([\d.]+)_c([\d.]+)$")
_TEX_SUB = re.compile(r"\$([A-Za-z])_\{?([A-Za-z0-9\\]+)\}?\$")
_TEX = {"\\gamma": "γ", "\\alpha": "α", "\\beta": "β", "\\eta": "η", "\\lambda": "λ"}


def label(name) -> str:
    """The reader's label of a code name (str() of anything else, e.g. a number)."""
    if isinstance(name, bool):
        return "yes" if name else "no"
    text = str(name)
    if text in LABELS:
        return LABELS[text]
    if match := _MIX.match(text):
        return f"mix {match[1]} % on-policy"
    if match := _FAMILY.match(text):
        return f"family η = {match[1]}, c = {match[2]}"
    if text.startswith("paper_") and text != "paper_":
        return f"{label(text.removeprefix('paper_'))} (paper)"
    if "$" in text:  # TeX a person wrote
        return text
    text = text.replace("y'_gamma", "y′_γ").replace("y_gamma", "y_γ").replace("r_G", R_G)
    if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", text):
        return text.replace("_", " ")
    return text


def plain_label(name) -> str:
    """`label` without TeX: `$r_G$` becomes r_G (for plain-text places such as dvc plots)."""
    return _untex(label(name), lambda base, sub: f"{base}_{sub}")


def html_label(name) -> str:
    """`label` as HTML: escaped, with `$r_G$` as r<sub>G</sub>."""
    text = html.escape(label(name), quote=False)
    return _untex(text, lambda base, sub: f"<i>{base}</i><sub>{sub}</sub>")


def _untex(text: str, sub) -> str:
    def replace(match):
        base, index = match[1], match[2]
        return sub(base, _TEX.get(index, index))

    text = _TEX_SUB.sub(replace, text)
    for tex, char in _TEX.items():
        text = text.replace(f"${tex}$", char)
    return text.replace("$", "")
