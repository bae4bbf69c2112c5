"""Exact leave-one-out with the first layer's attention shared by every deletion.

For one unpadded sequence of P + 1 events, deletion row j holds the events 0..j-1 at positions
0..j-1 and the events j+1..P moved one position down. The first layer's tokens, queries, keys
and values are therefore those of two sequences shared by every row: the events 0..P-1 ("kept")
and the events 1..P ("moved"), each at positions 0..P-1. For the query at position p >= j
(event p+1), row j's attention sums the kept keys before j and the moved keys j..p, so one
exclusive cumulative sum over the keys, per query, gives every row's numerator and normaliser
at once (:func:`shared_deletion_attention`); only the feed-forward part is left to compute per
(row, position) pair (:func:`feed_forward_`). A second and last layer attends from each row's
last position only (:func:`last_after_deletions`); with more layers the middle ones run every
row whole.

These kernels read the layers of :class:`~influrec.models.transformer.BehaviorTransformer`
through its public attention helpers; a model opts in by declaring
``capabilities.shared_first_layer_deletions``. Inference only: no dropout, no gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from influrec.models.transformer import BehaviorTransformer, Block, CausalSelfAttention

FEED_FORWARD_ROWS = 2048
"""Rows per block in :func:`feed_forward_` (1,024-2,048 were fastest on 20k rows)."""


def deletion_pairs(deleted: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, position) of every position at or after each row's deletion, in row order."""
    counts = (length - deleted).clamp(min=0)
    rows = torch.repeat_interleave(torch.arange(len(deleted), device=deleted.device), counts)
    offsets = torch.arange(int(counts.sum()), device=deleted.device) - torch.repeat_interleave(
        counts.cumsum(0) - counts, counts
    )
    return rows, deleted[rows] + offsets


