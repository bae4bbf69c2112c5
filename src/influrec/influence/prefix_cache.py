"""Exact leave-one-out by reusing the events before each deletion (any number of layers).

Causal attention makes the keys and values of a sequence's first P events the same in every
sequence that starts with these events at the same positions, whatever follows. With
``model.positions = "start"`` an event's position does not depend on how many events follow
it, so sequences that share their first events share those keys and values; with ``"end"``
only sequences of the same length do (every leave-one-out deletion row has the same length, so
the deletions of one history always can).

:func:`encode_prefix` runs one unpadded sequence once and keeps every layer's keys and values;
:func:`encode_suffix` then computes only the positions after a shared start. Both read the
layers of :class:`~influrec.models.transformer.BehaviorTransformer` through its public
attention helpers (:meth:`~influrec.models.transformer.CausalSelfAttention.queries_keys_values`
and :meth:`~influrec.models.transformer.CausalSelfAttention.merge_heads`); a model opts in by
declaring ``capabilities.prefix_reuse``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from influrec.models.transformer import BehaviorTransformer, Block, CausalSelfAttention

KeysValues = tuple[torch.Tensor, torch.Tensor]
"""Attention keys and values of one layer, each (B, H, T, D/H)."""


@dataclass(frozen=True)
class PrefixCache:
    """Every layer's keys and values of the P events of one unpadded sequence.

    Causal attention makes them the same in any sequence that starts with these events at the
    same ``positions``, whatever follows.
    """

    layers: list[KeysValues]  # per layer, keys and values (1, H, P, D/H)
    positions: torch.Tensor  # (P,) position ids the events were encoded at

    def __len__(self) -> int:
        return int(self.positions.shape[0])


def attend_after(
    attn: CausalSelfAttention, x: torch.Tensor, past: KeysValues, *, last_only: bool = False
) -> tuple[torch.Tensor, KeysValues]:
    """Attention of S new unpadded tokens x (B, S, D) that follow P cached ones.

    ``past`` holds the cached keys and values, each (1 or B, H, P, D/H); every new token sees
    all P of them and the new tokens up to itself. Returns (B, S, D), or (B, 1, D) for the last
    token only when ``last_only``, and the new tokens' keys and values.
    """
    q, k, v = attn.queries_keys_values(x, last_query_only=last_only)  # (B, H, S or 1, D/H)
    batch, new = x.shape[:2]
    seen = past[0].shape[2]
    keys = torch.cat([past[0].expand(batch, -1, -1, -1), k], dim=2)  # (B, H, P + S, D/H)
    values = torch.cat([past[1].expand(batch, -1, -1, -1), v], dim=2)
    dropout = attn.attn_dropout if attn.training else 0.0
    if last_only:  # the last token sees every key
        y = F.scaled_dot_product_attention(q, keys, values, dropout_p=dropout)
    elif seen == 0:
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
    else:  # new token s sees the P cached keys and new keys 0..s
        mask = torch.ones(new, seen + new, dtype=torch.bool, device=x.device).tril(seen)
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=dropout)
    return attn.merge_heads(y), (k, v)


def block_after(
    block: Block, x: torch.Tensor, past: KeysValues, *, last_only: bool = False
) -> tuple[torch.Tensor, KeysValues]:
    """The block over new tokens x (B, S, D) after cached keys and values (see
    :func:`attend_after`); also returns the new tokens' keys and values."""
    attended, new = attend_after(block.attn, block.ln1(x), past, last_only=last_only)
    x = (x[:, -1:] if last_only else x) + attended
    return x + block.mlp(block.ln2(x)), new


def encode_prefix(
    model: BehaviorTransformer,
    items: torch.Tensor,
    behaviors: torch.Tensor,
    gaps: torch.Tensor | None = None,
    values: torch.Tensor | None = None,
) -> PrefixCache:
    """Every layer's keys and values of one unpadded sequence (1, P), for :func:`encode_suffix`.

    The events get the positions of an unpadded sequence of P events.
    """
    if items.shape[0] != 1 or not bool((items != 0).all()):
        raise ValueError(f"encode_prefix takes one unpadded sequence, got {tuple(items.shape)}")
    config = model.config
    positions = model.unpadded_position_ids(items.shape[1], device=items.device)
    x = model.dropout(model.embed(items, behaviors, gaps, values, positions=positions))
    empty = x.new_zeros(1, config.heads, 0, config.d_model // config.heads)
    layers = []
    for block in model.layers():
        x, keys_values = block_after(block, x, (empty, empty))
        layers.append(keys_values)
    return PrefixCache(layers, positions)


def encode_suffix(
    model: BehaviorTransformer,
    cache: PrefixCache,
    items: torch.Tensor,
    behaviors: torch.Tensor,
    gaps: torch.Tensor | None = None,
    values: torch.Tensor | None = None,
    *,
    start: int,
) -> torch.Tensor:
    """Last hidden state (B, D) of B unpadded sequences of ``start`` + S events: the cached
    sequence's first ``start`` events followed by the events (B, S) given here.

    Equal to ``model.encode(whole sequences, last_only=True)[:, -1]``, computing only the S
    new positions (the last layer only the last one). ValueError when the cache does not hold
    the first ``start`` events at the positions the whole sequences give them: with ``"end"``
    positions that needs whole sequences exactly as long as the cached one.
    """
    length = start + items.shape[1]
    positions = model.unpadded_position_ids(length, device=items.device)
    if start > len(cache) or not torch.equal(positions[:start], cache.positions[:start]):
        raise ValueError(
            f"the cache ({len(cache)} events) does not hold the first {start} events of "
            f"sequences of {length} events with {model.config.positions!r} positions"
        )
    if not bool((items != 0).all()):
        raise ValueError("encode_suffix takes unpadded events")
    x = model.dropout(model.embed(items, behaviors, gaps, values, positions=positions[start:]))
    blocks = model.layers()
    for i, (block, (keys, vals)) in enumerate(zip(blocks, cache.layers, strict=True)):
        past = (keys[:, :, :start], vals[:, :, :start])
        x, _ = block_after(block, x, past, last_only=i == len(blocks) - 1)
    return model.ln_final(x)[:, -1]  # (B, D)
