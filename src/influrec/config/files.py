"""Configuration files: TOML in (a file plus ``SECTION.KEY=VALUE`` overrides), TOML out."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from influrec.config.errors import ConfigError, type_name, unknown_section
from influrec.config.sections import REMOVED_KEYS, SECTIONS, ExperimentConfig, field_info

OVERRIDE_FORM = "SECTION.KEY=VALUE, e.g. model.layers=4, train.lr=3e-4 or eval.ks=[1,10,50]"


def load_config(path: Path | None = None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read the TOML file at ``path`` (if any), apply ``overrides`` in order, validate.

    Each override is ``SECTION.KEY=VALUE``; VALUE is read as a TOML value (``4``, ``3e-4``,
    ``false``, ``[1,10]``, ``"x"``), and a bare word is taken as text for text keys
    (``train.loss=sampled``). Errors name the file or the override the bad value came from.
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
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


# TAIL


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
        if name not in SECTIONS:
            raise ConfigError(f"{path}: {unknown_section(name, list(SECTIONS))}", key=name)
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
    if f"{section}.{key}" in REMOVED_KEYS:
        why = REMOVED_KEYS[f"{section}.{key}"][1]
        message = f"override {text!r}: {section}.{key}: {why}; leave the override out"
        raise ConfigError(message, key=f"{section}.{key}")
    try:
        annotation = field_info(section, key).annotation
    except ConfigError as exc:
        raise ConfigError(f"override {text!r}: {exc}", key=exc.key) from None
    raw = raw.strip()
    value = _toml_scalar(raw)
    if type_name(annotation) == "str" and not isinstance(value, str):
        return section, key, raw  # a bare word for a text key: train.loss=sampled
    if value is None:
        raise ConfigError(
            f"override {text!r}: {raw!r} is not a TOML value; "
            f"{section}.{key} expects {type_name(annotation)}",
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


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # Python's float repr (1e-05, inf, nan) is valid TOML
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters as \\uXXXX."""
    escapes = {code: f"\\u{code:04x}" for code in (*range(0x20), 0x7F)}
    escapes |= {ord('"'): '\\"', ord("\\"): "\\\\"}
    return '"' + text.translate(escapes) + '"'
