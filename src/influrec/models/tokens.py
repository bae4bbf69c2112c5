"""What every model family shares: the event tokens going in and the two heads coming out.

:class:`EventModel` is the base of each family (``transformer``, ``gru``, ``cnn``, ``mlp``).
It builds, in this order, the token embeddings (item, with optional item features; behaviour type;
learned position; optional time-gap bucket; optional value), then the family's layers
(:meth:`EventModel.build_layers`), then the final LayerNorm and the behaviour head
(:meth:`EventModel.finish`). A family implements only ``build_layers`` and
:meth:`EventModel.encode_embeddings`: (B, T, D) token embeddings -> (B, T, D)
hidden states, position t summarising events 0..t of left-padded sequences.

Items are scored by a dot product with the (tied) item table, a second head predicts the next
behaviour type. Attribute names are those of the original Transformer, so its checkpoints load.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from influrec.config import ConfigError, ModelConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
"""``model.activation`` -> the module class of an element-wise activation. ``"swiglu"`` is not
one: it is a gated feed-forward layer (:class:`SwiGLU`), for families with a feed-forward part."""


def activation(config: ModelConfig) -> nn.Module:
    """A new element-wise activation module of ``config.activation``; a ConfigError of
    ``model.activation`` for ``"swiglu"``, which only a feed-forward part can use."""
    if config.activation not in ACTIVATIONS:
        raise ConfigError(
            f"model.activation {config.activation!r} is a gated feed-forward layer and the "
            f"{config.architecture} family has no feed-forward part; choose one of "
            f"{', '.join(ACTIVATIONS)}",
            key="model.activation",
        )
    return ACTIVATIONS[config.activation]()


def swiglu_width(d_model: int, ff_mult: int) -> int:
    """Hidden width H of a SwiGLU feed-forward: the one whose parameters (three D x H matrices
    and their biases, 3DH + 2H + D) come nearest to the plain feed-forward's (two matrices of
    D x ff_mult * D and biases, 2 ff_mult D² + ff_mult D + D):
    ``round(ff_mult * D * (2D + 1) / (3D + 2))``, about 2/3 of ``ff_mult * D``.

    So switching ``model.activation`` to ``"swiglu"`` keeps the parameter count: at D 64 and
    ff_mult 4, width 170 and 33,044 parameters per feed-forward against 33,088."""
    d = d_model
    return max(1, round(ff_mult * d * (2 * d + 1) / (3 * d + 2)))


class SwiGLU(nn.Module):
    """Gated feed-forward: ``down(up(x) * silu(gate(x)))``, (..., D) -> (..., D), with hidden
    width :func:`swiglu_width` (Shazeer, "GLU Variants Improve Transformer", 2020)."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.up = nn.Linear(d, hidden)
        self.gate = nn.Linear(d, hidden)
        self.down = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.up(x) * F.silu(self.gate(x)))  # (..., H) gated, then (..., D)


def feed_forward(config: ModelConfig) -> nn.Sequential:
    """The position-wise feed-forward part of a block, dropout after: D -> ff_mult * D -> D
    with ``config.activation`` between, or for ``"swiglu"`` a :class:`SwiGLU` of comparable
    size."""
    d = config.d_model
    if config.activation == "swiglu":
        hidden = swiglu_width(d, config.ff_mult)
        return nn.Sequential(SwiGLU(d, hidden), nn.Dropout(config.dropout))
    return nn.Sequential(
        nn.Linear(d, config.ff_mult * d),
        activation(config),
        nn.Linear(config.ff_mult * d, d),
        nn.Dropout(config.dropout),
    )


