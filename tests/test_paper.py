"""The paper's numbers as transcribed in rmteacher.paper agree with what the paper's text says
about them (a wrong digit in a winner, a sign or a row would break one of these)."""

import numpy as np
import pytest

from rmteacher import paper


def test_table2_spearman_values_come_from_six_rms():
    """With n = 6 RMs every Spearman correlation is a multiple of 1/35 (to the paper's three
    decimals; 0.828 is 29/35 = 0.8286 truncated)."""
    for prop, (_, proxy_s, _, gold_s) in paper.TABLE2.items():
        for value in (proxy_s, gold_s):
            assert abs(value * 35 - round(value * 35)) < 0.036, prop


def test_table1_variance_falls_with_the_offpolicy_share_and_the_perfect_rm_is_lowest():
    mixes = [paper.TABLE1[f"rm_onpolicy_{p}"][0] for p in (100, 75, 50, 25, 0)]
    assert mixes == sorted(mixes, reverse=True)
    assert paper.TABLE1["perfect"][0] == min(v[0] for v in paper.TABLE1.values())
    assert paper.TABLE1["perfect"][1:] == paper.TABLE1["gold"][1:] == (1.0, 1.0)


@pytest.mark.parametrize(
    "policy, best",
    [
        ("Pythia-1B SFT", "GRM-Gemma-2-2B"),
        ("Llama-3.2-1B SFT", "RM-Tulu-V2-8B"),
        ("Llama-3.2-1B-Instruct", "GRM-Llama-3.2-3B"),
    ],
)
def test_table10_best_rm_per_policy_as_the_paper_states(policy, best):
    gold = [cell[0] for cell in paper.TABLE10[policy]]
    assert paper.TABLE10_RMS[int(np.argmax(gold))] == best


def test_table10_rm_gemma_has_the_highest_variance_everywhere_and_offpolicy_is_shared():
    for cells in paper.TABLE10.values():
        variances = [cell[2] for cell in cells]
        assert paper.TABLE10_RMS[int(np.argmax(variances))] == "RM-Gemma-2B"
    offpolicy = {tuple(cell[4] for cell in cells) for cells in paper.TABLE10.values()}
    assert offpolicy == {(0.802, 0.838, 0.860, 0.800)}


def test_table12_grpo_winners():
    winners = {
        policy: paper.TABLE10_RMS[int(np.argmax([cell[0] for cell in cells]))]
        for policy, cells in paper.TABLE12.items()
    }
    assert winners == {
        "Pythia-1B SFT": "GRM-Gemma-2-2B",
        "Llama-3.2-1B SFT": "GRM-Gemma-2-2B",
        "Llama-3.2-1B-Instruct": "GRM-Llama-3.2-3B",
    }


def test_frames_carry_the_tables():
    assert (
        paper.table1_frame().set_index("rm").loc["rm_onpolicy_50", "paper_reward_variance"] == 0.555
    )
    assert paper.table2_frame().loc["variance_and_accuracy", "paper_gold_pearson"] == 0.940
    text = paper.table10_text()
    assert text.loc["Pythia-1B SFT", "GRM-Gemma-2-2B"].startswith("0.176 | 0.322")
