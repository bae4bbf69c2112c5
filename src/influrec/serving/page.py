"""``GET /ui``: the live page, three static files shipped in the package (``serving/ui/``).

The page holds no data, so it needs no key; the /v1 calls it makes carry the read key typed on
it. Its Content-Security-Policy lets it load and call nothing but this service.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

# What each file is; only these are served (no path from the request reaches the filesystem).
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def asset(name: str) -> Response:
    """One of the page's files, read from the installed package."""
    content = (resources.files("influrec.serving") / "ui" / name).read_bytes()
    return Response(content, media_type=ASSETS[name], headers=HEADERS)


@router.api_route("/ui", methods=["GET", "HEAD"])
@router.api_route("/ui/", methods=["GET", "HEAD"])
def page() -> Response:
    """The page: pick a user, see their history coloured by influence, switch events off."""
    return asset("index.html")


@router.api_route("/ui/ui.js", methods=["GET", "HEAD"])
def script() -> Response:
    return asset("ui.js")


@router.api_route("/ui/ui.css", methods=["GET", "HEAD"])
def stylesheet() -> Response:
    return asset("ui.css")
