"""The paper's published numbers (Razin et al., 2025, NeurIPS camera-ready), in one place for the
analysis code, the notebooks and the tests alike. Nothing here is computed.

Section 4.1 uses Pythia-2.8B with ArmoRM as r_G; Tables 10 and 12 use ~1B policies and four
public RMs (columns GRM-Gemma-2-2B, GRM-Llama-3.2-3B, RM-Tulu-V2-8B, RM-Gemma-2B).
"""

from __future__ import annotations

import pandas as pd

# Table 1: reward variance, on-policy accuracy, off-policy accuracy of each RM under the initial
# policy (the five on-policy mixes, the perfect-accuracy RM and r_G itself).
TABLE1 = {
    "rm_onpolicy_100": (0.630, 0.660, 0.630),
    "rm_onpolicy_75": (0.616, 0.656, 0.732),
    "rm_onpolicy_50": (0.555, 0.640, 0.758),
    "rm_onpolicy_25": (0.438, 0.616, 0.754),
    "rm_onpolicy_0": (0.314, 0.587, 0.762),
    "perfect": (0.111, 1.0, 1.0),
    "gold": (0.256, 1.0, 1.0),
}
TABLE1_COLUMNS = ("reward_variance", "onpolicy_accuracy", "offpolicy_accuracy")

# Table 2: correlation of each RM property with the increase after one epoch, over n = 6 RMs (the
# mixes and the perfect RM): (proxy Pearson, proxy Spearman, r_G Pearson, r_G Spearman).
TABLE2 = {
    "reward_variance": (0.982, 1.000, 0.834, 0.714),
    "onpolicy_accuracy": (-0.762, 0.143, -0.283, 0.200),
    "offpolicy_accuracy": (-0.933, -0.943, -0.507, -0.543),
    "accuracy_mean": (-0.870, -0.486, -0.397, 0.200),
    "variance_and_accuracy": (0.676, 0.886, 0.940, 0.828),
}
TABLE2_CELLS = ("proxy_pearson", "proxy_spearman", "gold_pearson", "gold_spearman")

# Table 9 (Pythia-1B, normalisation by the root mean per-prompt variance): the cells the paper's
# text reports, None where it does not.
TABLE9 = {
    "reward_variance": (0.936, 0.943, 0.279, 0.314),
    "onpolicy_accuracy": (None, None, None, None),
    "offpolicy_accuracy": (None, None, None, None),
    "accuracy_mean": (None, None, None, None),
    "variance_and_accuracy": (None, None, 0.808, 0.714),
}

TABLE10_RMS = ("GRM-Gemma-2-2B", "GRM-Llama-3.2-3B", "RM-Tulu-V2-8B", "RM-Gemma-2B")

# Table 10 (RLOO): per policy, per RM in TABLE10_RMS order: (r_G increase, proxy increase,
# reward variance, on-policy accuracy, off-policy accuracy).
TABLE10 = {
    "Pythia-1B SFT": (
        (0.176, 0.322, 0.405, 0.700, 0.802),
        (0.148, 0.272, 0.528, 0.700, 0.838),
        (0.173, 0.457, 0.544, 0.705, 0.860),
        (0.108, 0.474, 0.549, 0.639, 0.800),
    ),
    "Llama-3.2-1B SFT": (
        (0.280, 0.487, 0.500, 0.716, 0.802),
        (0.278, 0.484, 0.562, 0.737, 0.838),
        (0.320, 0.743, 0.600, 0.737, 0.860),
        (0.274, 0.898, 0.644, 0.676, 0.800),
    ),
    "Llama-3.2-1B-Instruct": (
        (0.105, 0.194, 0.261, 0.731, 0.802),
        (0.124, 0.232, 0.323, 0.758, 0.838),
        (0.097, 0.213, 0.299, 0.751, 0.860),
        (0.101, 0.339, 0.336, 0.647, 0.800),
    ),
}

# Table 12 (GRPO on the Table 10 policies): per RM (r_G increase, proxy increase).
TABLE12 = {
    "Pythia-1B SFT": ((0.131, 0.296), (0.067, 0.229), (0.101, 0.430), (0.080, 0.477)),
    "Llama-3.2-1B SFT": ((0.290, 0.514), (0.281, 0.522), (0.274, 0.796), (0.279, 1.028)),
    "Llama-3.2-1B-Instruct": ((0.150, 0.230), (0.159, 0.283), (0.139, 0.336), (0.140, 0.498)),
}


def table1_frame():
    """Table 1 as a DataFrame with columns rm and paper_<column>."""

    return pd.DataFrame(
        [(rm, *values) for rm, values in TABLE1.items()],
        columns=["rm", *(f"paper_{c}" for c in TABLE1_COLUMNS)],
    )


def table2_frame(table: dict = TABLE2):
    """Table 2 (or Table 9) as a DataFrame indexed by property, columns paper_<cell>."""

    return pd.DataFrame(table, index=[f"paper_{c}" for c in TABLE2_CELLS]).T


def table10_text():
    """Table 10 as policy x RM cells 'r_G increase | proxy increase | variance | on-policy acc. |
    off-policy acc.', the layout of sec42_report's own table."""
    rows = {
        policy: {
            rm: " | ".join(f"{v:.3f}" for v in values)
            for rm, values in zip(TABLE10_RMS, cells, strict=True)
        }
        for policy, cells in TABLE10.items()
    }
    return pd.DataFrame(rows).T


def table1_values() -> dict[str, float]:
    """Table 1 as flat {paper_<rm>_<column>: value}, the names the book quotes them by."""
    return {
        f"paper_{rm}_{column}": value
        for rm, values in TABLE1.items()
        for column, value in zip(TABLE1_COLUMNS, values, strict=True)
    }
