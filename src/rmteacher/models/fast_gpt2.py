"""A lean forward pass for the small GPT-2 models of this world, on the parameters of a Hugging
Face `GPT2LMHeadModel` / `GPT2ForSequenceClassification` (shared tensors, so gradients land in the
HF model and it saves as usual).

At a few hundred thousand parameters a policy-gradient step is dominated by per-call overhead, not
arithmetic: transformers' generic forward rebuilds masks and cache objects on every decoding step.
This module runs the same computation with a handful of tensor ops per block and a plain
key/value cache, which makes sampling several times faster. `supports(model)` says whether a model
qualifies (GPT-2, no dropout, default attention scaling); anything else runs through transformers.
Tests check that logits agree with transformers' to float tolerance, padding included.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def supports(model) -> bool:
    """Whether `model` is a GPT-2 this module computes exactly (eval-equivalent: no dropout)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) != "gpt2":
        return False
    return (
        config.activation_function == "gelu_new"
        and config.scale_attn_weights
        and not config.scale_attn_by_inverse_layer_idx
        and not config.reorder_and_upcast_attn
        and config.resid_pdrop == config.embd_pdrop == config.attn_pdrop == 0.0
    )


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's 'gelu_new', 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), in one kernel."""
    return F.gelu(x, approximate="tanh")


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim), masked) v. At these sizes (contexts of tens of tokens) two
    batched products are several times faster on CPU than torch's fused attention kernel, whose
    per-call setup dominates."""
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v


@dataclass
class KVCache:
    """Keys and values of every block, [B, heads, T, head_dim], and the key padding mask [B, T]."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    key_mask: torch.Tensor


def _body(model):
    return model.transformer


def hidden_states(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    cache: KVCache | None = None,
) -> tuple[torch.Tensor, KVCache]:
    """Final-layer-norm hidden states [B, T, d] of a GPT-2 body and the extended cache.

    `attention_mask` [B, T] marks real tokens of the new positions; with a cache, keys of earlier
    positions keep their own mask. A query attends to the real keys at or before it (and always
    to itself, so that padding positions stay finite)."""
    body = _body(model)
    config = model.config
    n_head, width = config.n_head, config.n_embd
    head_dim = width // n_head
    batch, length = input_ids.shape
    x = body.wte(input_ids) + body.wpe(position_ids)
    past = 0 if cache is None else cache.key_mask.shape[1]
    key_mask = attention_mask.bool()
    if cache is not None:
        key_mask = torch.cat([cache.key_mask, key_mask], dim=1)
    total = past + length
    if length == 1:  # one new token (decoding): it may see every real key, itself included
        mask = key_mask[:, None, None, :]
    else:
        causal = torch.ones(length, total, dtype=torch.bool, device=x.device).tril(diagonal=past)
        mask = causal[None, None] & key_mask[:, None, None, :]
        rows = torch.arange(length, device=x.device)
        diagonal = torch.zeros(length, total, dtype=torch.bool, device=x.device)
        diagonal[rows, rows + past] = True
        mask = mask | diagonal[None, None]
    keys, values = [], []
    for index, block in enumerate(body.h):
        h = block.ln_1(x)
        qkv = torch.addmm(block.attn.c_attn.bias, h.reshape(-1, width), block.attn.c_attn.weight)
        q, k, v = qkv.view(batch, length, 3, n_head, head_dim).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k = torch.cat([cache.keys[index], k], dim=2)
            v = torch.cat([cache.values[index], v], dim=2)
        keys.append(k)
        values.append(v)
        a = _attend(q, k, v, mask)
        a = a.transpose(1, 2).reshape(-1, width)
        x = x + torch.addmm(block.attn.c_proj.bias, a, block.attn.c_proj.weight).view_as(x)
        h = block.ln_2(x).reshape(-1, width)
        h = _gelu_new(torch.addmm(block.mlp.c_fc.bias, h, block.mlp.c_fc.weight))
        x = x + torch.addmm(block.mlp.c_proj.bias, h, block.mlp.c_proj.weight).view_as(x)
    return body.ln_f(x), KVCache(keys, values, key_mask)


