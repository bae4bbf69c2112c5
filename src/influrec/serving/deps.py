"""``Annotated`` dependencies of the routes: the loaded service, API-key scopes, bounded k."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from influrec.serving.errors import ApiError
from influrec.serving.openapi import limited
from influrec.serving.reload import LiveService
from influrec.serving.service import Service

bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer KEY`")


MODEL_HEADER = "X-Model-Version"


def get_live(request: Request) -> LiveService:
    live: LiveService = request.app.state.live
    return live


def get_service(live: Annotated[LiveService, Depends(get_live)], response: Response) -> Service:
    """The service (model) of this request, taken once: a reload during the request does not
    change it. Its version goes out in the ``X-Model-Version`` header."""
    service = live.service
    response.headers[MODEL_HEADER] = service.version.id
    return service


LiveDep = Annotated[LiveService, Depends(get_live)]
ServiceDep = Annotated[Service, Depends(get_service)]


def scopes_of(token: str, keys: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    """The scopes of ``token`` (compared in constant time with every key), None if unknown."""
    found = None
    for key, scopes in keys.items():
        if hmac.compare_digest(token.encode(), key.encode()):
            found = scopes
    return found


def require(scope: str) -> Callable[..., str]:
    """A dependency that lets a request through only with a key holding ``scope``."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(401, "unauthorized", "missing API key", headers=challenge)
        scopes = scopes_of(credentials.credentials, request.app.state.api_keys)
        if scopes is None:
            raise ApiError(401, "unauthorized", "unknown API key", headers=challenge)
        if scope not in scopes:
            raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return scope

    return check


Read = Annotated[str, Depends(require("read"))]
Write = Annotated[str, Depends(require("write"))]
Admin = Annotated[str, Depends(require("admin"))]


CLAMPED = "items per list; more than the catalogue holds is clamped to the catalogue"


def top_k(
    service: ServiceDep,
    k: Annotated[int, Query(ge=1, description=CLAMPED, json_schema_extra=limited("max_k"))] = 10,
) -> int:
    return service.check("k", k, service.limits.max_k)


def explained_k(
    service: ServiceDep,
    k: Annotated[
        int, Query(ge=1, description=CLAMPED, json_schema_extra=limited("max_explain_k"))
    ] = 10,
) -> int:
    return service.check("k", k, service.limits.max_explain_k)


K = Annotated[int, Depends(top_k)]
ExplainedK = Annotated[int, Depends(explained_k)]
