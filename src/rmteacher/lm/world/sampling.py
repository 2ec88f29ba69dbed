"""Sampling responses from a policy (temperature 1, no top-k/top-p, as in the paper) and scoring
their log-probabilities, for policy gradient, evaluation and the KL to the initial policy.

GPT-2 policies of this world run through `fast_gpt2` (the same computation with far less
per-call overhead); any other causal LM runs through transformers' `generate` and forward."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from rmteacher.core.hf import context_length
from rmteacher.lm.world.tokenizer import chat_prompt
from rmteacher.models import fast_gpt2


@dataclass
class Completion:
    """Sampled response tokens [B, T] and the mask [B, T] of tokens up to and including EOS."""

    tokens: torch.Tensor
    mask: torch.Tensor


@dataclass
class SampledBatch:
    """Generated sequences: `sequences` [B, P + T] (left-padded prompt of length P, then the
    response), `response_mask` [B, T] marking response tokens up to and including EOS."""

    texts: list[str]
    sequences: torch.Tensor
    attention_mask: torch.Tensor
    prompt_length: int
    response_mask: torch.Tensor


def chat_prompt_batch(
    tokenizer, prompts: list[str], chat: bool = True, device=None, max_length: int | None = None
):
    """(input ids, attention mask) of the prompts, left-padded; `chat` wraps each in the chat
    template's user turn and assistant header. A prompt longer than `max_length` tokens keeps
    its last `max_length` (the ones the response continues)."""
    texts = [chat_prompt(tokenizer, p) for p in prompts] if chat else list(prompts)
    enc = tokenizer(
        texts,
        return_tensors="pt",
        padding=True,
        padding_side="left",
        add_special_tokens=False,
        truncation=max_length is not None,
        max_length=max_length,
    )
    return enc["input_ids"].to(device), enc["attention_mask"].to(device)


def prompt_budget(model, max_new_tokens: int) -> int | None:
    """How many prompt tokens fit beside `max_new_tokens` in the model's context (None: no
    limit known)."""

    positions = context_length(model.config)
    return None if positions is None else positions - max_new_tokens


def response_mask(tokens: torch.Tensor, stop_id: int) -> torch.Tensor:
    """True for response tokens up to and including the first `stop_id`."""
    is_stop = (tokens == stop_id).int()
    return (is_stop.cumsum(1) - is_stop) == 0


@torch.no_grad()
def sample_tokens(model, prompt_ids, prompt_mask, max_new_tokens, temperature, stop_id, pad_id):
    """Sample one response per row of left-padded prompts (torch's global random stream)."""
    if fast_gpt2.supports(model):
        tokens = fast_gpt2.sample(
            model, prompt_ids, prompt_mask, max_new_tokens, temperature, stop_id, pad_id
        )
    else:
        out = model.generate(
            input_ids=prompt_ids,
            attention_mask=prompt_mask,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_id,
            pad_token_id=pad_id,
        )
        tokens = out[:, prompt_ids.shape[1] :]
    mask = response_mask(tokens, stop_id)
    return Completion(tokens.masked_fill(~mask, pad_id), mask)


def sequence_token_logprobs(model, sequences, attention_mask, prompt_length: int):
    """log pi(y_t | x, y_<t) of each response token [B, T] (not masked; differentiable)."""
    if fast_gpt2.supports(model):
        return fast_gpt2.token_logprobs(model, sequences, attention_mask, prompt_length)
    positions = fast_gpt2.positions(attention_mask)  # as generate() numbers them
    logits = model(
        input_ids=sequences, attention_mask=attention_mask, position_ids=positions
    ).logits
    logits = logits[:, prompt_length - 1 : -1].float()
    targets = sequences[:, prompt_length:]
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _generate(model, tokenizer, prompts, max_new_tokens, temperature, stop_id, chat):
    dev = next(model.parameters()).device
    budget = prompt_budget(model, max_new_tokens)
    ids, mask = chat_prompt_batch(tokenizer, prompts, chat=chat, device=dev, max_length=budget)
    completion = sample_tokens(
        model, ids, mask, max_new_tokens, temperature, stop_id, tokenizer.pad_token_id
    )
    texts = tokenizer.batch_decode(completion.tokens, skip_special_tokens=True)
    attention = torch.cat([mask, completion.mask.long()], dim=1)
    sequences = torch.cat([ids, completion.tokens], dim=1)
    return SampledBatch(
        [t.strip() for t in texts], sequences, attention, ids.shape[1], completion.mask
    )


@torch.no_grad()
def sample_batches(
    model,
    tokenizer,
    prompts: list[str],
    n_samples: int,
    *,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    batch_size: int = 256,
    chat: bool = True,
    desc: str | None = None,
):
    """Yield SampledBatch objects for every prompt repeated `n_samples` times (prompt-major order:
    prompt 0's samples first). `chat=False` feeds the raw prompt text (a base LM) and stops at
    <|endoftext|> instead of the turn end."""
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    inputs = [p for p in prompts for _ in range(n_samples)]
    stop = tokenizer.eos_token_id if chat else tokenizer.convert_tokens_to_ids("<|endoftext|>")
    starts = range(0, len(inputs), batch_size)
    for start in tqdm(starts, desc=desc or "sampling", disable=desc is None, mininterval=10):
        batch = inputs[start : start + batch_size]
        yield _generate(model, tokenizer, batch, max_new_tokens, temperature, stop, chat)
    model.train(was_training)


def sample_responses(
    model, tokenizer, prompts: list[str], n_samples: int, **kwargs
) -> list[list[str]]:
    """Responses as a [len(prompts)][n_samples] nested list of strings."""
    flat = [
        t
        for batch in sample_batches(model, tokenizer, prompts, n_samples, **kwargs)
        for t in batch.texts
    ]
    return [flat[i * n_samples : (i + 1) * n_samples] for i in range(len(prompts))]


@torch.no_grad()
def response_logprob(model, batch: SampledBatch) -> torch.Tensor:
    """log pi(y|x) summed over each response's tokens (EOS included), shape [B]."""
    logp = sequence_token_logprobs(
        model, batch.sequences, batch.attention_mask, batch.prompt_length
    )
    return (logp * batch.response_mask).sum(1)
