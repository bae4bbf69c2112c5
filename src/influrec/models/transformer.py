"""The behaviour Transformer: a causal, pre-LayerNorm Transformer over behaviour sequences.

Each token is the sum of an item embedding, a behaviour-type embedding, a learned position
embedding and, optionally, a time-gap bucket embedding and a value embedding. Position p of
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
        self.mlp = nn.Sequential(
            nn.Linear(d, config.ff_mult * d),
            nn.GELU(),
            nn.Linear(config.ff_mult * d, d),
            nn.Dropout(config.dropout),
        )

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


class BehaviorTransformer(nn.Module):
    """Scores the next item and predicts the next behaviour type at every position."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        prefix_reuse=True, shared_first_layer_deletions=True, attention_weights=True
    )
    item_features: torch.Tensor  # (n_items + 1, width) value ids, with model.item_features

    def __init__(
        self,
        config: ModelConfig,
        *,
        n_items: int,
        n_behaviors: int,
        feature_values: int = 0,
        feature_width: int = 1,
    ) -> None:
        super().__init__()
        self.config, self.n_items, self.n_behaviors = config, n_items, n_behaviors
        d = config.d_model
        self.item_embedding = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.feature_embedding: nn.Embedding | None = None
        self._table_cache: tuple[tuple[tuple[int, int], ...], torch.Tensor] | None = None
        if config.item_features:  # value ids per item: set_item_features, or loaded weights
            self.feature_embedding = nn.Embedding(feature_values + 1, d, padding_idx=0)
            table = torch.zeros(n_items + 1, max(1, feature_width), dtype=torch.long)
            self.register_buffer("item_features", table)
        self.behavior_embedding = nn.Embedding(n_behaviors + 1, d, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.gap_embedding = (
            nn.Embedding(config.time_buckets, d, padding_idx=0) if config.time_buckets else None
        )
        self.value_embedding = nn.Linear(1, d) if config.use_value else None
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_final = nn.LayerNorm(d)
        self.behavior_head = nn.Linear(d, n_behaviors + 1) if config.behavior_head else None
        self.apply(_init_weights)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_item_features(self, table: torch.Tensor) -> None:
        """Value ids (n_items + 1, width) of each item's features; 0 pads (see ItemFeatures)."""
        if self.feature_embedding is None:
            raise ValueError("this model was built without item features (model.item_features)")
        if table.shape != self.item_features.shape:
            raise ValueError(
                f"item feature table {tuple(table.shape)} != {tuple(self.item_features.shape)}"
            )
        if int(table.max()) >= self.feature_embedding.num_embeddings or int(table.min()) < 0:
            raise ValueError("item feature ids outside 0..feature_values")
        self.item_features.copy_(table)

    def item_table(self) -> torch.Tensor:
        """Every item's embedding (n_items + 1, D): its own vector, plus the mean of its feature
        values' vectors when the model has item features. Row 0 (padding) is zero.

        With features and without gradients the table is kept until a weight or the feature
        ids change (their version counters and storage say when): a recommendation would
        otherwise rebuild it twice, about 1.2 ms each on Beauty's 12k items."""
        own = self.item_embedding.weight
        if self.feature_embedding is None:
            return own
        if torch.is_grad_enabled():
            return self._features_table()
        values, ids = self.feature_embedding.weight, self.item_features
        key = tuple((t.data_ptr(), t._version) for t in (own, values, ids))
        if self._table_cache is None or self._table_cache[0] != key:
            self._table_cache = (key, self._features_table())
        return self._table_cache[1]

    def _features_table(self) -> torch.Tensor:
        assert self.feature_embedding is not None
        ids = self.item_features
        count = (ids > 0).sum(dim=1, keepdim=True).clamp(min=1)
        return self.item_embedding.weight + self.feature_embedding(ids).sum(dim=1) / count

    def position_ids(self, items: torch.Tensor) -> torch.Tensor:
        """Position ids of left-padded events (B, T): (1, T) for ``"end"``, (B, T) for
        ``"start"``, where each row counts from its first event that is not padding (the
        padding before it gets 0). ValueError when T > max_len."""
        length = items.shape[1]
        if length > self.config.max_len:
            raise ValueError(
                f"sequence of {length} events is longer than max_len {self.config.max_len}"
            )
        columns = torch.arange(length, device=items.device)
        if self.config.positions == "end":
            return (columns + self.config.max_len - length)[None]  # (1, T)
        first = (items != 0).long().argmax(dim=1, keepdim=True)  # (B, 1); 0 for all padding
        return (columns[None] - first).clamp(min=0)  # (B, T)

    def unpadded_position_ids(self, length: int, *, device: torch.device) -> torch.Tensor:
        """(length,) position ids of the events of an unpadded sequence of ``length`` events."""
        return self.position_ids(torch.ones(1, length, dtype=torch.long, device=device))[0]

    def embed(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        *,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings (B, T, D) before dropout and the Transformer blocks.

        ``positions`` (T,) or (B, T) overrides the position ids, by default
        :meth:`position_ids` of ``items`` (so an all-padding baseline can keep the positions of
        the real events).
        """
        if positions is None:
            positions = self.position_ids(items)
        table = self.item_table()
        x = F.embedding(items, table, padding_idx=0) + self.behavior_embedding(behaviors)
        x = x + self.position_embedding(positions)
        if self.gap_embedding is not None and gaps is not None:
            x = x + self.gap_embedding(gaps)
        if self.value_embedding is not None and values is not None:
            x = x + self.value_embedding(values[..., None]) * (items != 0)[..., None]
        return x

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

    def encode(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        *,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Hidden states (B, T, D) of left-padded (B, T) inputs; position t summarises events
        0..t. ``last_only``: the last position only, (B, 1, D)."""
        embeddings = self.embed(items, behaviors, gaps, values)  # (B, T, D)
        return self.encode_embeddings(embeddings, items, last_only=last_only)

    forward = encode

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

    def scoring_space(
        self, hidden: torch.Tensor, table: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(queries, items) whose dot products are the item scores: the hidden states and the
        item table as they are, or with ``model.score_temperature`` > 0 both L2-normalised and
        the queries divided by the temperature (cosine scores)."""
        temperature = self.config.score_temperature
        if temperature <= 0:
            return hidden, table
        return F.normalize(hidden, dim=-1) / temperature, F.normalize(table, dim=-1)

    def item_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores (..., n_items + 1) of every item; index 0 (padding) is -inf."""
        queries, items = self.scoring_space(hidden, self.item_table())
        scores = queries @ items.T
        scores[..., 0] = float("-inf")
        return scores

    def behavior_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits (..., n_behaviors + 1) of the next behaviour type; index 0 (padding) is -inf."""
        if self.behavior_head is None:
            raise ValueError("this model was built without a behaviour head (model.behavior_head)")
        logits = self.behavior_head(hidden)
        logits[..., 0] = float("-inf")
        return logits


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
