"""What a model knows of items beyond their ids: categorical features and text vectors.

`ItemContent.of(dataset, config, data, windows)` reads both from a prepared dataset for
training; `sizes` are `build_model`'s keywords (also recorded in run.json) and `apply(model)`
copies the content into a freshly built model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from influrec.config import ModelConfig
from influrec.data.dataset import EventDataset
from influrec.data.item_features import ItemFeatures
from influrec.data.item_text import ItemText
from influrec.data.sequences import SequenceData
from influrec.errors import InputError
from influrec.models.protocol import SequenceModel


@dataclass(frozen=True)
class ItemContent:
    features: ItemFeatures | None
    text: ItemText | None
    cold: np.ndarray | None  # (n_items + 1,) bool: items embedded by content alone
    untrained: np.ndarray | None = None  # (n_items + 1,) bool: no event in any training window

    @classmethod
    def of(
        cls,
        dataset: EventDataset,
        config: ModelConfig,
        data: SequenceData,
        windows: tuple[np.ndarray, np.ndarray],
    ) -> ItemContent:
        names = config.categorical_features
        features = ItemFeatures.from_items(dataset.items, names, data.n_items) if names else None
        if not config.uses_text:
            return cls(features, None, None)
        if dataset.item_text is None:
            raise InputError(
                "model.item_features names text, but the dataset has no item text vectors: "
                "compute them first with `influrec data embed-text` (or embed_item_text)",
                setting="model.item_features",
            )
        untrained = ~trained_items(data, windows)
        cold = untrained if config.id_embeddings else np.ones(data.n_items + 1, bool)
        return cls(features, dataset.item_text, cold, untrained)

    def unavailable(self) -> torch.Tensor | None:
        """(C,) item indices left out of the training softmax: with item text, the items no
        training window touches. Training treats them as not in the catalogue yet (as a new
        item is not), rather than as negatives of every step pushed below everything."""
        if self.untrained is None:
            return None
        return torch.from_numpy(np.flatnonzero(self.untrained[1:]) + 1)

    @property
    def sizes(self) -> dict[str, int]:
        """`build_model`'s content keywords."""
        return {
            "feature_values": len(self.features.values) if self.features else 0,
            "feature_width": self.features.width if self.features else 1,
            "text_dim": self.text.dim if self.text else 0,
        }

    def apply(self, model: SequenceModel) -> None:
        if self.features is not None:
            model.set_item_features(torch.from_numpy(self.features.table))
        if self.text is not None and self.cold is not None:
            model.set_item_text(torch.from_numpy(self.text.vectors), torch.from_numpy(self.cold))


def trained_items(data: SequenceData, windows: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(n_items + 1,) bool: items of some event that training reads (window inputs and
    targets, events start..end of each window); False for padding."""
    starts, ends = windows
    depth = np.zeros(len(data.item) + 1, np.int64)
    np.add.at(depth, starts, 1)
    np.add.at(depth, ends + 1, -1)
    covered = np.cumsum(depth)[:-1] > 0
    trained = np.zeros(data.n_items + 1, bool)
    trained[data.item[covered]] = True
    trained[0] = False
    return trained
