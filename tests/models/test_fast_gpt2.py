"""The lean GPT-2 forward computes what transformers computes: the same logits with left padding,
the same scores of a sequence-classification head, the same result with and without the cache,
and sampling from the right distribution."""

import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

from rmteacher.models import fast_gpt2

CONFIG = dict(
    vocab_size=300,
    n_positions=40,
    n_embd=32,
    n_layer=2,
    n_head=4,
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=1,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(**CONFIG)).eval()


def left_padded_batch():
    torch.manual_seed(1)
    ids = torch.randint(2, 300, (5, 9))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    mask[3, :2] = 0
    return ids.masked_fill(mask == 0, 0), mask


def test_logits_match_transformers_with_left_padding(model):
    ids, mask = left_padded_batch()
    positions = fast_gpt2.positions(mask)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        hidden, _ = fast_gpt2.hidden_states(model, ids, mask, positions)
        ours = fast_gpt2.lm_logits(model, hidden)
    real = mask.bool()
    torch.testing.assert_close(ours[real], expected[real], rtol=1e-4, atol=1e-5)
    assert torch.isfinite(ours).all()  # padding queries stay finite


def test_decoding_with_the_cache_equals_the_full_forward(model):
    ids, mask = left_padded_batch()
    positions = fast_gpt2.positions(mask)
    with torch.no_grad():
        full, _ = fast_gpt2.hidden_states(model, ids, mask, positions)
        _, cache = fast_gpt2.hidden_states(model, ids[:, :6], mask[:, :6], positions[:, :6])
        for t in range(6, 9):
            step, cache = fast_gpt2.hidden_states(
                model, ids[:, t : t + 1], mask[:, t : t + 1], positions[:, t : t + 1], cache
            )
            torch.testing.assert_close(step[:, 0], full[:, t], rtol=1e-4, atol=1e-5)


def test_sequence_scores_match_the_classification_head():
    torch.manual_seed(2)
    rm = GPT2ForSequenceClassification(GPT2Config(**CONFIG, num_labels=1)).eval()
    ids = torch.randint(2, 300, (4, 7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # right padding, as a reward model's batch is padded
    mask[2, 3:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    with torch.no_grad():
        expected = rm(input_ids=ids, attention_mask=mask).logits[:, 0]
        ours = fast_gpt2.sequence_scores(rm, ids, mask)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_only_dropout_free_gpt2_with_default_attention_qualifies(model):
    assert fast_gpt2.supports(model)
    assert not fast_gpt2.supports(GPT2LMHeadModel(GPT2Config(**{**CONFIG, "attn_pdrop": 0.1})))
    assert not fast_gpt2.supports(
        GPT2LMHeadModel(GPT2Config(**CONFIG, scale_attn_by_inverse_layer_idx=True))
    )
    assert not fast_gpt2.supports(torch.nn.Linear(2, 2))


def test_sampling_draws_from_the_softmax_and_pads_after_the_stop_token(model):
    ids = torch.randint(2, 300, (1, 5)).repeat(4000, 1)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        hidden, _ = fast_gpt2.hidden_states(model, ids[:1], mask[:1], fast_gpt2.positions(mask[:1]))
        probs = torch.softmax(fast_gpt2.lm_logits(model, hidden)[0, -1] / 0.7, dim=-1)
    torch.manual_seed(3)
    tokens = fast_gpt2.sample(model, ids, mask, 3, 0.7, stop_id=int(probs.argmax()), pad_id=0)
    first = torch.bincount(tokens[:, 0], minlength=300).float() / len(tokens)
    assert (first - probs).abs().max() < 0.03
    stopped = tokens[:, 0] == probs.argmax()
    assert stopped.any() and (tokens[stopped, 1:] == 0).all()


def test_cached_sampling_at_a_tiny_temperature_is_transformers_greedy_decoding(model):
    ids, mask = left_padded_batch()
    with torch.no_grad():
        ours = fast_gpt2.sample(model, ids, mask, 8, 1e-6, stop_id=299, pad_id=0)
        theirs = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=8,
            min_new_tokens=8,
            pad_token_id=0,
            eos_token_id=299,
        )[:, ids.shape[1] :]
    assert torch.equal(ours, theirs[:, : ours.shape[1]])
