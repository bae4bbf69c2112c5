"""Model registry: ``model.architecture`` -> the class that builds it, and :func:`build_model`."""

from __future__ import annotations

from typing import Protocol

from influrec.config import ConfigError, ModelConfig
from influrec.models.cnn import BehaviorCNN
from influrec.models.gru import BehaviorGRU
from influrec.models.mlp import BehaviorMLP
from influrec.models.protocol import SequenceModel
from influrec.models.transformer import BehaviorTransformer


class ModelClass(Protocol):
    """What a registered model class is called with: its config and the data's sizes."""

    def __call__(
        self,
        config: ModelConfig,
        *,
        n_items: int,
        n_behaviors: int,
        feature_values: int = 0,
        feature_width: int = 1,
        text_dim: int = 0,
    ) -> SequenceModel: ...


MODELS: dict[str, ModelClass] = {
    "transformer": BehaviorTransformer,
    "gru": BehaviorGRU,
    "cnn": BehaviorCNN,
    "mlp": BehaviorMLP,
}
"""``model.architecture`` -> model class implementing
:class:`~influrec.models.protocol.SequenceModel` (a new family is one class and one entry here)."""


def build_model(
    config: ModelConfig,
    *,
    n_items: int,
    n_behaviors: int,
    feature_values: int = 0,
    feature_width: int = 1,
    text_dim: int = 0,
) -> SequenceModel:
    """A model of ``config.architecture``; ``feature_values`` and ``feature_width`` size the item
    features (:class:`~influrec.data.item_features.ItemFeatures`) when ``config.item_features``
    names any, ``text_dim`` the item text vectors when it names ``"text"``. An unknown
    architecture is a :class:`~influrec.config.ConfigError` of ``model.architecture`` (a user's
    value: the config is checked against the registry only here)."""
    if config.architecture not in MODELS:
        raise ConfigError(
            f"model.architecture must name a registered model ({', '.join(MODELS)}), "
            f"got {config.architecture!r}",
            key="model.architecture",
        )
    return MODELS[config.architecture](
        config,
        n_items=n_items,
        n_behaviors=n_behaviors,
        feature_values=feature_values,
        feature_width=feature_width,
        text_dim=text_dim,
    )
