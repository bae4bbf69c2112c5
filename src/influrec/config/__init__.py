"""Experiment configuration: one frozen pydantic model per component, loaded from TOML + overrides.

``load_config(path, ["model.layers=4", "train.lr=3e-4"])`` reads the file's optional ``[model]``,
``[train]``, ``[data]`` and ``[eval]`` tables, applies the overrides (later ones win over earlier
ones and over the file) and returns a validated :class:`ExperimentConfig`. A misspelled section or
key, a value of the wrong type or an out-of-range value raises :class:`ConfigError`, which names the
key, what was expected, the value given and where it came from (the file or the override).

Every key with its type, default, range and meaning: ``docs/configuration.md``, generated from
the models by ``python -m influrec.config > docs/configuration.md``.
"""

from influrec.config.errors import ConfigError
from influrec.config.files import OVERRIDE_FORM, config_to_toml, load_config, save_config
from influrec.config.sections import (
    REMOVED_KEYS,
    SECTIONS,
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
)

__all__ = [
    "OVERRIDE_FORM",
    "REMOVED_KEYS",
    "SECTIONS",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "ModelConfig",
    "TrainConfig",
    "config_to_toml",
    "load_config",
    "save_config",
]
