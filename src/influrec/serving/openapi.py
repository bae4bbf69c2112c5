"""The OpenAPI schema as this process serves it: the configured request limits are published
in it, and ``/docs`` renders it as one self-contained HTML page (no script, no outside host)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from html import escape
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


STYLE = """body{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;margin:.4rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;
text-align:left;vertical-align:top}code,pre{background:#f4f4f4}pre{padding:.5rem;white-space:pre-wrap}
h3{margin-top:2rem;font-family:monospace}"""


def type_of(schema: dict[str, Any]) -> str:
    """A short name of a JSON-schema type: ``integer``, ``EventIn[]``, ``string | null``..."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(type_of(option) for option in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(escape(json.dumps(value)) for value in schema["enum"])
    if schema.get("type") == "array":
        return type_of(schema.get("items", {})) + "[]"
    return escape(str(schema.get("type", "any")))


def bounds_of(schema: dict[str, Any]) -> str:
    """Constraints and default, e.g. ``1 <= value <= 100, default 10``."""
    words = [
        f"{key} {schema[key]}"
        for key in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems")
        if key in schema
    ]
    for option in schema.get("anyOf", []):
        words += [f"{key} {option[key]}" for key in ("minimum", "maximum") if key in option]
    if "default" in schema:
        words.append(f"default {json.dumps(schema['default'])}")
    return escape(", ".join(words))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    parts = [f"<h3>{method.upper()} {escape(path)}</h3>", f"<p>{escape(op.get('summary', ''))}</p>"]
    if op.get("description"):
        parts.append(f"<pre>{escape(op['description'])}</pre>")
    parameters = [
        (
            f"<code>{escape(p['name'])}</code>",
            escape(p["in"]) + (" (required)" if p.get("required") else ""),
            type_of(p.get("schema", {})),
            bounds_of(p.get("schema", {})),
            escape(p.get("description") or p.get("schema", {}).get("description", "")),
        )
        for p in op.get("parameters", [])
    ]
    if parameters:
        parts.append(_table(("parameter", "in", "type", "bounds", "meaning"), parameters))
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        parts.append(f"<p>JSON body: {type_of(body['schema'])}</p>")
    responses = []
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {}).get("application/json", {})
        shape = type_of(content["schema"]) if "schema" in content else ""
        responses.append((escape(status), escape(response.get("description", "")), shape))
    parts.append(_table(("status", "meaning", "body"), responses))
    return "\n".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = [
        (
            f"<code>{escape(field)}</code>" + (" (required)" if field in required else ""),
            type_of(spec),
            bounds_of(spec),
            escape(spec.get("description", "")),
        )
        for field, spec in schema.get("properties", {}).items()
    ]
    title = f'<h4 id="schema-{escape(name)}">{escape(name)}</h4>'
    return title + _table(("field", "type", "bounds", "meaning"), rows)


def docs_html(schema: dict[str, Any]) -> str:
    """The whole API reference as one HTML page: no script, no stylesheet or font from
    anywhere (the page works offline and loads nothing from other hosts)."""
    info = schema["info"]
    operations = [
        _operation(path, method, op)
        for path, methods in schema["paths"].items()
        for method, op in methods.items()
    ]
    schemas = [_schema(n, s) for n, s in schema.get("components", {}).get("schemas", {}).items()]
    title = f"{escape(info['title'])} {escape(info['version'])}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title} API</title>"
        f"<style>{STYLE}</style></head><body><h1>{title} API</h1>"
        f"<pre>{escape(info.get('description', ''))}</pre>"
        "<p>The machine-readable schema: <a href='openapi.json'>openapi.json</a>.</p>"
        "<h2>Routes</h2>"
        + "\n".join(operations)
        + "<h2>Bodies</h2>"
        + "\n".join(schemas)
        + "</body></html>"
    )
