"""What every sequence model implements, and the one way from a batch to scores.

A model family is a ``torch.nn.Module`` class that implements :class:`SequenceModel` and has
one entry in :data:`influrec.models.registry.MODELS`. Training, evaluation, influence and
serving use a model only through this interface:

* ``encode`` turns left-padded (B, T) inputs (item id 0 pads, the most recent event in the last
  column) into hidden states (B, T, D), or (B, 1, D) for the last position only;
* ``item_scores`` and ``behavior_logits`` read predictions off hidden states;
* ``embed`` / ``position_ids`` / ``encode_embeddings`` split ``encode`` at the token
  embeddings, for gradient-based influence methods.

Optional abilities are declared in :attr:`SequenceModel.capabilities`, never guessed from the
class: a caller checks the flag and falls back to the generic path (or raises a clear error)
when it is off.

:func:`last_hidden` and :func:`score_last` are the single path from a left-padded batch to the
last hidden state and to item scores; every scorer in the package calls them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeGuard

import torch
from torch import nn

from influrec.config import ModelConfig

if TYPE_CHECKING:
    from typing import Self


@dataclass(frozen=True)
class Capabilities:
    """Optional abilities of a model class, each False unless the class declares it.

    ``prefix_reuse``: the keys and values of a sequence's first events can be encoded once and
    reused by every sequence that starts with them (:mod:`influrec.influence.prefix_cache`).
    ``shared_first_layer_deletions``: every leave-one-out deletion of one history can share the
    first layer's attention (:mod:`influrec.influence.deletions`). Both kernels read the layers
    of :class:`~influrec.models.transformer.BehaviorTransformer`: a class declaring them must be
    one (or a subclass); the engine checks, and a class that is not gets a TypeError.
    ``attention_weights``: ``attention_weights(items, behaviors, gaps, values)`` returns the
    attention probabilities (B, H, T, T) of every layer (attention rollout).
    """

    prefix_reuse: bool = False
    shared_first_layer_deletions: bool = False
    attention_weights: bool = False


class SequenceModel(Protocol):
    """A next-event model over left-padded behaviour sequences (a ``torch.nn.Module``).

    Shapes: B sequences, T events, D hidden features, I = ``n_items`` items (index 0 pads),
    C = ``n_behaviors`` behaviour types (index 0 pads).
    """

    capabilities: ClassVar[Capabilities]

    @property
    def config(self) -> ModelConfig: ...

    @property
    def n_items(self) -> int: ...

    @property
    def n_behaviors(self) -> int: ...

    @property
    def behavior_head(self) -> nn.Module | None:
        """The next-behaviour head, None when the model predicts items only."""

    @property
    def ln_final(self) -> nn.LayerNorm:
        """The LayerNorm every hidden state ends with (last-layer training-data influence
        factors its gradients through its gain and bias)."""

    def embed(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        *,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings (B, T, D) of (B, T) inputs; ``positions`` (T,) or (B, T) overrides
        the position ids (default :meth:`position_ids`)."""

    def position_ids(self, items: torch.Tensor) -> torch.Tensor:
        """Position ids (1 or B, T) of left-padded items (B, T)."""

    def encode_embeddings(
        self, x: torch.Tensor, items: torch.Tensor, *, last_only: bool = False
    ) -> torch.Tensor:
        """Hidden states (B, T, D), or (B, 1, D) with ``last_only``, of token embeddings x
        (B, T, D); ``items`` (B, T) marks the padding."""

    def encode(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        *,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Hidden states (B, T, D) of left-padded (B, T) inputs, or (B, 1, D) with
        ``last_only``; position t summarises events 0..t."""

    def item_table(self) -> torch.Tensor:
        """Every item's embedding (I + 1, D), row 0 for padding."""

    def scoring_space(
        self, hidden: torch.Tensor, table: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(queries (..., D), items (I + 1, D)) whose dot products are the item scores."""

    def item_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores (..., I + 1) of every item after hidden states (..., D); index 0 is -inf."""

    def behavior_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits (..., C + 1) of the next behaviour type; index 0 is -inf. ValueError
        without a behaviour head."""

    def set_item_features(self, table: torch.Tensor) -> None:
        """Value ids (I + 1, width) of each item's features (models built with features)."""

    def set_item_text(self, vectors: torch.Tensor, cold: torch.Tensor) -> None:
        """Text vectors (I + 1, text_dim) and cold items (I + 1,) bool (models built with
        item text)."""

    def num_parameters(self) -> int: ...

    # what the package uses of torch.nn.Module
    training: bool

    def eval(self) -> Self: ...

    def train(self, mode: bool = True) -> Self: ...

    def to(self, *args: Any, **kwargs: Any) -> Self: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any: ...


class AttentionModel(SequenceModel, Protocol):
    """A sequence model that declares ``capabilities.attention_weights``."""

    def attention_weights(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Per layer, the attention probabilities (B, H, T, T) of the forward pass."""


def has_attention(model: SequenceModel) -> TypeGuard[AttentionModel]:
    """Whether ``model`` declares attention weights (TypeError when it declares them without
    an ``attention_weights`` method: a bug of its class)."""
    if not model.capabilities.attention_weights:
        return False
    if not callable(getattr(model, "attention_weights", None)):
        raise TypeError(f"{type(model).__name__} declares attention weights without the method")
    return True


def last_hidden(
    model: SequenceModel,
    items: torch.Tensor,
    behaviors: torch.Tensor,
    gaps: torch.Tensor | None = None,
    values: torch.Tensor | None = None,
) -> torch.Tensor:
    """Last hidden state (B, D) after each of B left-padded (B, T) sequences: what the model
    predicts the next event from. The last layer computes the last position only."""
    return model.encode(items, behaviors, gaps, values, last_only=True)[:, -1]


def score_last(
    model: SequenceModel,
    items: torch.Tensor,
    behaviors: torch.Tensor,
    gaps: torch.Tensor | None = None,
    values: torch.Tensor | None = None,
) -> torch.Tensor:
    """Next-item scores (B, I + 1) after each of B left-padded (B, T) sequences; index 0 is
    -inf (see :func:`last_hidden`)."""
    return model.item_scores(last_hidden(model, items, behaviors, gaps, values))