def lm_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """Next-token logits from hidden states (the LM head, tied to the embeddings in GPT-2)."""
    return model.lm_head(hidden)


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding, as transformers' generate() numbers them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def token_logprobs(
    model, sequences: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int
) -> torch.Tensor:
    """log pi(y_t | x, y_<t) of every response token, [B, T] (T = sequences' length minus the
    prompt length); the caller masks tokens after EOS. Differentiable."""
    hidden, _ = hidden_states(model, sequences, attention_mask, positions(attention_mask))
    logits = lm_logits(model, hidden[:, prompt_length - 1 : -1]).float()
    targets = sequences[:, prompt_length:]
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _decode(model, token, position, keys, values, key_mask, filled: int) -> torch.Tensor:
    """Final hidden state [B, d] of one new token per row at index `filled` of preallocated
    key/value buffers [B, heads, T_max, head_dim] (written in place); every real key before it,
    and itself, are attended to."""
    body, config = _body(model), model.config
    batch, width, n_head = token.shape[0], config.n_embd, config.n_head
    x = body.wte(token) + body.wpe(position)
    key_mask[:, filled] = True
    mask = key_mask[:, None, None, : filled + 1]
    for index, block in enumerate(body.h):
        h = block.ln_1(x)
        qkv = torch.addmm(block.attn.c_attn.bias, h, block.attn.c_attn.weight)
        q, k, v = qkv.view(batch, 3, n_head, 1, width // n_head).unbind(1)
        keys[index][:, :, filled] = k[:, :, 0]
        values[index][:, :, filled] = v[:, :, 0]
        a = _attend(q, keys[index][:, :, : filled + 1], values[index][:, :, : filled + 1], mask)
        x = x + torch.addmm(
            block.attn.c_proj.bias, a.reshape(batch, width), block.attn.c_proj.weight
        )
        h = _gelu_new(torch.addmm(block.mlp.c_fc.bias, block.ln_2(x), block.mlp.c_fc.weight))
        x = x + torch.addmm(block.mlp.c_proj.bias, h, block.mlp.c_proj.weight)
    return body.ln_f(x)


def _draw(probs: torch.Tensor) -> torch.Tensor:
    """One token per row of `probs` [B, V] by inverting the cumulative distribution at a uniform
    draw: one random number per row, where torch.multinomial draws one per vocabulary entry and
    dominated the cost of decoding."""
    cdf = probs.cumsum(-1)
    u = torch.rand(probs.shape[0], 1, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=probs.shape[1] - 1)


@torch.no_grad()
def sample(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    stop_id: int,
    pad_id: int,
) -> torch.Tensor:
    """Ancestral sampling (temperature, no top-k/top-p) of up to `max_new_tokens` per row from
    left-padded prompts; rows stop at `stop_id` (kept) and are padded with `pad_id` after it.
    Returns the new tokens [B, T <= max_new_tokens]. Uses torch's global random stream."""
    batch, length = prompt_ids.shape
    prompt_positions = positions(prompt_mask)
    hidden, cache = hidden_states(model, prompt_ids, prompt_mask, prompt_positions)
    total = length + max_new_tokens
    keys = [k.new_empty(*k.shape[:2], total, k.shape[3]) for k in cache.keys]
    values = [v.new_empty(*v.shape[:2], total, v.shape[3]) for v in cache.values]
    for buffer, filled in zip(keys + values, cache.keys + cache.values, strict=True):
        buffer[:, :, :length] = filled
    key_mask = torch.zeros(batch, total, dtype=torch.bool, device=prompt_ids.device)
    key_mask[:, :length] = prompt_mask.bool()
    next_position = prompt_positions[:, -1] + 1
    logits = lm_logits(model, hidden[:, -1])
    done = torch.zeros(batch, dtype=torch.bool, device=prompt_ids.device)
    tokens = []
    for step in range(max_new_tokens):
        token = _draw(torch.softmax(logits.float() / temperature, dim=-1))
        token = torch.where(done, torch.full_like(token, pad_id), token)
        tokens.append(token)
        done = done | (token == stop_id)
        if bool(done.all()) or step + 1 == max_new_tokens:
            break
        # finished rows keep decoding padding; their outputs are discarded
        hidden = _decode(model, token, next_position + step, keys, values, key_mask, length + step)
        logits = lm_logits(model, hidden)
    return torch.stack(tokens, dim=1)


def sequence_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The one-output score of a GPT2ForSequenceClassification at each row's last real token,
    for left- or right-padded rows [B]."""
    hidden, _ = hidden_states(model, input_ids, attention_mask, positions(attention_mask))
    last = attention_mask.long().cumsum(-1).argmax(-1)  # index of the last real token
    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return model.score(pooled).squeeze(-1)
