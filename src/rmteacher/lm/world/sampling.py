"""Sampling responses from a policy (temperature 1, no top-k/top-p, as in the paper) and scoring
their log-probabilities, for evaluation and the KL to the initial policy."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from rmteacher.lm.world.tokenizer import chat_prompt


@dataclass
class SampledBatch:
    """Generated sequences: `sequences` [B, P + T] (left-padded prompt of length P, then the
    response), `response_mask` [B, T] marking response tokens up to and including EOS."""

    texts: list[str]
    sequences: torch.Tensor
    attention_mask: torch.Tensor
    prompt_length: int
    response_mask: torch.Tensor


def _generate(model, tokenizer, inputs: list[str], max_new_tokens, temperature, stop_id):
    dev = next(model.parameters()).device
    enc = tokenizer(
        inputs, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(dev)
    out = model.generate(
        **enc,
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        eos_token_id=stop_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    prompt_length = enc["input_ids"].shape[1]
    response = out[:, prompt_length:]
    # tokens after the first stop token are padding
    is_stop = (response == stop_id).int()
    after_stop = (is_stop.cumsum(1) - is_stop) > 0
    response_mask = ~after_stop
    texts = tokenizer.batch_decode(
        response.masked_fill(after_stop, tokenizer.pad_token_id), skip_special_tokens=True
    )
    attention = torch.cat([enc["attention_mask"], response_mask.long()], dim=1)
    return SampledBatch([t.strip() for t in texts], out, attention, prompt_length, response_mask)


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
    inputs = [chat_prompt(tokenizer, p) if chat else p for p in prompts for _ in range(n_samples)]
    stop = tokenizer.eos_token_id if chat else tokenizer.convert_tokens_to_ids("<|endoftext|>")
    starts = range(0, len(inputs), batch_size)
    for start in tqdm(starts, desc=desc or "sampling", disable=desc is None, mininterval=10):
        yield _generate(
            model, tokenizer, inputs[start : start + batch_size], max_new_tokens, temperature, stop
        )
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
    positions = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)  # as generate() numbers them
    logits = model(
        input_ids=batch.sequences, attention_mask=batch.attention_mask, position_ids=positions
    ).logits
    logits = logits[:, batch.prompt_length - 1 : -1].float()
    targets = batch.sequences[:, batch.prompt_length :]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (logp * batch.response_mask).sum(1)
