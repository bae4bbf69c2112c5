"""The behaviour Transformer: a causal, pre-LayerNorm Transformer over behaviour sequences.

Each token is the sum of an item embedding, a behaviour-type embedding, a learned position
embedding and, optionally, a time-gap bucket embedding and a value embedding. Position p of
the output summarises events 0..p and predicts event p + 1: all items are scored by a dot
product with the (tied) item embeddings, and a second head predicts the next behaviour type.
With ``model.item_features`` an item's embedding is its own vector plus the mean of its
feature values' vectors (:meth:`BehaviorTransformer.item_table`), in inputs and scores alike.

The model depends only on tensors and its own config. Sequences are left-padded (item id 0),
so the most recent event is always in the last column. ``model.positions`` anchors the learned
positions at the most recent event (``"end"``: it is at position max_len - 1) or at the oldest
event of the window (``"start"``: it is at 0). With ``"start"`` an event's position, and so
its hidden state, does not depend on how many events follow it, so sequences that share their
first events can reuse those events' keys and values (:meth:`BehaviorTransformer.encode_prefix`);
with ``"end"`` only sequences of the same length can.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from influrec.config import ModelConfig

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


class CausalSelfAttention(nn.Module):
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
        q, k, v = self._split_heads(x, last_query_only=last_only)  # (B, H, T or 1, D/H)
        dropout = self.attn_dropout if self.training else 0.0
        if last_only:  # the last query may see every key that is not padding
            mask = None if allowed is None else allowed[:, :, -1:]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        elif allowed is None:  # no padding: the fused causal kernel
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        return self._merge_heads(y)

    def extend(
        self, x: torch.Tensor, past: KeysValues, *, last_only: bool = False
    ) -> tuple[torch.Tensor, KeysValues]:
        """Attention of S new unpadded tokens x (B, S, D) that follow P cached ones.

        ``past`` holds the cached keys and values, each (1 or B, H, P, D/H); every new token
        sees all P of them and the new tokens up to itself. Returns (B, S, D), or (B, 1, D) for
        the last token only when ``last_only``, and the new tokens' keys and values.
        """
        q, k, v = self._split_heads(x, last_query_only=last_only)  # (B, H, S or 1, D/H)
        batch, new = x.shape[:2]
        seen = past[0].shape[2]
        keys = torch.cat([past[0].expand(batch, -1, -1, -1), k], dim=2)  # (B, H, P + S, D/H)
        values = torch.cat([past[1].expand(batch, -1, -1, -1), v], dim=2)
        dropout = self.attn_dropout if self.training else 0.0
        if last_only:  # the last token sees every key
            y = F.scaled_dot_product_attention(q, keys, values, dropout_p=dropout)
        elif seen == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:  # new token s sees the P cached keys and new keys 0..s
            mask = torch.ones(new, seen + new, dtype=torch.bool, device=x.device).tril(seen)
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=dropout)
        return self._merge_heads(y), (k, v)

    def shared_deletion_attention(
        self,
        kept: torch.Tensor,
        moved: torch.Tensor,
        deleted: torch.Tensor,
        at: torch.Tensor,
        residual: torch.Tensor,
    ) -> torch.Tensor:
        """``residual`` (N, D) plus the projected attention output at position ``at[n]`` >=
        ``deleted[n]`` of the sequence with event ``deleted[n]`` removed, written into
        ``residual``; from the normalised inputs of the kept events 0..P-1 (P, D) and of the
        moved events 1..P (P, D), both at positions 0..P-1. Inference only (no dropout). See
        :meth:`BehaviorTransformer.encode_deletions`.
        """
        length, d = kept.shape
        _, k_kept, v_kept = (t[0] for t in self._split_heads(kept[None]))  # (H, P, E) each
        q, k_moved, v_moved = (t[0] for t in self._split_heads(moved[None]))
        scale = (d // self.heads) ** -0.5
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
        return residual.add_(self.out.bias).addmm_(y, self.out.weight.T)

    def _split_heads(
        self, x: torch.Tensor, *, last_query_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, D) -> queries, keys and values, each (B, H, T, D/H); with
        ``last_query_only`` the query of the last position only, (B, H, 1, D/H)."""
        batch, length, d = x.shape
        heads = (self.heads, d // self.heads)
        if not last_query_only:
            q, k, v = self.qkv(x).view(batch, length, 3, *heads).unbind(2)
            return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        weight, bias = self.qkv.weight, self.qkv.bias
        q = F.linear(x[:, -1:], weight[:d], bias[:d]).view(batch, 1, *heads)
        k, v = F.linear(x, weight[d:], bias[d:]).view(batch, length, 2, *heads).unbind(2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def _merge_heads(self, y: torch.Tensor) -> torch.Tensor:
        """Attention output (B, H, T, D/H) -> projected (B, T, D)."""
        batch, heads, length, head_dim = y.shape
        y = y.transpose(1, 2).reshape(batch, length, heads * head_dim)
        return self.resid_dropout(self.out(y))

    def weights(self, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        """Attention probabilities (B, H, T, T), computed explicitly (for diagnostics)."""
        length = x.shape[1]
        q, k, _ = self._split_heads(x)  # (B, H, T, D/H)
        logits = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
        if allowed is None:
            allowed = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        return torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)


FEED_FORWARD_ROWS = 2048
"""Rows per block in :meth:`Block.feed_forward_` (1,024-2,048 were fastest on 20k rows)."""


class Block(nn.Module):
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

    def feed_forward_(self, x: torch.Tensor) -> torch.Tensor:
        """``x + mlp(ln2(x))`` written into ``x`` (N, D), for inference without gradients.

        Equal to the feed-forward half of :meth:`forward`, for the ~P²/2 rows of a
        leave-one-out: in blocks of :data:`FEED_FORWARD_ROWS` rows, so that the 4x wider hidden
        layer stays in cache between the two matrix products, and written in place (one
        temporary per block instead of three). On 20k rows the feed-forward alone is ~15%
        faster than unblocked; a whole leave-one-out 3-4% (paired A/B).
        """
        up, activation, down = self.mlp[0], self.mlp[1], self.mlp[2]
        assert isinstance(up, nn.Linear) and isinstance(down, nn.Linear)
        assert isinstance(activation, nn.GELU)
        for part in x.split(FEED_FORWARD_ROWS):
            hidden = torch.mm(self.ln2(part), up.weight.T).add_(up.bias)
            torch.ops.aten.gelu_(hidden, approximate=activation.approximate)
            part.addmm_(hidden, down.weight.T).add_(down.bias)
        return x

    def last_after_deletions(
        self,
        kept: torch.Tensor,
        pairs: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        deleted: torch.Tensor,
    ) -> torch.Tensor:
        """This block's output (R, D) at the last position of R sequences of P tokens, where
        sequence r holds ``kept`` (P, D) before position ``deleted[r]`` and, from there on,
        the tokens ``pairs[n]`` (N, D) at positions ``cols[n]`` of rows ``rows[n]``.

        Only R queries read the N pair tokens, so their keys and values are never projected:
        q·(W_k z + b_k) = (W_kᵀq)·z + q·b_k, and Σ α (W_v z + b_v) = W_v (Σ α z) + b_v Σ α,
        with z the normalised token. That replaces an N x D x 2D projection by two N x D dot
        products per head.
        """
        attn = self.attn
        length, d = kept.shape
        heads = attn.heads
        scale = (d // heads) ** -0.5
        w_q, w_k, w_v = attn.qkv.weight.split(d)  # (D, D) each; head h owns rows h*E..(h+1)*E
        b_q, b_k, b_v = attn.qkv.bias.split(d)
        _, k_kept, v_kept = (
            t[0] for t in attn._split_heads(self.ln1(kept)[None], last_query_only=True)
        )  # (H, P, E)
        z_pairs = self.ln1(pairs)  # (N, D)
        x = kept[-1:].repeat(len(deleted), 1)  # (R, D) the last token: kept when j = P
        at_end = cols == length - 1
        x[rows[at_end]] = pairs[at_end]
        q = F.linear(self.ln1(x), w_q, b_q).view(len(x), heads, -1)  # (R, H, E)
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
        x = x + attn._merge_heads(y[:, :, None])[:, 0]
        return x + self.mlp(self.ln2(x))

    def extend(
        self, x: torch.Tensor, past: KeysValues, *, last_only: bool = False
    ) -> tuple[torch.Tensor, KeysValues]:
        """The block over new tokens x (B, S, D) after cached keys and values (see
        :meth:`CausalSelfAttention.extend`); also returns the new tokens' keys and values."""
        attended, new = self.attn.extend(self.ln1(x), past, last_only=last_only)
        x = (x[:, -1:] if last_only else x) + attended
        return x + self.mlp(self.ln2(x)), new


def _deletion_pairs(deleted: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, position) of every position at or after each row's deletion, in row order."""
    counts = (length - deleted).clamp(min=0)
    rows = torch.repeat_interleave(torch.arange(len(deleted), device=deleted.device), counts)
    offsets = torch.arange(int(counts.sum()), device=deleted.device) - torch.repeat_interleave(
        counts.cumsum(0) - counts, counts
    )
    return rows, deleted[rows] + offsets


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

    def forward(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        *,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Hidden states (B, T, D); position t summarises events 0..t. ``last_only``: (B, 1, D)."""
        embeddings = self.embed(items, behaviors, gaps, values)
        return self.encode_embeddings(embeddings, items, last_only=last_only)

    def encode_prefix(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> PrefixCache:
        """Every layer's keys and values of one unpadded sequence (1, P), for :meth:`encode_suffix`.

        The events get the positions of an unpadded sequence of P events.
        """
        if items.shape[0] != 1 or not bool((items != 0).all()):
            raise ValueError(f"encode_prefix takes one unpadded sequence, got {tuple(items.shape)}")
        positions = self.unpadded_position_ids(items.shape[1], device=items.device)
        x = self.dropout(self.embed(items, behaviors, gaps, values, positions=positions))
        empty = x.new_zeros(1, self.config.heads, 0, self.config.d_model // self.config.heads)
        layers = []
        for block in self.blocks:
            assert isinstance(block, Block)
            x, keys_values = block.extend(x, (empty, empty))
            layers.append(keys_values)
        return PrefixCache(layers, positions)

    def encode_suffix(
        self,
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

        Equal to ``forward(whole sequences, last_only=True)[:, -1]``, computing only the S new
        positions (the last layer only the last one). ValueError when the cache does not hold
        the first ``start`` events at the positions the whole sequences give them: with
        ``"end"`` positions that needs whole sequences exactly as long as the cached one.
        """
        length = start + items.shape[1]
        positions = self.unpadded_position_ids(length, device=items.device)
        if start > len(cache) or not torch.equal(positions[:start], cache.positions[:start]):
            raise ValueError(
                f"the cache ({len(cache)} events) does not hold the first {start} events of "
                f"sequences of {length} events with {self.config.positions!r} positions"
            )
        if not bool((items != 0).all()):
            raise ValueError("encode_suffix takes unpadded events")
        x = self.dropout(self.embed(items, behaviors, gaps, values, positions=positions[start:]))
        last = len(self.blocks) - 1
        for i, (block, (keys, vals)) in enumerate(zip(self.blocks, cache.layers, strict=True)):
            assert isinstance(block, Block)
            x, _ = block.extend(x, (keys[:, :, :start], vals[:, :, :start]), last_only=i == last)
        return self.ln_final(x)[:, -1]  # (B, D)

    @torch.no_grad()
    def encode_deletions(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        values: torch.Tensor | None,
        deleted: torch.Tensor,
    ) -> torch.Tensor:
        """Last hidden states (R, D) of one unpadded sequence of P + 1 events (1, P + 1) with
        event ``deleted[r]`` removed (each row P events long, P <= max_len), without time gaps.

        Row j's first layer sees the original events 0..j-1 at positions 0..j-1 and events
        j+1..P moved one position down. The first layer's tokens, queries, keys and values are
        therefore those of two sequences shared by every row: the events 0..P-1 and the events
        1..P, each at positions 0..P-1. For the query at position p >= j (event p+1), row j's
        attention sums the original keys before j and the moved keys j..p, so one exclusive
        cumulative sum over the keys, per query, gives every row's numerator and normaliser at
        once; only the feed-forward part is left to compute per (row, position) pair. A second
        and last layer attends from each row's last position only
        (:meth:`Block.last_after_deletions`); with more layers the middle ones run every row
        whole. Equal to :meth:`encode_suffix` (tests: to 1e-4 of one-at-a-time re-scoring).
        """
        if self.gap_embedding is not None:
            raise ValueError("encode_deletions needs a model without time gaps")
        length = items.shape[1] - 1
        if items.shape[0] != 1 or length < 1 or not bool((items != 0).all()):
            raise ValueError(
                f"encode_deletions takes one unpadded sequence, got {tuple(items.shape)}"
            )
        positions = self.unpadded_position_ids(length, device=items.device)

        def tokens(span: slice) -> torch.Tensor:
            part = None if values is None else values[:, span]
            embedded = self.embed(
                items[:, span], behaviors[:, span], None, part, positions=positions
            )
            return embedded[0]

        kept, moved = tokens(slice(0, length)), tokens(slice(1, length + 1))  # (P, D) each
        first = self.blocks[0]
        assert isinstance(first, Block)
        rows, cols = _deletion_pairs(deleted, length)  # (N,) row, position >= its deletion
        if len(self.blocks) == 1:  # only the last position is read
            rows, cols = rows[cols == length - 1], cols[cols == length - 1]
        x = first.attn.shared_deletion_attention(
            first.ln1(kept), first.ln1(moved), deleted[rows], cols, residual=moved[cols]
        )
        x = first.feed_forward_(x)  # (N, D) the first layer's output at each pair
        before = first(kept[None], None)[0]  # (P, D) its output for the kept events
        if len(self.blocks) == 1:
            hidden = before[-1:].repeat(len(deleted), 1)
            hidden[rows] = x
        elif len(self.blocks) == 2:
            second = self.blocks[1]
            assert isinstance(second, Block)
            hidden = second.last_after_deletions(before, x, rows, cols, deleted)
        else:  # the middle layers run every row whole
            hidden = before[None].repeat(len(deleted), 1, 1)  # (R, P, D)
            hidden[rows, cols] = x
            for i, block in enumerate(self.blocks[1:], start=1):
                hidden = block(hidden, None, last_only=i == len(self.blocks) - 1)
            hidden = hidden[:, -1]
        return self.ln_final(hidden)  # (R, D)

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
        for block in self.blocks:
            assert isinstance(block, Block)
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


MODELS: dict[str, type[BehaviorTransformer]] = {"transformer": BehaviorTransformer}
"""Model registry: ``model.kind`` -> class (CNN/RNN/MLP models register here later)."""


def build_model(
    config: ModelConfig,
    *,
    n_items: int,
    n_behaviors: int,
    feature_values: int = 0,
    feature_width: int = 1,
) -> BehaviorTransformer:
    """A model of ``config.kind``; ``feature_values`` and ``feature_width`` size the item
    features (:class:`~influrec.data.item_features.ItemFeatures`) when ``config.item_features``
    names any."""
    if config.kind not in MODELS:
        raise ValueError(f"unknown model kind {config.kind!r}; known: {', '.join(MODELS)}")
    return MODELS[config.kind](
        config,
        n_items=n_items,
        n_behaviors=n_behaviors,
        feature_values=feature_values,
        feature_width=feature_width,
    )
