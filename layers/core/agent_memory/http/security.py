"""How `/openapi.json` documents authentication: the security schemes, 401/403 and `x-tenant-id`.

`http/deps.get_principal` reads the credential headers itself (FastAPI's `HTTPBearer`/`APIKeyHeader`
dependencies would cost two more resolutions on every request, auth on or off), so the document is
completed here instead: every operation whose dependencies reach `get_principal` gets the schemes of
the running AUTH_MODE (none when disabled), 401 and 403, and the optional `x-tenant-id` header (400 when
it is not a valid tenant id). `GET /v1/health` is open; with `deep=true` it needs a credential, so its
security is optional (`{}` or a scheme).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from agent_memory.domain.errors import ConfigurationError
from agent_memory.http import deps

BEARER = "HTTPBearer"
API_KEY = "APIKeyHeader"
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
RESPONSES = {
    "400": "The x-tenant-id header is not a valid tenant id",
    "401": "No credential, or one that is unknown, malformed, expired or revoked (WWW-Authenticate: Bearer)",
    "403": "The credential lacks the scope this needs, or x-tenant-id names another tenant",
    "429": "Over the caller's rate limit (RATE_LIMIT_PER_SECOND, RATE_LIMIT_BURST); Retry-After says when to retry",
}
TENANT_PARAMETER = {
    "name": "x-tenant-id",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "With auth on, only the credential's own tenant; with auth disabled, the tenant to act as",
}
_PRINCIPAL_CALLS: set[Callable[..., Any]] = {deps.get_principal, deps.get_working_memory_call}


def install_security(app: FastAPI, mode: str, *, rate_limited: bool = False) -> None:
    """Complete `app.openapi()` for AUTH_MODE `mode` (call once, after the routers are included);
    `rate_limited`: authenticated routes can also answer 429 (http/rate_limit.py).

    Raises ConfigurationError for AUTH_MODE=disabled on Lambda: a deployed API has no loopback to hide
    behind, and anyone with its URL would be every tenant. The check sits here, where the API's app is
    built, and not in Settings, because ExtractionFunction (no HTTP) reads the same settings.
    """
    if mode == "disabled" and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        raise ConfigurationError("AUTH_MODE=disabled is refused on Lambda: set AUTH_MODE=api_key or jwt")
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        _document(app, schema, mode, rate_limited)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def authenticated_routes(app: FastAPI) -> Iterator[APIRoute]:
    """The routes whose dependencies reach `get_principal` (what the document and the tests check)."""
    for route in leaf_routes(app.router.routes):
        if isinstance(route, APIRoute) and _reaches(route.dependant, _PRINCIPAL_CALLS):
            yield route


def required_scopes(route: APIRoute) -> set[str]:
    """The scopes a route's `require_scope` dependencies ask for (working-memory routes: by method)."""
    found: set[str] = set()

    def walk(dependant: Dependant) -> None:
        scope = getattr(dependant.call, "required_scope", None)
        if scope:
            found.add(scope)
        for sub in dependant.dependencies:
            walk(sub)

    walk(route.dependant)
    return found


def _document(app: FastAPI, schema: dict[str, Any], mode: str, rate_limited: bool) -> None:
    schemes = {BEARER: {"type": "http", "scheme": "bearer"}} if mode != "disabled" else {}
    if mode == "api_key":
        schemes[API_KEY] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    if schemes:
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(schemes)
    requirement: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    paths = schema.get("paths", {})
    for route in authenticated_routes(app):
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            _add_parameter(operation)
            _add_responses(operation, ("400", "401", "403") if schemes else ("400",))
            if rate_limited:
                _add_responses(operation, ("429",))
            if requirement:
                operation["security"] = requirement
    health = paths.get("/v1/health", {}).get("get")
    if health is not None and requirement:
        health["security"] = [{}, *requirement]
        _add_responses(health, ("401", "403"))


def _add_parameter(operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("in") == "header" and p.get("name") == "x-tenant-id" for p in parameters):
        parameters.append(dict(TENANT_PARAMETER))


def _add_responses(operation: dict[str, Any], statuses: Iterable[str]) -> None:
    responses = operation.setdefault("responses", {})
    for status in statuses:
        responses.setdefault(status, {"description": RESPONSES[status], **_ERROR})


def _reaches(dependant: Dependant, calls: set[Callable[..., Any]]) -> bool:
    return dependant.call in calls or any(_reaches(sub, calls) for sub in dependant.dependencies)


def leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    # FastAPI 0.165 keeps an included router whole (`original_router`); older ones copy its routes.
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from leaf_routes(inner.routes)
        else:
            yield route


__all__ = ["authenticated_routes", "install_security", "leaf_routes", "required_scopes"]
