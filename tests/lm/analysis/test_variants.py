"""The reward-scaling summary (how much the increase moves between the extreme scales) and the
sign comparison of Table 2's statistics under two normalisations. The verdicts moved to
`rmteacher.verdicts` (issue 17): tests/verdicts/test_paired.py."""

import pandas as pd
import pytest

from rmteacher.lm.analysis.variants import scale_sensitivity


def test_scale_sensitivity_compares_the_extreme_scales():
    rows = []
    for optimizer, gains in (("adam", (0.30, 0.31, 0.29)), ("sgd", (0.01, 0.1, 0.9))):
        for scale, gain in zip((0.1, 1.0, 10.0), gains, strict=True):
            rows += [
                {
                    "optimizer": optimizer,
                    "scale": scale,
                    "step": 0,
                    "proxy_increase": 0.0,
                    "gold_increase": 0.0,
                },
                {
                    "optimizer": optimizer,
                    "scale": scale,
                    "step": 8,
                    "proxy_increase": gain,
                    "gold_increase": gain / 2,
                },
            ]
    effect = scale_sensitivity(pd.DataFrame(rows)).groupby("optimizer").scale_effect.first()
    assert effect["adam"] == pytest.approx(-0.01) and effect["sgd"] == pytest.approx(0.89)


def test_sign_comparison_separates_kept_reversed_and_undecided_statistics():
    from rmteacher.lm.analysis.variants import sign_comparison
    from rmteacher.verdicts.legacy import kept_survival
    from rmteacher.verdicts.rules import NOT_REPRODUCED, REPRODUCED, UNDECIDED

    survival_verdict = kept_survival  # the rule before issue 17, kept for deviation D8

    cells = ["proxy_pearson", "proxy_spearman", "gold_pearson", "gold_spearman"]
    index = ["reward_variance", "onpolicy_accuracy"]

    def frame(values):
        return pd.DataFrame([[v] * 4 for v in values], index=index, columns=cells)

    def boot(lows, highs):
        data = {}
        for cell in cells:
            data[f"{cell}_low"], data[f"{cell}_high"] = lows, highs
        return pd.DataFrame(data, index=index)

    standard, standard_boot = frame([0.8, -0.5]), boot([0.5, -0.9], [0.9, -0.1])
    # variance: kept (interval above 0); accuracy: its sign flips and the interval lies above 0
    signs = sign_comparison(
        standard, standard_boot, frame([0.6, 0.4]), boot([0.2, 0.1], [0.9, 0.7])
    )
    by = signs.set_index("property")
    assert by.loc["reward_variance"].kept.all() and not by.loc["reward_variance"].reversed.any()
    assert (
        by.loc["onpolicy_accuracy"].reversed.all()
        and not by.loc["onpolicy_accuracy"].same_sign.any()
    )
    assert survival_verdict(signs, ("reward_variance",)) == REPRODUCED
    assert survival_verdict(signs, ("onpolicy_accuracy",)) == NOT_REPRODUCED
    # an interval that straddles 0 decides nothing, whatever the point value's sign
    wide = sign_comparison(
        standard, standard_boot, frame([0.3, -0.2]), boot([-0.4, -0.6], [0.7, 0.3])
    )
    assert wide.same_sign.all() and not wide.kept.any() and not wide.reversed.any()
    assert survival_verdict(wide, ("reward_variance",)) == UNDECIDED