class EventModel(nn.Module):
    """Token embeddings, tied item scores and the behaviour head of a sequence model."""

    item_features: torch.Tensor  # (n_items + 1, width) value ids, with model.item_features
    item_text: torch.Tensor  # (n_items + 1, text_dim) frozen text vectors, with "text"
    cold_items: torch.Tensor  # (n_items + 1,) bool: no training event (content alone)
    ln_final: nn.LayerNorm  # built by finish()
    behavior_head: nn.Linear | None

    def __init__(
        self,
        config: ModelConfig,
        *,
        n_items: int,
        n_behaviors: int,
        feature_values: int = 0,
        feature_width: int = 1,
        text_dim: int = 0,
    ) -> None:
        """The embeddings, the family's layers (:meth:`build_layers`), then :meth:`finish`.

        ``text_dim`` > 0 adds each item's text vector (:meth:`set_item_text`) through a learned
        projection, and lets items without training events be embedded by content alone."""
        super().__init__()
        self.config, self.n_items, self.n_behaviors = config, n_items, n_behaviors
        d = config.d_model
        self.item_embedding = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.feature_embedding: nn.Embedding | None = None
        self._table_cache: tuple[tuple[tuple[int, int], ...], torch.Tensor] | None = None
        self._id_drop: tuple[int, torch.Tensor] | None = None  # (weights' version, mask)
        if config.categorical_features:  # value ids per item: set_item_features, or loaded weights
            self.feature_embedding = nn.Embedding(feature_values + 1, d, padding_idx=0)
            table = torch.zeros(n_items + 1, max(1, feature_width), dtype=torch.long)
            self.register_buffer("item_features", table)
        self.text_projection: nn.Linear | None = None
        if config.uses_text:
            if text_dim <= 0:
                raise ValueError("model.item_features names text: give the vectors' text_dim")
            self.text_projection = nn.Linear(text_dim, d, bias=False)
            self.register_buffer("item_text", torch.zeros(n_items + 1, text_dim))
            self.register_buffer("cold_items", torch.zeros(n_items + 1, dtype=torch.bool))
        self.behavior_embedding = nn.Embedding(n_behaviors + 1, d, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.gap_embedding = (
            nn.Embedding(config.time_buckets, d, padding_idx=0) if config.time_buckets else None
        )
        self.value_embedding = nn.Linear(1, d) if config.use_value else None
        self.dropout = nn.Dropout(config.dropout)
        self.build_layers(config)
        self.finish()

    def build_layers(self, config: ModelConfig) -> None:
        """Build the family's layers (each family overrides this; called between the
        embeddings and :meth:`finish`, so every family draws its initial weights in the same
        order)."""
        raise NotImplementedError(f"{type(self).__name__} does not build its layers")

    def finish(self) -> None:
        """Build the final LayerNorm and the behaviour head, then initialise every weight
        (normal, std 0.02; zero biases and padding rows)."""
        d = self.config.d_model
        self.ln_final = nn.LayerNorm(d)
        self.behavior_head = (
            nn.Linear(d, self.n_behaviors + 1) if self.config.behavior_head else None
        )
        self.apply(init_weights)

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

    def _without_own_vector(self) -> torch.Tensor:
        """(n_items + 1,) bool: items embedded by content alone. The cold items; in training
        also a random share ``model.id_dropout`` of the others, drawn once per optimiser step
        (while the weights' version stays the same), so that inputs and scores of one step
        agree and the content pathway learns to stand alone, as it must for new items."""
        rate = self.config.id_dropout
        if not (self.training and rate > 0):
            return self.cold_items
        version = self.item_embedding.weight._version
        if self._id_drop is None or self._id_drop[0] != version:
            drawn = torch.rand(self.cold_items.shape, device=self.cold_items.device) < rate
            self._id_drop = (version, self.cold_items | drawn)
        return self._id_drop[1]

    def set_item_text(self, vectors: torch.Tensor, cold: torch.Tensor) -> None:
        """Each item's text vector (n_items + 1, text_dim), zero without text, and which items
        have no training event (n_items + 1,) bool: those are embedded by content alone."""
        if self.text_projection is None:
            raise ValueError("this model was built without item text (model.item_features)")
        if vectors.shape != self.item_text.shape or cold.shape != self.cold_items.shape:
            raise ValueError(
                f"item text {tuple(vectors.shape)} / cold items {tuple(cold.shape)} != "
                f"{tuple(self.item_text.shape)} / {tuple(self.cold_items.shape)}"
            )
        self.item_text.copy_(vectors)
        self.cold_items.copy_(cold)

    def item_table(self) -> torch.Tensor:
        """Every item's embedding (n_items + 1, D): its own vector, plus the mean of its feature
        values' vectors when the model has item features, plus the projection of its text
        vector when it has item text (an item without training events then drops its own,
        untrained vector). Row 0 (padding) is zero.

        With content and without gradients the table is kept until a weight or the content
        changes (their version counters and storage say when): a recommendation would
        otherwise rebuild it twice, about 1.2 ms each on Beauty's 12k items."""
        own = self.item_embedding.weight
        if self.feature_embedding is None and self.text_projection is None:
            return own
        if torch.is_grad_enabled():
            return self._content_table()
        parts = [own]
        if self.feature_embedding is not None:
            parts += [self.feature_embedding.weight, self.item_features]
        if self.text_projection is not None:
            parts += [self.text_projection.weight, self.item_text, self.cold_items]
        key = tuple((t.data_ptr(), t._version) for t in parts)
        if self._table_cache is None or self._table_cache[0] != key:
            self._table_cache = (key, self._content_table())
        return self._table_cache[1]

    def _content_table(self) -> torch.Tensor:
        table = self.item_embedding.weight
        if self.text_projection is not None:
            table = table.masked_fill(self._without_own_vector()[:, None], 0.0)
        if self.feature_embedding is not None:
            ids = self.item_features
            count = (ids > 0).sum(dim=1, keepdim=True).clamp(min=1)
            table = table + self.feature_embedding(ids).sum(dim=1) / count
        if self.text_projection is not None:
            table = table + self.text_projection(self.item_text)
        return table

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
        """Token embeddings (B, T, D) before dropout and the family's layers.

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
        """Hidden states (B, T, D), or (B, 1, D) with ``last_only``, of token embeddings x
        (B, T, D); ``items`` (B, T) marks the padding. Each family implements it."""
        raise NotImplementedError

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

    def forward(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        *,
        last_only: bool = False,
    ) -> torch.Tensor:
        """:meth:`encode`."""
        return self.encode(items, behaviors, gaps, values, last_only=last_only)

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


def init_weights(module: nn.Module) -> None:
    """Normal (std 0.02) linear and embedding weights, zero biases and padding rows."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
