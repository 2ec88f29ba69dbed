"""E GPT-2 policies in one forward pass: every weight stacked on a leading member axis [E, ...],
every linear layer one batched matrix product (`torch.baddbmm`) instead of E products, attention
torch's fused kernel over all members' rows.

The computation per member is `models.fast_gpt2`'s (the same blocks, attention rule and key/value
cache); activations are laid out [E, rows, width] for the linear layers and [E * batch, heads,
T, head_dim] for attention. A policy-gradient step passes over each prompt once (`prefix`, with
gradients), samples its k responses from that pass's keys and values (`sample`) and scores them
after it (`response_logprobs`), instead of passing over every whole sequence again. Measured
against `torch.func.stack_module_state` + `vmap` over fast_gpt2 by benchmarks/pg_step.py
--ensemble.

Why a member's numbers do not depend on its co-members, or on the thread count: on this CPU a
forward matrix product's row does not depend on how many rows the product has, a batched
product with at least two members computes each member's slice on one thread, the fused
attention computes each row alike whatever the batch and thread count, and every other
reduction (layer norm, log-softmax, the loss) runs along a row of one member. With one member
the batched product runs multithreaded and splits its inner dimension, so a lone member is
trained beside a discarded copy of itself (`ensemble.ensembles`). tests/lm/pg/test_ensemble.py
checks the claim bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rmteacher.models import fast_gpt2

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
            raise ValueError("the ensemble runs GPT-2 policies that models.fast_gpt2 supports")
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


def _normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) along the last dimension (layer norm before its gain and
    bias, which `fold` moves into the next product)."""
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def _embed(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows `index` [E, ...] of each member's own table [E, rows, d]: one lookup in the tables
    laid end to end."""
    members, rows = table.shape[:2]
    offsets = torch.arange(members, device=index.device).view(-1, *[1] * (index.dim() - 1))
    return F.embedding(index + offsets * rows, table.reshape(members * rows, -1))


def _block_weights(stack: StackedGPT2, layer: int) -> list[torch.Tensor]:
    return [stack.weights[f"transformer.h.{layer}.{name}"] for name in BLOCK]


def _fold(gain: torch.Tensor, bias: torch.Tensor, weight: torch.Tensor, after: torch.Tensor):
    """(x_hat * gain + bias) @ weight + after = x_hat @ W' + b' with W' = gain[:, None] * weight
    and b' = bias @ weight + after, per member."""
    return gain.unsqueeze(-1) * weight, after + torch.bmm(bias.unsqueeze(1), weight).squeeze(1)


@dataclass
class Folded:
    """The weights a pass uses, each layer norm's gain and bias folded into the product after
    it: per block (qkv weight, bias, attention projection weight, bias, MLP in weight, bias,
    MLP out weight, bias), and the LM head [E, d, V] with its bias [E, V]. Computed once per
    pass (`fold`), so the activations skip two elementwise passes per layer norm."""

    blocks: list[tuple[torch.Tensor, ...]]
    head: torch.Tensor
    head_bias: torch.Tensor

    def detach(self) -> Folded:
        return Folded(
            [tuple(t.detach() for t in block) for block in self.blocks],
            self.head.detach(),
            self.head_bias.detach(),
        )


def fold(stack: StackedGPT2) -> Folded:
    """The folded weights of `stack` (differentiable: gradients reach the stacked weights)."""
    blocks = []
    for layer in range(stack.config.n_layer):
        ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b = (
            _block_weights(stack, layer)
        )
        blocks.append(
            (
                *_fold(ln1_w, ln1_b, qkv_w, qkv_b),
                proj_w,
                proj_b,
                *_fold(ln2_w, ln2_b, fc_w, fc_b),
                out_w,
                out_b,
            )
        )
    w = stack.weights
    head = stack.head().transpose(1, 2)  # [E, d, V]
    zero = head.new_zeros(head.shape[0], head.shape[2])
    head, head_bias = _fold(w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], head, zero)
    return Folded(blocks, head, head_bias)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor):
    """softmax(q k^T / sqrt(head_dim), where `mask` allows) v, torch's fused attention: at E
    members' rows it is several times faster than fast_gpt2's two products (which copy their
    strided operands), and it rounds every row alike whatever the batch or thread count."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _blocks(stack, folded: Folded, x, mask, past_keys=None, past_values=None):
    """The blocks on new positions x [E, B, L, d] (embedded), attending under `mask` [E * B, 1,
    L, P + L] to `past` keys and values [E * B, heads, P, head_dim] (a prefix; None: P = 0) and
    to their own. Returns the normalised final states [E, B, L, d] (before ln_f's gain and
    bias, which `folded.head` holds) and each block's keys and values of the new positions."""
    config = stack.config
    eps = config.layer_norm_epsilon
    members, batch, length, width = x.shape
    n_head = config.n_head
    head_dim = width // n_head
    x = x.reshape(members, batch * length, width)
    keys, values = [], []
    for layer, block in enumerate(folded.blocks):
        qkv_w, qkv_b, proj_w, proj_b, fc_w, fc_b, out_w, out_b = block
        qkv = _linear(_normalize(x, eps), qkv_w, qkv_b)
        q, k, v = qkv.view(members * batch, length, 3, n_head, head_dim).permute(2, 0, 3, 1, 4)
        keys.append(k)
        values.append(v)
        if past_keys is not None:
            k = torch.cat([past_keys[layer], k], dim=2)
            v = torch.cat([past_values[layer], v], dim=2)
        a = _attend(q, k, v, mask).transpose(1, 2)
        x = x + _linear(a.reshape(members, batch * length, width), proj_w, proj_b)
        h = fast_gpt2._gelu_new(_linear(_normalize(x, eps), fc_w, fc_b))
        x = x + _linear(h, out_w, out_b)
    return _normalize(x, eps).view(members, batch, length, width), keys, values


