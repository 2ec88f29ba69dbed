"""Preference pairs: the off-policy pair is r_G's best candidate against a random other one, and
every mix has exactly the requested number of usable pairs (no ties, no text too long)."""

import numpy as np
import pandas as pd
import pytest

from rmteacher.lm.rm.preferences import binarize, heldout_pairs, mix_pairs


def candidates(n=40, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "prompt": [f"p{i}" for i in range(n)],
            "on_a": [f"a{i}" for i in range(n)],
            "on_b": [f"b{i}" for i in range(n)],
            "off_corpus": [f"c{i}" for i in range(n)],
            "off_t1": [f"t{i}" for i in range(n)],
            "gold_on_a": rng.normal(size=n),
            "gold_on_b": rng.normal(size=n),
            "gold_off_corpus": rng.normal(size=n),
            "gold_off_t1": rng.normal(size=n),
        }
    )
    frame.loc[3, "gold_on_b"] = frame.loc[3, "gold_on_a"]  # a tie
    frame = binarize(frame, ["off_corpus", "off_t1"], seed)
    return frame.assign(on_fits=True, off_fits=True)


def test_offpolicy_pair_is_the_best_candidate_against_another():
    frame = candidates()
    best = frame[["gold_off_corpus", "gold_off_t1"]].max(axis=1)
    assert np.allclose(frame.gold_off_chosen, best)
    assert (frame.gold_off_chosen >= frame.gold_off_rejected).all()
    assert (frame.off_chosen != frame.off_rejected).all()


@pytest.mark.parametrize("fraction", [1.0, 0.75, 0.5, 0.0])
def test_every_mix_has_exactly_n_usable_pairs_and_uses_a_prompt_once(fraction):
    frame = candidates()
    frame.loc[5, "off_fits"] = False
    pairs = mix_pairs(frame, fraction, 30, seed=1)
    assert len(pairs) == 30 and pairs.prompt.is_unique
    assert (pairs.source == "on").sum() == round(30 * fraction)
    assert (pairs.gap > 0).all()
    assert "p3" not in set(pairs[pairs.source == "on"].prompt)
    assert "p5" not in set(pairs[pairs.source == "off"].prompt)


def test_too_few_prompts_is_one_clear_error():
    with pytest.raises(ValueError, match="raise lm_sft.n_rm_prompts"):
        mix_pairs(candidates(), 0.5, 40, seed=0)


def test_heldout_pairs_put_the_preferred_response_first():
    frame = candidates()
    for kind in ("on", "off"):
        _, responses, gold = heldout_pairs(frame, kind)
        assert (gold[:, 0] >= gold[:, 1]).all() and len(responses) == len(frame)
