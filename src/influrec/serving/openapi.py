"""The OpenAPI schema as this process serves it: the configured request limits are published
in it, and ``/docs`` renders it as one self-contained HTML page (no script, no outside host)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from influrec.serving.settings import Limits

# A route or body field marks which limit bounds it; the limits are settings, so the schema
# gets the number when the app is built (the routes check the same number).
LIMIT = "x-influrec-limit"  # -> "maximum"
ITEMS_LIMIT = "x-influrec-items-limit"  # -> "maxItems"


def limited(name: str) -> dict[str, Any]:
    """``json_schema_extra`` of a number bounded by ``Limits.<name>``."""
    assert name in asdict(Limits()), name
    return {LIMIT: name}


def limited_items(name: str) -> dict[str, Any]:
    """``json_schema_extra`` of a list whose length is bounded by ``Limits.<name>``."""
    assert name in asdict(Limits()), name
    return {ITEMS_LIMIT: name}


def publish_limits(node: Any, limits: Limits) -> Any:
    """Replace every limit marker in the schema (in place) by its ``maximum``/``maxItems``."""
    if isinstance(node, dict):
        for marker, keyword in ((LIMIT, "maximum"), (ITEMS_LIMIT, "maxItems")):
            if marker in node:
                node[keyword] = getattr(limits, node.pop(marker))
        for value in node.values():
            publish_limits(value, limits)
    elif isinstance(node, list):
        for value in node:
            publish_limits(value, limits)
    return node