def _embed_tokens(stack, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    w = stack.weights
    return _embed(w["transformer.wte.weight"], ids) + _embed(w["transformer.wpe.weight"], positions)


def _causal(length: int, device) -> torch.Tensor:
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def _normed_states(stack, folded, input_ids, attention_mask, position_ids):
    members, batch, length = input_ids.shape
    key_mask = attention_mask.reshape(members * batch, length).bool()
    eye = torch.eye(length, dtype=torch.bool, device=input_ids.device)
    mask = (_causal(length, input_ids.device)[None, None] & key_mask[:, None, None, :]) | eye
    return _blocks(stack, folded, _embed_tokens(stack, input_ids, position_ids), mask)


def hidden_states(
    stack: StackedGPT2,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Final-layer-norm hidden states [E, B, T, d] of every member on its own rows
    (`input_ids` [E, B, T]) and each block's keys and values [E * B, heads, T, head_dim]; the
    attention rule is fast_gpt2.hidden_states' (real keys at or before a query, and itself)."""
    normed, keys, values = _normed_states(
        stack, fold(stack), input_ids, attention_mask, position_ids
    )
    w = stack.weights
    gain = w["transformer.ln_f.weight"][:, None, None, :]
    return normed * gain + w["transformer.ln_f.bias"][:, None, None, :], keys, values


def _logits(folded: Folded, normed: torch.Tensor) -> torch.Tensor:
    """Next-token logits [E, M, V] of normalised final states [E, M, d]."""
    return _linear(normed, folded.head, folded.head_bias)


def _gather_logprobs(folded: Folded, normed: torch.Tensor, targets: torch.Tensor):
    """log pi(target | state) for normalised final states [E, B, T, d], targets [E, B, T]."""
    members, batch, steps = targets.shape
    logits = _logits(folded, normed.reshape(members, batch * steps, -1)).float()
    flat = targets.reshape(members, batch * steps, 1)
    return torch.log_softmax(logits, dim=-1).gather(-1, flat).view(members, batch, steps)


def token_logprobs(
    stack: StackedGPT2,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
) -> torch.Tensor:
    """log pi_e(y_t | x, y_<t) of every response token of every member's rows, [E, B, T]
    (sequences [E, B, P + T], prompts of length P), from one pass over whole sequences;
    differentiable, unmasked. The engine itself uses `prefix` + `response_logprobs`."""
    folded = fold(stack)
    positions = fast_gpt2.positions(attention_mask)
    normed, _, _ = _normed_states(stack, folded, sequences, attention_mask, positions)
    response = normed[:, :, prompt_length - 1 : -1]
    return _gather_logprobs(folded, response, sequences[:, :, prompt_length:])


@dataclass
class Prefix:
    """A forward pass over prompts: each block's keys and values [E * B, heads, P, head_dim],
    the normalised final state at the last prompt position [E, B, d] (it predicts the first
    response token), the prompts' key mask [E * B, P] and the next position ids [E, B]."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    last: torch.Tensor
    key_mask: torch.Tensor
    next_position: torch.Tensor

    def repeat(self, times: int) -> Prefix:
        """Each prompt row repeated `times` times in place (k samples per prompt); gradients
        flow back to the one prompt computation."""

        def rows(t):  # [E * B, ...] -> [E * B * times, ...]
            return t.repeat_interleave(times, dim=0)

        return Prefix(
            [rows(k) for k in self.keys],
            [rows(v) for v in self.values],
            self.last.repeat_interleave(times, dim=1),
            rows(self.key_mask),
            self.next_position.repeat_interleave(times, dim=1),
        )

    def rows(self, index: torch.Tensor) -> Prefix:
        """The prefix of rows `index` [E, N] of a one-member prefix over many prompts ([1, n]):
        member e's row j is prompt index[e, j]."""
        flat = index.reshape(-1)
        return Prefix(
            [k.index_select(0, flat) for k in self.keys],
            [v.index_select(0, flat) for v in self.values],
            self.last[0].index_select(0, flat).view(*index.shape, -1),
            self.key_mask.index_select(0, flat),
            self.next_position[0].index_select(0, flat).view(index.shape),
        )

    def detach(self) -> Prefix:
        return Prefix(
            [k.detach() for k in self.keys],
            [v.detach() for v in self.values],
            self.last.detach(),
            self.key_mask,
            self.next_position,
        )


def prefix(
    stack: StackedGPT2,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    folded: Folded | None = None,
) -> Prefix:
    """Every member's pass over its own left-padded prompts [E, B, P] (differentiable);
    `folded`: `fold(stack)` when the caller already has it."""
    members, batch, length = prompt_ids.shape
    positions = fast_gpt2.positions(prompt_mask)
    folded = fold(stack) if folded is None else folded
    normed, keys, values = _normed_states(stack, folded, prompt_ids, prompt_mask, positions)
    return Prefix(
        keys,
        values,
        normed[:, :, -1],
        prompt_mask.reshape(members * batch, length).bool(),
        positions[:, :, -1] + 1,
    )


def member(stack: StackedGPT2, index: int) -> StackedGPT2:
    """Member `index` alone, as a one-member stack (views)."""
    return StackedGPT2(stack.config, {n: w[index : index + 1] for n, w in stack.weights.items()})


@torch.no_grad()
def shared_prefix(
    stack: StackedGPT2, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, chunk: int = 256
) -> Prefix:
    """One pass of a one-member stack (the reference, which every member shares) over prompts
    [n, P], in chunks of `chunk` prompts; `Prefix.rows` hands each member its rows. A row's
    numbers are those a per-member pass would give (rows do not interact)."""
    folded = fold(stack)
    parts = [
        prefix(stack, prompt_ids[None, a : a + chunk], prompt_mask[None, a : a + chunk], folded)
        for a in range(0, prompt_ids.shape[0], chunk)
    ]
    return Prefix(
        [torch.cat([p.keys[i] for p in parts]) for i in range(len(parts[0].keys))],
        [torch.cat([p.values[i] for p in parts]) for i in range(len(parts[0].values))],
        torch.cat([p.last for p in parts], dim=1),
        torch.cat([p.key_mask for p in parts]),
        torch.cat([p.next_position for p in parts], dim=1),
    )


def response_logprobs(
    stack: StackedGPT2,
    start: Prefix,
    tokens: torch.Tensor,
    response_mask: torch.Tensor,
    folded: Folded | None = None,
) -> torch.Tensor:
    """log pi_e(y_t | x, y_<t) [E, N, T] of responses `tokens` [E, N, T] after the prompts of
    `start` (one row per response: `Prefix.repeat` for k samples per prompt): the first token
    from the prompt's last state, the others from one pass over the response's own positions,
    which attend to the prompt's real keys and to the response's earlier tokens and itself
    (`response_mask` [E, N, T] marks tokens up to EOS). Differentiable through `start` too."""
    folded = fold(stack) if folded is None else folded
    members, rows, steps = tokens.shape
    first = start.last.unsqueeze(2)  # [E, N, 1, d]
    if steps == 1:
        return _gather_logprobs(folded, first, tokens)
    inputs = tokens[:, :, :-1]
    length = steps - 1
    device = tokens.device
    positions = start.next_position.unsqueeze(-1) + torch.arange(length, device=device)
    own = (
        _causal(length, device)[None, None]
        & response_mask[:, :, :-1].reshape(members * rows, 1, 1, length).bool()
    )
    own = own | torch.eye(length, dtype=torch.bool, device=device)
    past = start.key_mask[:, None, None, :].expand(-1, 1, length, -1)
    mask = torch.cat([past, own], dim=-1)
    normed, _, _ = _blocks(
        stack, folded, _embed_tokens(stack, inputs, positions), mask, start.keys, start.values
    )
    return _gather_logprobs(folded, torch.cat([first, normed], dim=2), tokens)


def _decode(stack, folded, token, position, keys, values, key_mask, filled: int):
    """Normalised final state [E, B, d] of one new token per row at index `filled` of the
    key/value buffers [E * B, heads, T_max, head_dim] (written in place), as fast_gpt2._decode."""
    eps = stack.config.layer_norm_epsilon
    members, batch = token.shape
    width, n_head = stack.config.n_embd, stack.config.n_head
    x = _embed_tokens(stack, token, position)
    key_mask[:, filled] = True
    mask = key_mask[:, None, None, : filled + 1]
    for layer, block in enumerate(folded.blocks):
        qkv_w, qkv_b, proj_w, proj_b, fc_w, fc_b, out_w, out_b = block
        qkv = _linear(_normalize(x, eps), qkv_w, qkv_b)
        q, k, v = qkv.view(members * batch, 3, n_head, 1, width // n_head).unbind(1)
        keys[layer][:, :, filled] = k[:, :, 0]
        values[layer][:, :, filled] = v[:, :, 0]
        a = _attend(q, keys[layer][:, :, : filled + 1], values[layer][:, :, : filled + 1], mask)
        x = x + _linear(a.reshape(members, batch, width), proj_w, proj_b)
        h = fast_gpt2._gelu_new(_linear(_normalize(x, eps), fc_w, fc_b))
        x = x + _linear(h, out_w, out_b)
    return _normalize(x, eps)


def draw(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """fast_gpt2._draw with the uniforms given: one token per row of probs [..., V] at the
    inverse of the cumulative distribution at uniforms [...]."""
    cdf = probs.cumsum(-1)
    u = uniforms.unsqueeze(-1).to(cdf.dtype) * cdf[..., -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=probs.shape[-1] - 1)


@torch.no_grad()
def sample(
    stack: StackedGPT2,
    start: Prefix,
    max_new_tokens: int,
    temperature: float,
    stop_id: int,
    pad_id: int,
    generators: list[torch.Generator],
    logprobs: bool = False,
    folded: Folded | None = None,
):
    """Ancestral sampling from each member after the prompts of `start` [E, B] (one row per
    response), up to `max_new_tokens` per row, rows stopping at `stop_id` (kept) and padded
    with `pad_id` after. Member e draws from `generators[e]` exactly as fast_gpt2.sample draws
    from torch's global stream: B uniforms per decoding step, until its own rows are all done.
    Returns the tokens [E, B, max_new_tokens] (every member padded to the full length) and,
    with `logprobs`, log pi(token) under the untempered logits, from the same passes."""
    folded = fold(stack) if folded is None else folded.detach()
    members, batch = start.next_position.shape
    length = start.key_mask.shape[1]
    total = length + max_new_tokens
    device = start.last.device
    keys = [k.new_empty(*k.shape[:2], total, k.shape[3]) for k in start.keys]
    values = [v.new_empty(*v.shape[:2], total, v.shape[3]) for v in start.values]
    for buffer, filled in zip(keys + values, start.keys + start.values, strict=True):
        buffer[:, :, :length] = filled
    key_mask = torch.zeros(members * batch, total, dtype=torch.bool, device=device)
    key_mask[:, :length] = start.key_mask
    logits = _logits(folded, start.last)
    done = torch.zeros(members, batch, dtype=torch.bool, device=device)
    tokens = torch.full((members, batch, max_new_tokens), pad_id, dtype=torch.long, device=device)
    scores = torch.zeros(members, batch, max_new_tokens) if logprobs else None
    uniforms = torch.zeros(members, batch)
    drawing = list(range(members))  # members some of whose rows are still running
    for step in range(max_new_tokens):
        for e in drawing:
            uniforms[e] = torch.rand(batch, generator=generators[e])
        logits = logits.float()
        token = draw(torch.softmax(logits / temperature, dim=-1), uniforms)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        tokens[:, :, step] = token
        if scores is not None:
            lsm = torch.log_softmax(logits, dim=-1)
            scores[:, :, step] = lsm.gather(-1, token.unsqueeze(-1)).squeeze(-1)
        done = done | (token == stop_id)
        member_done = done.all(1).tolist()
        drawing = [e for e in drawing if not member_done[e]]
        if not drawing or step + 1 == max_new_tokens:
            break
        # finished rows keep decoding padding; their outputs are discarded
        position = start.next_position + step
        state = _decode(stack, folded, token, position, keys, values, key_mask, length + step)
        logits = _logits(folded, state)
    return (tokens, scores) if logprobs else tokens


@torch.no_grad()
def sequence_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """fast_gpt2.sequence_scores through this module's blocks (the fused attention): the
    one-output score of a GPT2ForSequenceClassification at each row's last real token [B]."""
    names = [n for n in weight_names(model.config) if n != "lm_head.weight"]
    params = dict(model.named_parameters())
    single = StackedGPT2(model.config, {n: params[n].unsqueeze(0) for n in names})
    hidden, _, _ = hidden_states(
        single, input_ids[None], attention_mask[None], fast_gpt2.positions(attention_mask)[None]
    )
    last = attention_mask.long().cumsum(-1).argmax(-1)  # index of the last real token
    pooled = hidden[0, torch.arange(hidden.shape[1], device=hidden.device), last]
    return model.score(pooled).squeeze(-1)