def shared_deletion_attention(
    attn: CausalSelfAttention,
    kept: torch.Tensor,
    moved: torch.Tensor,
    deleted: torch.Tensor,
    at: torch.Tensor,
    residual: torch.Tensor,
) -> torch.Tensor:
    """``residual`` (N, D) plus the projected attention output at position ``at[n]`` >=
    ``deleted[n]`` of the sequence with event ``deleted[n]`` removed, written into
    ``residual``; from the normalised inputs of the kept events 0..P-1 (P, D) and of the moved
    events 1..P (P, D), both at positions 0..P-1.
    """
    length, d = kept.shape
    _, k_kept, v_kept = (t[0] for t in attn.queries_keys_values(kept[None]))  # (H, P, E) each
    q, k_moved, v_moved = (t[0] for t in attn.queries_keys_values(moved[None]))
    scale = (d // attn.heads) ** -0.5
    s_kept = (q @ k_kept.transpose(1, 2)) * scale  # (H, P queries, P keys)
    s_moved = (q @ k_moved.transpose(1, 2)) * scale
    steps = torch.arange(length, device=kept.device)
    query, key = steps[:, None], steps[None]
    s_kept = s_kept.masked_fill(key >= query, float("-inf"))  # kept keys sit before p
    s_moved = s_moved.masked_fill(key > query, float("-inf"))  # moved keys up to p
    top = torch.maximum(s_kept.amax(-1, keepdim=True), s_moved.amax(-1, keepdim=True))
    a, b = (s_kept - top).exp(), (s_moved - top).exp()  # (H, P, P)
    # deletion j, query p: Σ_{i<j} a_i v_i + Σ_{j<=i<=p} b_i w_i
    #                    = Σ_i b_i w_i + Σ_{i<j} (a_i v_i - b_i w_i)
    # laid out (query, key, H, E) so that gathering pairs gives (N, H, E) = (N, D) rows,
    # built and summed in place: memory traffic is what costs here
    a_t, b_t = a.permute(1, 2, 0)[..., None], b.permute(1, 2, 0)[..., None]
    sums = a_t * v_kept.transpose(0, 1)[None]  # (P, P, H, E)
    sums.addcmul_(b_t, v_moved.transpose(0, 1)[None], value=-1.0)
    torch.cumsum(sums, dim=1, out=sums)  # [p, i]: the sum over keys 0..i
    weights = (a - b).cumsum(-1).permute(1, 2, 0)  # (P, P, H)
    last_before = deleted.clamp(max=length - 1) - 1  # j = P has no position p >= j
    none_before = (last_before < 0)[:, None, None]  # j = 0
    i = last_before.clamp(min=0)
    numerator = sums[at, i].masked_fill_(none_before, 0.0)  # (N, H, E)
    numerator += (b @ v_moved).transpose(0, 1)[at]
    normaliser = weights[at, i].masked_fill_(none_before[..., 0], 0.0)  # (N, H)
    normaliser += b.sum(-1).transpose(0, 1)[at]
    y = numerator.div_(normaliser[..., None]).view(len(at), d)  # heads merged: (N, D)
    return residual.add_(attn.out.bias).addmm_(y, attn.out.weight.T)


def feed_forward_(block: Block, x: torch.Tensor) -> torch.Tensor:
    """``x + mlp(ln2(x))`` written into ``x`` (N, D): the feed-forward half of ``block``.

    For the ~P²/2 rows of a leave-one-out: in blocks of :data:`FEED_FORWARD_ROWS` rows, so that
    the 4x wider hidden layer stays in cache between the two matrix products, and written in
    place (one temporary per block instead of three). On 20k rows the feed-forward alone is
    ~15% faster than unblocked; a whole leave-one-out 3-4% (paired A/B). Other activations
    (``model.activation``) run the block's own feed-forward module on each block of rows.
    """
    if not isinstance(block.mlp[1], nn.GELU):
        for part in x.split(FEED_FORWARD_ROWS):
            part.add_(block.mlp(block.ln2(part)))
        return x
    up, activation, down = block.mlp[0], block.mlp[1], block.mlp[2]
    assert isinstance(up, nn.Linear) and isinstance(down, nn.Linear)
    assert isinstance(activation, nn.GELU)
    for part in x.split(FEED_FORWARD_ROWS):
        hidden = torch.mm(block.ln2(part), up.weight.T).add_(up.bias)
        torch.ops.aten.gelu_(hidden, approximate=activation.approximate)
        part.addmm_(hidden, down.weight.T).add_(down.bias)
    return x


def last_after_deletions(
    block: Block,
    kept: torch.Tensor,
    pairs: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    deleted: torch.Tensor,
) -> torch.Tensor:
    """``block``'s output (R, D) at the last position of R sequences of P tokens, where
    sequence r holds ``kept`` (P, D) before position ``deleted[r]`` and, from there on, the
    tokens ``pairs[n]`` (N, D) at positions ``cols[n]`` of rows ``rows[n]``.

    Only R queries read the N pair tokens, so their keys and values are never projected:
    q·(W_k z + b_k) = (W_kᵀq)·z + q·b_k, and Σ α (W_v z + b_v) = W_v (Σ α z) + b_v Σ α, with z
    the normalised token. That replaces an N x D x 2D projection by two N x D dot products per
    head.
    """
    attn = block.attn
    length, d = kept.shape
    heads = attn.heads
    scale = (d // heads) ** -0.5
    w_q, w_k, w_v = attn.qkv.weight.split(d)  # (D, D) each; head h owns rows h*E..(h+1)*E
    b_q, b_k, b_v = attn.qkv.bias.split(d)
    _, k_kept, v_kept = (
        t[0] for t in attn.queries_keys_values(block.ln1(kept)[None], last_query_only=True)
    )  # (H, P, E)
    z_pairs = block.ln1(pairs)  # (N, D)
    x = kept[-1:].repeat(len(deleted), 1)  # (R, D) the last token: kept when j = P
    at_end = cols == length - 1
    x[rows[at_end]] = pairs[at_end]
    q = F.linear(block.ln1(x), w_q, b_q).view(len(x), heads, -1)  # (R, H, E)
    scores = torch.einsum("rhe,hpe->rhp", q, k_kept)
    q_keys = torch.einsum("rhe,hed->rhd", q, w_k.view(heads, -1, d))  # (R, H, D)
    q_bias = torch.einsum("rhe,he->rh", q, b_k.view(heads, -1))
    scores[rows, :, cols] = torch.einsum("nhd,nd->nh", q_keys[rows], z_pairs) + q_bias[rows]
    probs = torch.softmax(scores * scale, dim=-1)  # (R, H, P)
    moved = torch.arange(length, device=kept.device)[None] >= deleted[:, None]  # (R, P)
    y = torch.einsum("rhp,hpe->rhe", probs.masked_fill(moved[:, None], 0.0), v_kept)
    weights = probs[rows, :, cols]  # (N, H)
    mixed = pairs.new_zeros(len(x), heads, d)
    mixed.index_add_(0, rows, weights[..., None] * z_pairs[:, None])  # (R, H, D)
    mass = pairs.new_zeros(len(x), heads).index_add_(0, rows, weights)
    y = y + torch.einsum("rhd,hed->rhe", mixed, w_v.view(heads, -1, d))
    y = y + mass[..., None] * b_v.view(heads, -1)
    x = x + attn.merge_heads(y[:, :, None])[:, 0]
    return x + block.mlp(block.ln2(x))


@torch.no_grad()
def encode_deletions(
    model: BehaviorTransformer,
    items: torch.Tensor,
    behaviors: torch.Tensor,
    values: torch.Tensor | None,
    deleted: torch.Tensor,
) -> torch.Tensor:
    """Last hidden states (R, D) of one unpadded sequence of P + 1 events (1, P + 1) with event
    ``deleted[r]`` removed (each row P events long, P <= max_len), without time gaps.

    Equal to re-scoring each deletion whole (tests: to 1e-4 of one-at-a-time re-scoring); see
    the module's description for how. ValueError for a model with time gaps (deleting an event
    changes the next one's gap) or a sequence that is padded, batched or under 2 events.
    """
    if model.gap_embedding is not None:
        raise ValueError("encode_deletions needs a model without time gaps")
    length = items.shape[1] - 1
    if items.shape[0] != 1 or length < 1 or not bool((items != 0).all()):
        raise ValueError(f"encode_deletions takes one unpadded sequence, got {tuple(items.shape)}")
    positions = model.unpadded_position_ids(length, device=items.device)

    def tokens(span: slice) -> torch.Tensor:
        part = None if values is None else values[:, span]
        embedded = model.embed(items[:, span], behaviors[:, span], None, part, positions=positions)
        return embedded[0]

    kept, moved = tokens(slice(0, length)), tokens(slice(1, length + 1))  # (P, D) each
    blocks = model.layers()
    first = blocks[0]
    rows, cols = deletion_pairs(deleted, length)  # (N,) row, position >= its deletion
    if len(blocks) == 1:  # only the last position is read
        rows, cols = rows[cols == length - 1], cols[cols == length - 1]
    x = shared_deletion_attention(
        first.attn, first.ln1(kept), first.ln1(moved), deleted[rows], cols, residual=moved[cols]
    )
    x = feed_forward_(first, x)  # (N, D) the first layer's output at each pair
    before = first(kept[None], None)[0]  # (P, D) its output for the kept events
    return model.ln_final(_last_layers(blocks, before, x, rows, cols, deleted))  # (R, D)


def _last_layers(
    blocks: list[Block],
    before: torch.Tensor,
    pairs: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    deleted: torch.Tensor,
) -> torch.Tensor:
    """The last position's output (R, D) of the blocks after the first, from the first
    block's output ``before`` (P, D) for the kept events and ``pairs`` (N, D) at (rows, cols)."""
    if len(blocks) == 1:
        hidden = before[-1:].repeat(len(deleted), 1)
        hidden[rows] = pairs
        return hidden
    if len(blocks) == 2:
        return last_after_deletions(blocks[1], before, pairs, rows, cols, deleted)
    hidden = before[None].repeat(len(deleted), 1, 1)  # (R, P, D): middle layers run every row
    hidden[rows, cols] = pairs
    for i, block in enumerate(blocks[1:], start=1):
        hidden = block(hidden, None, last_only=i == len(blocks) - 1)
    return hidden[:, -1]
