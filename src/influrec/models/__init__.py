"""Sequence models: the :class:`SequenceModel` protocol every family implements, the one path
from a batch to scores (:func:`score_last`), and the registry (:func:`build_model`)."""

from influrec.models.protocol import Capabilities, SequenceModel, last_hidden, score_last
from influrec.models.registry import MODELS, build_model

__all__ = ["MODELS", "Capabilities", "SequenceModel", "build_model", "last_hidden", "score_last"]
