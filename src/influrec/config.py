"""Experiment configuration: one frozen dataclass per component, loaded from TOML plus overrides.

``load_config(path, ["model.layers=4", "train.lr=3e-4"])`` reads the file's optional ``[model]``,
``[train]``, ``[data]`` and ``[eval]`` tables, applies the overrides (later ones win over earlier
ones and over the file) and returns a validated :class:`ExperimentConfig`. A misspelled section or
key, a value of the wrong type or an out-of-range value raises :class:`ConfigError`, which names the
key, what was expected, the value given and where it came from (the file or the override).
"""

from __future__ import annotations

import difflib
import itertools
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeGuard

from influrec.errors import InputError

LOSSES = ("ce", "sampled", "bce")
SAMPLERS = ("popularity", "uniform")
NEGATIVES_PER = ("batch", "sequence")
VALUE_HEADS = ("none", "mse", "huber")
POSITIONS = ("end", "start")
SPLITS = ("leave_one_out", "temporal")
DEVICES = ("auto", "cpu", "cuda")
OVERRIDE_FORM = "SECTION.KEY=VALUE, e.g. model.layers=4, train.lr=3e-4 or eval.ks=[1,10,50]"


class ConfigError(InputError):
    """An invalid configuration. ``key`` is the offending ``section.key`` when there is one."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "transformer"  # registry name of the model
    max_len: int = 50  # events of history the model sees
    d_model: int = 64
    layers: int = 2
    heads: int = 2
    ff_mult: int = 4  # feed-forward width = ff_mult * d_model
    dropout: float = 0.2  # embedding / residual dropout
    attn_dropout: float = 0.2
    time_buckets: int = 0  # 0 = no time-gap embedding; else number of log-scale gap buckets
    use_value: bool = False  # add a value embedding (rating/price) to each token
    behavior_head: bool = True  # predict the next behaviour type
    value_head: str = "none"  # none | mse | huber
    positions: str = "end"  # end: the latest event at max_len - 1 | start: the oldest one at 0
    score_temperature: float = 0.0  # 0: scores are dot products with the item embeddings;
    # > 0: cosine similarity divided by this temperature
    item_features: tuple[str, ...] = ()  # item metadata columns ("|"-separated values, e.g.
    # genres or attributes) whose learned embeddings, averaged, are added to each item's own
    # embedding, for inputs and scores alike

    def __post_init__(self) -> None:
        _coerce_fields(self, "model")
        _require(bool(self.kind), "model.kind", "must be a non-empty model name", self.kind)
        _require_positive(self, "model", ("max_len", "d_model", "layers", "heads", "ff_mult"))
        _require(
            self.d_model % self.heads == 0,
            "model.heads",
            f"must divide model.d_model={self.d_model}",
            self.heads,
        )
        for name in ("dropout", "attn_dropout"):
            value = getattr(self, name)
            _require(0 <= value < 1, f"model.{name}", "must be in [0, 1)", value)
        _require(
            self.score_temperature >= 0,
            "model.score_temperature",
            "must be >= 0",
            self.score_temperature,
        )
        _require(self.time_buckets >= 0, "model.time_buckets", "must be >= 0", self.time_buckets)
        _require_choice(self.value_head, "model.value_head", VALUE_HEADS)
        _require_choice(self.positions, "model.positions", POSITIONS)
        names = self.item_features
        _require(
            all(names) and len(set(names)) == len(names),
            "model.item_features",
            "must list distinct, non-empty column names",
            list(names),
        )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # 0 = off
    loss: str = "ce"  # ce (full softmax) | sampled (sampled softmax + logQ) | bce
    negatives: int = 256  # for sampled / bce
    sampler: str = "popularity"  # sampled softmax negatives: popularity (+ logQ) | uniform
    negatives_per: str = "batch"  # sampled softmax: one draw shared by the batch | per sequence
    label_smoothing: float = 0.0  # full softmax: share of the target spread over all items
    behavior_weight: float = 0.1
    value_weight: float = 0.0
    patience: int = 10  # early stopping, in evaluations without improvement of the monitor
    monitor: str = "NDCG@10"  # METRIC@K with K in eval.ks
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0 = torch's default
    device: str = "auto"  # auto | cpu | cuda
    bf16: bool = True  # bf16 autocast on CUDA
    max_minutes: float = 0.0  # stop training after this wall time; 0 = no limit
    keep_checkpoints: int = 3  # per-epoch checkpoints kept (the best is always kept)
    keep_every: int = 0  # also keep every Nth epoch's checkpoint (TracIn reads them); 0 = off
    average_best: int = 0  # at the end, average the weights of the N best epochs; kept only
    # when that beats the best single epoch on validation (0 = off)
    mask_seen: bool = False  # full softmax: items seen earlier in the window are left out of
    # each target's softmax (consistent with evaluating with seen items masked)

    def __post_init__(self) -> None:
        _coerce_fields(self, "train")
        _require_positive(self, "train", ("epochs", "batch_size", "lr", "negatives", "patience"))
        nonnegative = (
            *("weight_decay", "warmup_steps", "grad_clip", "behavior_weight", "value_weight"),
            *("seed", "threads", "max_minutes", "keep_checkpoints", "keep_every", "average_best"),
        )
        for name in nonnegative:
            value = getattr(self, name)
            _require(value >= 0, f"train.{name}", "must be >= 0", value)
        smoothing = self.label_smoothing
        _require(0 <= smoothing < 1, "train.label_smoothing", "must be in [0, 1)", smoothing)
        ratio = self.min_lr_ratio
        _require(0 <= ratio <= 1, "train.min_lr_ratio", "must be in [0, 1]", ratio)
        _require_choice(self.loss, "train.loss", LOSSES)
        _require_choice(self.sampler, "train.sampler", SAMPLERS)
        _require_choice(self.negatives_per, "train.negatives_per", NEGATIVES_PER)
        _require_choice(self.device, "train.device", DEVICES)


@dataclass(frozen=True)
class DataConfig:
    split: str = "leave_one_out"  # leave_one_out | temporal
    valid_fraction: float = 0.1  # temporal split: fraction of events after the validation cut
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        _coerce_fields(self, "data")
        _require_choice(self.split, "data.split", SPLITS)
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0 < value < 1, f"data.{name}", "must be in (0, 1)", value)
        total = self.valid_fraction + self.test_fraction
        rule = f"plus data.test_fraction={self.test_fraction} must be < 1 (sum {total:g})"
        _require(total < 1, "data.valid_fraction", rule, self.valid_fraction)


@dataclass(frozen=True)
class EvalConfig:
    ks: tuple[int, ...] = (1, 5, 10, 20, 50)
    batch_size: int = 512
    mask_seen: bool = False  # masking for early stopping / headline numbers (both are reported)

    def __post_init__(self) -> None:
        _coerce_fields(self, "eval")
        ks = self.ks
        _require(len(ks) > 0, "eval.ks", "must list at least one cutoff", list(ks))
        _require(all(k > 0 for k in ks), "eval.ks", "must be positive", list(ks))
        increasing = all(a < b for a, b in itertools.pairwise(ks))
        _require(increasing, "eval.ks", "must be sorted and without repeats", list(ks))
        _require_positive(self, "eval", ("batch_size",))


@dataclass(frozen=True)
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        for name, section_type in _section_types().items():
            value = getattr(self, name)
            if not isinstance(value, section_type):
                expected = section_type.__name__
                raise ConfigError(f"{name}: expected {expected}, got {value!r}", key=name)
        metric, at, k = self.train.monitor.partition("@")
        known_k = k.isascii() and k.isdigit() and int(k) in self.eval.ks
        rule = f"must be METRIC@K with K in eval.ks={list(self.eval.ks)}"
        _require(bool(metric and at and known_k), "train.monitor", rule, self.train.monitor)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable ``{section: {key: value}}`` dict (tuples become lists)."""
        return {
            section.name: {
                key.name: _plain(getattr(getattr(self, section.name), key.name))
                for key in fields(getattr(self, section.name))
            }
            for section in fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Build from ``{section: {key: value}}``; missing sections and keys keep their defaults.

        Raises :class:`ConfigError` for an unknown section or key, a wrong type or a bad value.
        """
        sections: dict[str, Any] = {}
        for name, table in data.items():
            section_type = _section_type(name)
            if not isinstance(table, Mapping):
                raise ConfigError(
                    f"[{name}] must be a table of key = value pairs, got {table!r}", key=name
                )
            for key in table:
                _field_type(name, key)
            sections[name] = section_type(**table)
        return cls(**sections)


def load_config(path: Path | None = None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read the TOML file at ``path`` (if any), apply ``overrides`` in order, validate.

    Each override is ``SECTION.KEY=VALUE``; VALUE is read as a TOML value (``4``, ``3e-4``,
    ``false``, ``[1,10]``, ``"x"``), and a bare word is taken as text for text keys
    (``model.value_head=huber``). Errors name the file or the override the bad value came from.
    """
    tables: dict[str, dict[str, object]] = {}
    origins: dict[str, str] = {}
    if path is not None:
        for section, table in _read_toml(path).items():
            tables[section] = dict(table)
            origins.update({f"{section}.{key}": str(path) for key in table})
    for text in overrides:
        section, key, value = _parse_override(text)
        tables.setdefault(section, {})[key] = value
        origins[f"{section}.{key}"] = f"override {text!r}"
    try:
        return ExperimentConfig.from_dict(tables)
    except ConfigError as exc:
        origin = origins.get(exc.key or "")
        if origin is None:
            raise
        raise ConfigError(f"{origin}: {exc}", key=exc.key) from None


def save_config(config: ExperimentConfig, path: Path) -> None:
    """Write ``config`` as TOML; ``load_config(path)`` gives back an equal config."""
    path.write_text(config_to_toml(config), encoding="utf-8")


def config_to_toml(config: ExperimentConfig) -> str:
    """The TOML text of ``config``: one table per section, every key written out."""
    blocks = []
    for section, table in config.to_dict().items():
        lines = [f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _read_toml(path: Path) -> dict[str, Mapping[str, object]]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    for name, table in data.items():
        try:
            _section_type(name)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}", key=name) from None
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: {name!r} must be a [{name}] table, got {name} = {table!r}", key=name
            )
    return data


