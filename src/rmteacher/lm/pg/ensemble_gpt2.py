"""E GPT-2 policies in one forward pass: every weight stacked on a leading member axis [E, ...],
every linear layer one batched matrix product (`torch.baddbmm`) instead of E products.

The computation per member is `core.fast_gpt2`'s (the same blocks, attention and key/value
cache); activations are laid out [E, rows, width] for the linear layers and [E * batch, heads,
T, head_dim] for attention. Measured on this CPU (benchmarks/pg_step.py --ensemble) it is faster
than `torch.func.stack_module_state` + `vmap` over fast_gpt2 at these shapes, for the same
arithmetic.

Why a member's numbers do not depend on its co-members: on CPU a forward matrix product's row
does not depend on how many rows the product has, a batched product with at least two members
computes each member's slice on one thread (so a slice does not depend on E or on the thread
count), and every reduction here (layer norm, softmax, log-softmax, the loss) runs along a row
of one member. With one member the batched product runs multithreaded and splits its inner
dimension, so a lone member is paired with a discarded copy of itself (`StackedGPT2.padded`).
tests/lm/pg/test_ensemble.py checks the claim bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rmteacher.core import fast_gpt2

# the weights of one GPT-2 block, as named under transformer.h.<i>.
BLOCK = (
    "ln_1.weight",
    "ln_1.bias",
    "attn.c_attn.weight",
    "attn.c_attn.bias",
    "attn.c_proj.weight",
    "attn.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
)


def weight_names(config) -> list[str]:
    """Names of a GPT2LMHeadModel's trainable weights (the LM head is tied to `wte`)."""
    names = ["transformer.wte.weight", "transformer.wpe.weight"]
    for layer in range(config.n_layer):
        names += [f"transformer.h.{layer}.{name}" for name in BLOCK]
    names += ["transformer.ln_f.weight", "transformer.ln_f.bias"]
    if not getattr(config, "tie_word_embeddings", True):
        names.append("lm_head.weight")
    return names


@dataclass
class StackedGPT2:
    """The weights of E GPT-2 policies of one architecture, {name: [E, *shape]}, and their
    config. Member e is `weights[name][e]` for every name."""

    config: object
    weights: dict[str, torch.Tensor]

    @classmethod
    def replicate(cls, model, members: int, requires_grad: bool = True) -> StackedGPT2:
        """E independent copies of `model`'s weights (contiguous, leaves of autograd)."""
        if not fast_gpt2.supports(model):
            raise ValueError("the ensemble runs GPT-2 policies that core.fast_gpt2 supports")
        params = dict(model.named_parameters())
        weights = {}
        for name in weight_names(model.config):
            stacked = params[name].detach().unsqueeze(0).repeat(members, *[1] * params[name].dim())
            weights[name] = stacked.requires_grad_(requires_grad)
        return cls(model.config, weights)

    @classmethod
    def from_models(cls, models, requires_grad: bool = True) -> StackedGPT2:
        """The weights of GPT-2 models of one config, stacked in the order given."""
        first = models[0]
        stack = cls.replicate(first, len(models), requires_grad=False)
        for e, model in enumerate(models[1:], start=1):
            params = dict(model.named_parameters())
            for name, weight in stack.weights.items():
                weight[e].copy_(params[name].detach())
        for weight in stack.weights.values():
            weight.requires_grad_(requires_grad)
        return stack

    @property
    def members(self) -> int:
        return self.weights["transformer.wte.weight"].shape[0]

    def parameters(self) -> list[torch.Tensor]:
        return list(self.weights.values())

    def member(self, index: int) -> dict[str, torch.Tensor]:
        """Member `index`'s weights under the Hugging Face names (views)."""
        return {name: w[index] for name, w in self.weights.items()}

    def load_member(self, index: int, model) -> None:
        """Copy member `index`'s weights into a GPT2LMHeadModel of the same config."""
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, weight in self.member(index).items():
                params[name].copy_(weight)

    def head(self) -> torch.Tensor:
        return self.weights.get("lm_head.weight", self.weights["transformer.wte.weight"])


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x [E, M, K] @ weight [E, K, N] + bias [E, N], one batched product."""
    return torch.baddbmm(bias.unsqueeze(1), x, weight)


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float):
    """Layer norm of x [E, M, d] with each member's own gain and bias (two elementwise ops, not
    a fused multiply-add, so that every element rounds the same way wherever it lies)."""
    return F.layer_norm(x, x.shape[-1:], eps=eps) * weight.unsqueeze(1) + bias.unsqueeze(1)


def _embed(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows `index` [E, ...] of each member's own table [E, rows, d]: one lookup in the tables
    laid end to end."""
    members, rows = table.shape[:2]
    offsets = torch.arange(members, device=index.device).view(-1, *[1] * (index.dim() - 1))
    return F.embedding(index + offsets * rows, table.reshape(members * rows, -1))


