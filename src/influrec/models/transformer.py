"""The behaviour Transformer: a causal, pre-LayerNorm Transformer over behaviour sequences.

Each token is the sum of an item embedding, a behaviour-type embedding, a learned position
embedding and, optionally, a time-gap bucket embedding and a value embedding (the tokens and the
heads every family shares, :class:`~influrec.models.tokens.EventModel`). Position p of
the output summarises events 0..p and predicts event p + 1: all items are scored by a dot
product with the (tied) item embeddings, and a second head predicts the next behaviour type.
With ``model.item_features`` an item's embedding is its own vector plus the mean of its
feature values' vectors (:meth:`BehaviorTransformer.item_table`), in inputs and scores alike.

The model depends only on tensors and its own config, and implements
:class:`~influrec.models.protocol.SequenceModel`. Sequences are left-padded (item id 0), so
the most recent event is always in the last column. ``model.positions`` anchors the learned
positions at the most recent event (``"end"``: it is at position max_len - 1) or at the oldest
event of the window (``"start"``: it is at 0). With ``"start"`` an event's position, and so
its hidden state, does not depend on how many events follow it, so sequences that share their
first events can reuse those events' keys and values; with ``"end"`` only sequences of the
same length can. The exact leave-one-out kernels that use this live in
:mod:`influrec.influence.prefix_cache` and :mod:`influrec.influence.deletions`; they read the
layers through :meth:`CausalSelfAttention.queries_keys_values` and
:meth:`CausalSelfAttention.merge_heads`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from influrec.config import ModelConfig
from influrec.models.protocol import Capabilities
from influrec.models.tokens import EventModel, feed_forward


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention over (B, T, D) tokens, H heads of D/H dimensions."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.attn_dropout = config.attn_dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, allowed: torch.Tensor | None, *, last_only: bool = False
    ) -> torch.Tensor:
        """(B, T, D) -> (B, T, D), or (B, 1, D) for the last position only when ``last_only``.

        ``allowed`` (B, 1, T, T) marks the keys each query may see; None means plain causal
        attention without padding.
        """
        q, k, v = self.queries_keys_values(x, last_query_only=last_only)  # (B, H, T or 1, D/H)
        dropout = self.attn_dropout if self.training else 0.0
        if last_only:  # the last query may see every key that is not padding
            mask = None if allowed is None else allowed[:, :, -1:]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        elif allowed is None:  # no padding: the fused causal kernel
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        return self.merge_heads(y)

    def queries_keys_values(
        self, x: torch.Tensor, *, last_query_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, D) normalised tokens -> queries, keys and values, each (B, H, T, D/H), head h
        reading features h*D/H..(h+1)*D/H of the ``qkv`` projection; with ``last_query_only``
        the query of the last position only, (B, H, 1, D/H). The first half of attention,
        public so that other attention schemes over these weights (the exact leave-one-out
        kernels) project exactly as :meth:`forward` does."""
        batch, length, d = x.shape
        heads = (self.heads, d // self.heads)
        if not last_query_only:
            q, k, v = self.qkv(x).view(batch, length, 3, *heads).unbind(2)
            return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        weight, bias = self.qkv.weight, self.qkv.bias
        q = F.linear(x[:, -1:], weight[:d], bias[:d]).view(batch, 1, *heads)
        k, v = F.linear(x, weight[d:], bias[d:]).view(batch, length, 2, *heads).unbind(2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def merge_heads(self, y: torch.Tensor) -> torch.Tensor:
        """Attention output (B, H, T, D/H) -> heads concatenated, projected by ``out`` and passed
        through the residual dropout: (B, T, D). The second half of attention (see
        :meth:`queries_keys_values`)."""
        batch, heads, length, head_dim = y.shape
        y = y.transpose(1, 2).reshape(batch, length, heads * head_dim)
        return self.resid_dropout(self.out(y))

    def weights(self, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        """Attention probabilities (B, H, T, T), computed explicitly (for diagnostics)."""
        length = x.shape[1]
        q, k, _ = self.queries_keys_values(x)  # (B, H, T, D/H)
        logits = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
        if allowed is None:
            allowed = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        return torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)


class Block(nn.Module):
    """One pre-LayerNorm layer: x + attn(ln1(x)), then x + mlp(ln2(x)), (B, T, D) throughout."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.d_model
        self.ln1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = feed_forward(config)

    def forward(
        self, x: torch.Tensor, allowed: torch.Tensor | None, *, last_only: bool = False
    ) -> torch.Tensor:
        attended = self.attn(self.ln1(x), allowed, last_only=last_only)
        x = (x[:, -1:] if last_only else x) + attended
        return x + self.mlp(self.ln2(x))


def attention_mask(items: torch.Tensor) -> torch.Tensor | None:
    """(B, 1, T, T) bool: query t may attend to key s <= t that is not padding; None when the
    batch has no padding (then plain causal attention applies, with a faster kernel).

    A padded query attends to itself only (its output is never used), which keeps every row
    of the softmax finite.
    """
    if bool((items != 0).all()):
        return None
    length = items.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
    allowed = causal[None] & (items != 0)[:, None, :]  # (B, T, T)
    allowed |= torch.eye(length, dtype=torch.bool, device=items.device)[None]
    return allowed[:, None]


class BehaviorTransformer(EventModel):
    """Scores the next item and predicts the next behaviour type at every position."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        prefix_reuse=True, shared_first_layer_deletions=True, attention_weights=True
    )

    def build_layers(self, config: ModelConfig) -> None:
        """The layers between the token embeddings and the final LayerNorm."""
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))

    def encode_embeddings(
        self, x: torch.Tensor, items: torch.Tensor, *, last_only: bool = False
    ) -> torch.Tensor:
        """Run the blocks over token embeddings x (B, T, D); ``items`` (B, T) gives the padding.

        With ``last_only`` the last block computes only the last position: (B, 1, D), the same
        values as the last column of the full output at less cost (for scoring histories).
        """
        allowed = attention_mask(items)
        x = self.dropout(x)
        for i, block in enumerate(self.blocks):
            x = block(x, allowed, last_only=last_only and i == len(self.blocks) - 1)
        return self.ln_final(x)  # (B, T, D) or (B, 1, D)

    def layers(self) -> list[Block]:
        """The blocks, first to last (``blocks`` typed as what it holds)."""
        blocks = []
        for block in self.blocks:
            assert isinstance(block, Block)
            blocks.append(block)
        return blocks

    def attention_weights(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Per layer, the attention probabilities (B, H, T, T) of the forward pass."""
        allowed = attention_mask(items)
        x = self.dropout(self.embed(items, behaviors, gaps, values))
        maps = []
        for block in self.layers():
            maps.append(block.attn.weights(block.ln1(x), allowed))
            x = block(x, allowed)
        return maps
