"""``create_app(settings)``: the FastAPI application; the run is loaded in the lifespan hook."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from influrec import __version__
from influrec.inference import Recommender
from influrec.runtime import keep_freed_memory
from influrec.serving import influence_routes, mute_routes, page, routes
from influrec.serving.errors import install_error_handlers
from influrec.serving.metrics import Metrics
from influrec.serving.middleware import BodyLimitMiddleware, MetricsMiddleware
from influrec.serving.openapi import docs_html, publish_limits
from influrec.serving.reload import LiveService, start_watching
from influrec.serving.service import Service
from influrec.serving.settings import ServiceSettings

log = logging.getLogger(__name__)

DESCRIPTION = """Real-time recommendations with measured influence.

Every `/v1` route needs `Authorization: Bearer KEY`, a key with the `read`, `write` or `admin`
scope (`admin` implies the others). Errors are `{"error": {"code", "message", "details"}}`.
Every successful answer names the model version that produced it in the `X-Model-Version`
header (`RUN@DIGEST`), and answers about a user also in their `model` field.

Bodies are UTF-8 JSON nested at most 32 deep; anything else is a 422 like any invalid field.
User ids in paths are percent-encoded (`a/b` is `a%2Fb`). A user with no usable history is a
cold start: every route ranks the items most frequent in the training data for them.
"""

# The page needs nothing from anywhere, so the browser is told to load nothing.
DOCS_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


def create_app(settings: ServiceSettings, *, recommender: Recommender | None = None) -> FastAPI:
    """The app for one run. API keys are resolved now (from the settings or the environment);
    the model (unless ``recommender`` is the run, loaded already) and the event store are
    opened when the app starts, not here. The process keeps freed memory for reuse
    (:func:`influrec.runtime.keep_freed_memory`)."""
    keep_freed_memory()
    metrics = Metrics()
    api_keys = settings.resolved_keys()
    if not api_keys:
        log.warning("no API keys configured: every /v1 request will be refused")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service.open(settings, metrics, recommender)
        log.info("loaded %s; events in %s", service.version.id, service.store.location)
        app.state.live = live = LiveService(service)
        stop = threading.Event()
        if settings.watch_s is not None:
            start_watching(live, Path(settings.run_dir), interval_s=settings.watch_s, stop=stop)
        try:
            yield
        finally:
            stop.set()
            live.service.close()  # the store, shared by every model served

    app = FastAPI(
        title="influrec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN
        redoc_url=None,
    )
    app.state.api_keys = api_keys

    def openapi() -> dict[str, Any]:
        """FastAPI's schema (built once) with this process's request limits published in it."""
        return publish_limits(FastAPI.openapi(app), settings.limits)

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The API reference as one self-contained page, rendered from the OpenAPI schema."""
        return HTMLResponse(docs_html(app.openapi()), headers=DOCS_HEADERS)

    install_error_handlers(app)
    app.include_router(mute_routes.router)  # before routes' DELETE /v1/users/{user_id:path}
    app.include_router(routes.router)
    app.include_router(influence_routes.router)
    app.include_router(routes.ops)
    app.include_router(page.router)
    # Added last = outermost: metrics also count requests refused for their size.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.limits.max_body_bytes,
        max_depth=settings.limits.max_json_depth,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