def _block_weights(stack: StackedGPT2, layer: int) -> list[torch.Tensor]:
    return [stack.weights[f"transformer.h.{layer}.{name}"] for name in BLOCK]


def hidden_states(
    stack: StackedGPT2,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Final-layer-norm hidden states [E, B, T, d] of every member on its own rows
    (`input_ids` [E, B, T]) and each block's keys and values [E * B, heads, T, head_dim]; the
    attention rule is fast_gpt2.hidden_states' (real keys at or before a query, and itself)."""
    config = stack.config
    eps = config.layer_norm_epsilon
    members, batch, length = input_ids.shape
    width, n_head = config.n_embd, config.n_head
    head_dim = width // n_head
    w = stack.weights
    x = _embed(w["transformer.wte.weight"], input_ids) + _embed(
        w["transformer.wpe.weight"], position_ids
    )
    x = x.view(members, batch * length, width)
    key_mask = attention_mask.reshape(members * batch, length).bool()
    causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
    mask = (causal[None, None] & key_mask[:, None, None, :]) | torch.eye(
        length, dtype=torch.bool, device=x.device
    )[None, None]
    keys, values = [], []
    for layer in range(config.n_layer):
        ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b = (
            _block_weights(stack, layer)
        )
        qkv = _linear(_layer_norm(x, ln1_w, ln1_b, eps), qkv_w, qkv_b)
        q, k, v = qkv.view(members * batch, length, 3, n_head, head_dim).permute(2, 0, 3, 1, 4)
        keys.append(k)
        values.append(v)
        a = fast_gpt2._attend(q, k, v, mask).transpose(1, 2)
        x = x + _linear(a.reshape(members, batch * length, width), proj_w, proj_b)
        h = fast_gpt2._gelu_new(_linear(_layer_norm(x, ln2_w, ln2_b, eps), fc_w, fc_b))
        x = x + _linear(h, out_w, out_b)
    hidden = _layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return hidden.view(members, batch, length, width), keys, values


def lm_logits(stack: StackedGPT2, hidden: torch.Tensor) -> torch.Tensor:
    """Next-token logits [E, M, V] of hidden states [E, M, d]."""
    return torch.bmm(hidden, stack.head().transpose(1, 2))


def token_logprobs(
    stack: StackedGPT2,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
) -> torch.Tensor:
    """log pi_e(y_t | x, y_<t) of every response token of every member's rows, [E, B, T]
    (sequences [E, B, P + T], prompts of length P); differentiable, unmasked."""
    positions = fast_gpt2.positions(attention_mask)
    hidden, _, _ = hidden_states(stack, sequences, attention_mask, positions)
    members, batch = sequences.shape[:2]
    response = hidden[:, :, prompt_length - 1 : -1]
    steps = response.shape[2]
    logits = lm_logits(stack, response.reshape(members, batch * steps, -1)).float()
    targets = sequences[:, :, prompt_length:].reshape(members, batch * steps, 1)
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets).squeeze(-1)
    return logprobs.view(members, batch, steps)