def _parse_override(text: str) -> tuple[str, str, object]:
    """Split ``SECTION.KEY=VALUE`` and read VALUE against the key's type (not yet checked)."""
    target, equals, raw = text.partition("=")
    section, dot, key = target.strip().partition(".")
    if not (equals and dot and section and key):
        raise ConfigError(f"malformed override {text!r}: expected {OVERRIDE_FORM}")
    try:
        expected = _field_type(section, key)
    except ConfigError as exc:
        raise ConfigError(f"override {text!r}: {exc}", key=exc.key) from None
    raw = raw.strip()
    value = _toml_scalar(raw)
    if expected is str and not isinstance(value, str):
        return section, key, raw  # a bare word for a text key: model.value_head=huber
    if value is None:
        raise ConfigError(
            f"override {text!r}: {raw!r} is not a TOML value; "
            f"{section}.{key} expects {_type_name(expected)}",
            key=f"{section}.{key}",
        )
    return section, key, value


def _toml_scalar(raw: str) -> object:
    """``raw`` read as one TOML value, or None when it is not one (TOML has no null)."""
    try:
        parsed = tomllib.loads(f"value = {raw}")
    except tomllib.TOMLDecodeError:
        return None
    return parsed["value"] if list(parsed) == ["value"] else None


def _section_types() -> dict[str, type[Any]]:
    return typing.get_type_hints(ExperimentConfig)


