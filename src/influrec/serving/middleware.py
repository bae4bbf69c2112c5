"""Two pure ASGI middlewares: a request-body guard (size, encoding, nesting) and per-route
metrics with one access-log line per request."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from influrec.serving.errors import error_body
from influrec.serving.metrics import Metrics


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


log = logging.getLogger("influrec.serving.access")

STEPS = np.zeros(256, np.int64)
STEPS[[ord("["), ord("{")]], STEPS[[ord("]"), ord("}")]] = 1, -1
QUOTE, BACKSLASH = ord('"'), ord("\\")


def nesting_depth(text: str) -> int:
    """How deep JSON ``text`` nests arrays and objects (brackets inside strings do not count);
    computed in one vectorised pass without parsing, so no body can exhaust the parser's
    recursion or take more than linear time."""
    raw = np.frombuffer(text.encode("utf-8", "replace"), np.uint8)  # no multi-byte char
    index = np.arange(len(raw))  # holds a quote, backslash or bracket byte
    backslash = raw == BACKSLASH
    last_other = np.maximum.accumulate(np.where(backslash, -1, index)) if len(raw) else index
    run = np.where(backslash, index - last_other, 0)  # backslashes ending at each byte
    escaped = np.r_[0, run[:-1]] % 2 == 1 if len(raw) else backslash
    quotes = (raw == QUOTE) & ~escaped
    inside = np.cumsum(quotes) % 2 == 1  # within a string literal (its opening quote too)
    steps = np.where(inside, 0, STEPS[raw])
    return int(np.cumsum(steps).max(initial=0))


def body_problem(body: bytes, *, max_depth: int) -> dict[str, Any] | None:
    """The error detail of a body this API cannot read as JSON (not UTF-8, nested deeper
    than ``max_depth``), or None; the parser then reports any other problem itself."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"the body is not UTF-8 (invalid byte at offset {exc.start}); send UTF-8 JSON"
        return {"field": "body", "message": message, "type": "utf8_invalid"}
    depth = nesting_depth(text)
    if depth > max_depth:
        message = f"the body nests arrays/objects {depth} deep; at most {max_depth}"
        return {"field": "body", "message": message, "type": "too_deep"}
    return None


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413 before the app parses them, and bodies that
    are not UTF-8 or nest deeper than ``max_depth`` with the 422 of any invalid request.

    A declared ``Content-Length`` is checked first; otherwise (chunked uploads) the body is
    read up to the limit and replayed to the app, so a lying client cannot get past it.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int = 32) -> None:
        self.app, self.max_bytes, self.max_depth = app, max_bytes, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        problem = body_problem(
            b"".join(m.get("body", b"") for m in messages), max_depth=self.max_depth
        )
        if problem is not None:
            body = error_body("validation_error", problem["message"], [problem])
            await _send_json(send, 422, body)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        message = f"request body over {self.max_bytes} bytes; send smaller batches"
        await _send_json(send, 413, error_body("payload_too_large", message))


class MetricsMiddleware:
    """Counts each HTTP request by method, route template and status, and times it; logs one
    access line per request with the route template only, never the path or query string
    (user ids, or a key a client put in the URL, stay out of the log)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            matched = scope.get("route")  # its template, without convertors (`{user_id}`)
            route = getattr(matched, "path_format", None) or getattr(matched, "path", None)
            route = route or "unmatched"
            seconds = time.perf_counter() - start
            self.metrics.observe(
                method=scope["method"], route=route, status=status, seconds=seconds
            )
            log.info("%s %s %d %.1f ms", scope["method"], route, status, seconds * 1000)
