"""``create_app(settings)``: the FastAPI application; the run is loaded in the lifespan hook."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from influrec import __version__
from influrec.runtime import keep_freed_memory
from influrec.serving import influence_routes, routes
from influrec.serving.errors import install_error_handlers
from influrec.serving.metrics import Metrics
from influrec.serving.middleware import BodyLimitMiddleware, MetricsMiddleware
from influrec.serving.openapi import publish_limits
from influrec.serving.service import Service
from influrec.serving.settings import ServiceSettings

log = logging.getLogger(__name__)

DESCRIPTION = """Real-time recommendations with measured influence.

Every `/v1` route needs `Authorization: Bearer KEY`, a key with the `read`, `write` or `admin`
scope (`admin` implies the others). Errors are `{"error": {"code", "message", "details"}}`.
"""


def create_app(settings: ServiceSettings) -> FastAPI:
    """The app for one run. API keys are resolved now (from the settings or the environment);
    the model and the event store are opened when the app starts, not here. The process keeps
    freed memory for reuse (:func:`influrec.runtime.keep_freed_memory`)."""
    keep_freed_memory()
    metrics = Metrics()
    api_keys = settings.resolved_keys()
    if not api_keys:
        log.warning("no API keys configured: every /v1 request will be refused")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service.open(settings, metrics)
        log.info("loaded %s; events in %s", settings.run_dir, settings.store_path)
        app.state.service = service
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="influrec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.api_keys = api_keys

    def openapi() -> dict[str, Any]:
        """FastAPI's schema (built once) with this process's request limits published in it."""
        return publish_limits(FastAPI.openapi(app), settings.limits)

    app.openapi = openapi  # type: ignore[method-assign]
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(influence_routes.router)
    app.include_router(routes.ops)
    # Added last = outermost: metrics also count requests refused for their size.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