def _section_type(name: str) -> type[Any]:
    types = _section_types()
    if name not in types:
        close = difflib.get_close_matches(name, list(types), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        valid = ", ".join(types)
        raise ConfigError(f"unknown section {name!r}{hint}; valid sections: {valid}", key=name)
    return types[name]


def _field_type(section: str, key: str) -> Any:
    """The annotated type of ``section.key``; ConfigError for an unknown section or key."""
    hints = typing.get_type_hints(_section_type(section))
    if key not in hints:
        close = difflib.get_close_matches(key, list(hints), n=1)
        hint = f" (did you mean '{section}.{close[0]}'?)" if close else ""
        valid = ", ".join(hints)
        raise ConfigError(
            f"unknown key '{section}.{key}'{hint}; valid keys in [{section}]: {valid}",
            key=f"{section}.{key}",
        )
    return hints[key]


def _coerce_fields(config: Any, section: str) -> None:
    """Check each field of a frozen section against its annotation, converting in place."""
    hints = typing.get_type_hints(type(config))
    for item in fields(config):
        value = _coerce(getattr(config, item.name), hints[item.name], f"{section}.{item.name}")
        object.__setattr__(config, item.name, value)


def _coerce(value: object, expected: Any, key: str) -> object:
    """``value`` as ``expected`` (int, float, bool, str, tuple[int, ...] or tuple[str, ...]),
    else ConfigError.

    int takes an int but not a bool, float takes an int or a float, a tuple takes a list of its
    item type.
    """
    if expected is bool or expected is str:
        if isinstance(value, expected):
            return value
    elif expected is int:
        if _is_int(value):
            return value
    elif expected is float:
        if isinstance(value, float) or _is_int(value):
            return float(value)
    elif typing.get_origin(expected) is tuple:
        of_str = typing.get_args(expected)[0] is str
        if isinstance(value, list | tuple) and all(
            isinstance(item, str) if of_str else _is_int(item) for item in value
        ):
            return tuple(value)
    else:
        raise TypeError(f"{key}: no conversion for annotation {expected!r}")
    raise ConfigError(
        f"{key}: expected {_type_name(expected)}, got {value!r} ({type(value).__name__})",
        key=key,
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(expected: Any) -> str:
    if typing.get_origin(expected) is tuple:
        return f"list of {typing.get_args(expected)[0].__name__}"
    names = {int: "int", float: "float (or int)", bool: "bool (true or false)", str: "str"}
    return names.get(expected, repr(expected))


def _require(ok: bool, key: str, rule: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"{key} {rule}, got {value!r}", key=key)


def _require_positive(config: Any, section: str, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(config, name)
        _require(value > 0, f"{section}.{name}", "must be positive", value)


def _require_choice(value: str, key: str, choices: Sequence[str]) -> None:
    _require(value in choices, key, f"must be one of {', '.join(choices)}", value)


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # Python's float repr (1e-05, inf, nan) is valid TOML
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters as \\uXXXX."""
    escapes = {code: f"\\u{code:04x}" for code in (*range(0x20), 0x7F)}
    escapes |= {ord('"'): '\\"', ord("\\"): "\\\\"}
    return '"' + text.translate(escapes) + '"'
