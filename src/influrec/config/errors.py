"""Configuration errors a user can act on: which key, what was expected, what was given.

Pydantic's validation errors are translated here into :class:`ConfigError` messages in the
configuration's own terms (``model.heads must be positive, got 0``), with "did you mean"
suggestions for misspelled sections and keys.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from influrec.errors import InputError

_BOUNDS = ("gt", "ge", "lt", "le")


class ConfigError(InputError):
    """An invalid configuration. ``key`` is the offending ``section.key`` when there is one."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message, setting=key)
        self.key = key


def require(ok: bool, key: str, rule: str, value: object) -> None:
    """Raise ``ConfigError("{key} {rule}, got {value!r}")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} {rule}, got {value!r}", key=key)


def unknown_section(name: str, sections: Sequence[str]) -> ConfigError:
    """The error for an unknown section, suggesting the closest valid one."""
    close = difflib.get_close_matches(name, list(sections), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    valid = ", ".join(sections)
    return ConfigError(f"unknown section {name!r}{hint}; valid sections: {valid}", key=name)


def unknown_key(section: str, key: str, keys: Sequence[str]) -> ConfigError:
    """The error for an unknown key of ``section``, suggesting the closest valid one."""
    close = difflib.get_close_matches(key, list(keys), n=1)
    hint = f" (did you mean '{section}.{close[0]}'?)" if close else ""
    return ConfigError(
        f"unknown key '{section}.{key}'{hint}; valid keys in [{section}]: {', '.join(keys)}",
        key=f"{section}.{key}",
    )


def range_text(bounds: Mapping[str, float]) -> str | None:
    """``positive``, ``>= 0``, ``in [0, 1)``... for bounds named gt/ge/lt/le; None if none."""
    low = next(((name, bounds[name]) for name in ("ge", "gt") if name in bounds), None)
    high = next(((name, bounds[name]) for name in ("le", "lt") if name in bounds), None)
    if low and high:
        left, right = "[" if low[0] == "ge" else "(", "]" if high[0] == "le" else ")"
        return f"in {left}{low[1]:g}, {high[1]:g}{right}"
    if low:
        return "positive" if low == ("gt", 0) else f"{'>=' if low[0] == 'ge' else '>'} {low[1]:g}"
    if high:
        return f"{'<=' if high[0] == 'le' else '<'} {high[1]:g}"
    return None


def field_bounds(info: FieldInfo) -> dict[str, float]:
    """The numeric bounds (gt, ge, lt, le) declared on a field (not on its items)."""
    return {
        name: getattr(item, name)
        for item in info.metadata
        for name in _BOUNDS
        if hasattr(item, name)
    }


def item_bounds(annotation: Any) -> dict[str, float]:
    """The numeric bounds declared on the items of a ``tuple[Annotated[int, Field(...)], ...]``."""
    if typing.get_origin(annotation) is not tuple:
        return {}
    item = typing.get_args(annotation)[0]
    if typing.get_origin(item) is not Annotated:
        return {}
    infos = [info for info in typing.get_args(item)[1:] if isinstance(info, FieldInfo)]
    return {name: value for info in infos for name, value in field_bounds(info).items()}


def type_name(annotation: Any) -> str:
    """How an error or the reference names a field's type: ``int``, ``list of str``..."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is tuple:
        return f"list of {type_name(typing.get_args(annotation)[0])}"
    if typing.get_origin(annotation) is Literal:
        return "str"
    names = {int: "int", float: "float (or int)", bool: "bool (true or false)", str: "str"}
    return names.get(annotation, getattr(annotation, "__name__", repr(annotation)))


def from_validation_error(
    exc: ValidationError, owner: type[BaseModel], section: str, data: Mapping[str, Any]
) -> ConfigError:
    """The first error of validating ``data`` as ``owner`` (the experiment when ``section`` is
    "", else that section) as a ConfigError naming ``section.key`` and the value given."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    if not section:  # the experiment: loc starts with the section's name
        if error["type"] == "extra_forbidden" and len(loc) == 1:
            return unknown_section(loc[0], list(owner.model_fields))
        if len(loc) == 1:
            message = f"[{loc[0]}] must be a table of key = value pairs, got {error['input']!r}"
            return ConfigError(message, key=loc[0])
        section, loc = loc[0], loc[1:]
        owner = typing.cast(type[BaseModel], owner.model_fields[section].annotation)
        data = data.get(section, {})
    if error["type"] == "extra_forbidden":
        return unknown_key(section, loc[0], list(owner.model_fields))
    key, info = f"{section}.{loc[0]}", owner.model_fields[loc[0]]
    value = data.get(loc[0], error["input"]) if isinstance(data, Mapping) else error["input"]
    rule = _rule(error["type"], info, item=len(loc) > 1)
    if rule is None:
        expected = type_name(info.annotation)
        message = f"{key}: expected {expected}, got {value!r} ({type(value).__name__})"
        return ConfigError(message, key=key)
    return ConfigError(f"{key} {rule}, got {value!r}", key=key)


def _rule(kind: str, info: FieldInfo, *, item: bool) -> str | None:
    """The rule a value broke, as ``must ...``; None for a value of the wrong type."""
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be {range_text(item_bounds(info.annotation) if item else field_bounds(info))}"
    if kind == "literal_error":
        return f"must be one of {', '.join(typing.get_args(info.annotation))}"
    if kind == "string_too_short":
        return "must be a non-empty string"
    if kind == "too_short":
        return "must list at least one value"
    return None