def _decode(stack, token, position, keys, values, key_mask, filled: int) -> torch.Tensor:
    """Final hidden state [E, B, d] of one new token per row at index `filled` of the key/value
    buffers [E * B, heads, T_max, head_dim] (written in place), as fast_gpt2._decode."""
    config = stack.config
    eps = config.layer_norm_epsilon
    members, batch = token.shape
    width, n_head = config.n_embd, config.n_head
    w = stack.weights
    x = _embed(w["transformer.wte.weight"], token) + _embed(w["transformer.wpe.weight"], position)
    key_mask[:, filled] = True
    mask = key_mask[:, None, None, : filled + 1]
    for layer in range(config.n_layer):
        ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b = (
            _block_weights(stack, layer)
        )
        qkv = _linear(_layer_norm(x, ln1_w, ln1_b, eps), qkv_w, qkv_b)
        q, k, v = qkv.view(members * batch, 3, n_head, 1, width // n_head).unbind(1)
        keys[layer][:, :, filled] = k[:, :, 0]
        values[layer][:, :, filled] = v[:, :, 0]
        a = fast_gpt2._attend(
            q, keys[layer][:, :, : filled + 1], values[layer][:, :, : filled + 1], mask
        )
        x = x + _linear(a.reshape(members, batch, width), proj_w, proj_b)
        h = fast_gpt2._gelu_new(_linear(_layer_norm(x, ln2_w, ln2_b, eps), fc_w, fc_b))
        x = x + _linear(h, out_w, out_b)
    return _layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)


def draw(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """fast_gpt2._draw with the uniforms given: one token per row of probs [..., V] at the
    inverse of the cumulative distribution at uniforms [...]."""
    cdf = probs.cumsum(-1)
    u = uniforms.unsqueeze(-1).to(cdf.dtype) * cdf[..., -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=probs.shape[-1] - 1)


@torch.no_grad()
def sample(
    stack: StackedGPT2,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    stop_id: int,
    pad_id: int,
    generators: list[torch.Generator],
) -> torch.Tensor:
    """Ancestral sampling from each member on its own left-padded prompts [E, B, P], up to
    `max_new_tokens` per row, rows stopping at `stop_id` (kept) and padded with `pad_id` after.
    Member e draws from `generators[e]` exactly as fast_gpt2.sample draws from torch's global
    stream: B uniforms per decoding step, until its own rows are all done. Returns [E, B,
    max_new_tokens] (every member padded to the full length)."""
    members, batch, length = prompt_ids.shape
    positions = fast_gpt2.positions(prompt_mask)
    hidden, prompt_keys, prompt_values = hidden_states(stack, prompt_ids, prompt_mask, positions)
    total = length + max_new_tokens
    keys = [k.new_empty(*k.shape[:2], total, k.shape[3]) for k in prompt_keys]
    values = [v.new_empty(*v.shape[:2], total, v.shape[3]) for v in prompt_values]
    for buffer, filled in zip(keys + values, prompt_keys + prompt_values, strict=True):
        buffer[:, :, :length] = filled
    key_mask = torch.zeros(members * batch, total, dtype=torch.bool, device=prompt_ids.device)
    key_mask[:, :length] = prompt_mask.reshape(members * batch, length).bool()
    next_position = positions[:, :, -1] + 1
    logits = lm_logits(stack, hidden[:, :, -1])
    done = torch.zeros(members, batch, dtype=torch.bool, device=prompt_ids.device)
    tokens = torch.full(
        (members, batch, max_new_tokens), pad_id, dtype=prompt_ids.dtype, device=prompt_ids.device
    )
    uniforms = torch.zeros(members, batch)
    drawing = list(range(members))  # members some of whose rows are still running
    for step in range(max_new_tokens):
        for e in drawing:
            uniforms[e] = torch.rand(batch, generator=generators[e])
        token = draw(torch.softmax(logits.float() / temperature, dim=-1), uniforms)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        tokens[:, :, step] = token
        done = done | (token == stop_id)
        member_done = done.all(1).tolist()
        drawing = [e for e in drawing if not member_done[e]]
        if not drawing or step + 1 == max_new_tokens:
            break
        # finished rows keep decoding padding; their outputs are discarded
        hidden = _decode(stack, token, next_position + step, keys, values, key_mask, length + step)
        logits = lm_logits(stack, hidden)
    return tokens
