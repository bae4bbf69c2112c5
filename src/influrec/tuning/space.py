"""A search space: which config keys a tuner varies, over which values.

A space file is TOML with one ``[space]`` table whose keys are config keys::

    [space]
    model.d_model = [32, 64, 128]                      # a list: one of these values
    model.architecture = ["transformer", "gru"]
    train.lr = { low = 1e-4, high = 1e-2, log = true }  # a range (log: sampled on a log scale)
    model.layers = { low = 1, high = 4 }                # an int key: whole numbers only

A range of an ``int`` key draws whole numbers, of a ``float`` key real ones; every value a
space can give is checked against the base config before any trial runs, so an impossible
value (``model.heads = [3]`` with ``d_model = 64``) fails at once, naming the file and key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from influrec.config import ConfigError, ExperimentConfig
from influrec.config.errors import type_name
from influrec.config.sections import field_info
from influrec.errors import InputError

RANGE_KEYS = {"low", "high", "log"}
SPACE_FORM = (
    "a list of values (model.d_model = [32, 64]) or a range "
    "({ low = 1e-4, high = 1e-2, log = true })"
)


@dataclass(frozen=True)
class Dimension:
    """One config key of a space: its choices, or its range ``[low, high]``."""

    key: str  # section.key
    choices: tuple[Any, ...] = ()  # non-empty for a choice
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False  # a range of whole numbers (an int key)

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)

    def describe(self) -> str:
        if self.is_choice:
            return f"one of {list(self.choices)}"
        scale = ", log scale" if self.log else ""
        kind = "whole numbers" if self.integer else "numbers"
        return f"{kind} in [{self.low:g}, {self.high:g}]{scale}"


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions of a space file, in the file's order."""

    path: Path
    dimensions: tuple[Dimension, ...]

    @classmethod
    def load(cls, path: Path, base: ExperimentConfig) -> SearchSpace:
        """Read and check ``path`` against ``base``; InputError naming the file and key."""
        data = _read(path)
        space = data.get("space")
        if not isinstance(space, dict) or set(data) != {"space"}:
            raise InputError(
                f"{path}: a space file holds one [space] table of config keys, e.g. "
                f"[space] then model.d_model = [32, 64]; found {sorted(data) or 'nothing'}"
            )
        dimensions: list[Dimension] = []
        for section, table in space.items():
            if not isinstance(table, dict):
                raise InputError(
                    f"{path}: [space] {section} = {table!r}: keys are SECTION.KEY, "
                    "e.g. model.d_model"
                )
            dimensions.extend(_dimension(path, section, key, spec) for key, spec in table.items())
        if not dimensions:
            raise InputError(f"{path}: [space] is empty; give at least one key to search")
        for dimension in dimensions:
            _check_values(path, dimension, base)
        return cls(Path(path), tuple(dimensions))


def _read(path: Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"space file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read space file {path}: {exc}") from None


def _dimension(path: Path, section: str, key: str, spec: object) -> Dimension:
    name = f"{section}.{key}"
    try:
        annotation = field_info(section, key).annotation
    except ConfigError as exc:
        raise InputError(f"{path}: [space] {exc}", setting=exc.key) from None
    where = f"{path}: [space] {name}"
    if isinstance(spec, list):
        if not spec or any(isinstance(v, list | dict) for v in spec):
            raise InputError(f"{where}: choices must be a non-empty list of single values")
        return Dimension(name, choices=tuple(spec))
    if not isinstance(spec, dict) or "low" not in spec or "high" not in spec:
        raise InputError(f"{where}: expected {SPACE_FORM}, got {spec!r}")
    if set(spec) - RANGE_KEYS:
        raise InputError(f"{where}: unknown range field(s) {sorted(set(spec) - RANGE_KEYS)}")
    kind = "int" if annotation is int else "float" if annotation is float else type_name(annotation)
    if kind not in ("int", "float"):
        raise InputError(f"{where}: {name} is a {kind} key; give its choices as a list")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers or (kind == "int" and not all(isinstance(v, int) for v in (low, high))):
        wanted = "whole numbers" if kind == "int" else "numbers"
        raise InputError(f"{where}: low and high must be {wanted}, got {low!r} and {high!r}")
    if not low < high:
        raise InputError(f"{where}: low must be below high, got low={low} and high={high}")
    if not isinstance(log, bool) or (log and low <= 0):
        raise InputError(f"{where}: log = true needs low > 0, got log={log!r} and low={low}")
    return Dimension(name, low=low, high=high, log=log, integer=kind == "int")


def _check_values(path: Path, dimension: Dimension, base: ExperimentConfig) -> None:
    """Each choice and both ends of a range must give a valid config with ``base``."""
    values = dimension.choices or (dimension.low, dimension.high)
    for value in values:
        try:
            with_values(base, {dimension.key: value})
        except ConfigError as exc:
            raise InputError(
                f"{path}: [space] {dimension.key} = {value!r} is not a valid setting here: {exc}",
                setting=dimension.key,
            ) from None


def with_values(base: ExperimentConfig, values: Mapping[str, Any]) -> ExperimentConfig:
    """``base`` with ``{section.key: value}`` applied, validated (ConfigError when invalid)."""
    tables = base.to_dict()
    for name, value in values.items():
        section, _, key = name.partition(".")
        tables[section][key] = value
    return ExperimentConfig.from_dict(tables)
