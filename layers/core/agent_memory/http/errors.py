"""The one place where errors become HTTP responses.

Bodies follow the AMS shape `{"detail": "<text>"}`; validation errors keep FastAPI's 422 list shape
because the official client passes `detail` through as it is. Anything unexpected is a JSON 500 with
the same shape (the traceback goes to the log), never Starlette's plain-text page.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent_memory.domain.errors import (
    AgentMemoryError,
    AuthenticationError,
    ConflictError,
    DependencyUnavailableError,
    FeatureDisabledError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    UnprocessableError,
)
from agent_memory.http.health_schemas import ErrorResponse

logger = logging.getLogger("agent_memory.http")

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[AgentMemoryError], int], ...] = (
    (UnprocessableError, 422),
    (InvalidInputError, 400),
    (FeatureDisabledError, 400),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (RateLimitedError, 429),
    (DependencyUnavailableError, 503),
)


def status_for(error: AgentMemoryError) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AgentMemoryError)
    async def _domain_error(_: Request, exc: AgentMemoryError) -> JSONResponse:
        status = status_for(exc)
        headers = _headers_for(exc, status)
        if status >= 500:
            logger.warning("dependency failure: %s", exc.detail)
        if status == 422:  # every 422 has FastAPI's list shape, as the OpenAPI document says
            return JSONResponse({"detail": [{"type": "value_error", "loc": ["body"], "msg": exc.detail}]}, 422)
        return JSONResponse({"detail": exc.detail}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [_writable(error) for error in exc.errors()]}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette's Allow names only the first route matching the path; a path served by
            # several routes (GET, PUT and DELETE of a session) allows all of their methods.
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this answer, so servers still see the error; the log says where.
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "Internal server error"}, status_code=500)


def _headers_for(error: AgentMemoryError, status: int) -> dict[str, str] | None:
    if isinstance(error, RateLimitedError):
        return {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status == 503:
        return {"Retry-After": "1"}
    return None


def _allowed_methods(request: Request) -> list[str]:
    # The most literal routes win: `/v1/long-term-memory/search` is the search route's path, though
    # `/v1/long-term-memory/{memory_id}` would match it too.
    path = request.scope["path"]
    matching = [route for route in _leaf_routes(request.app.router.routes) if route.path_regex.match(path)]
    fewest_params = min((len(route.param_convertors) for route in matching), default=0)
    methods: set[str] = set()
    for route in matching:
        if len(route.param_convertors) == fewest_params:
            methods.update(route.methods or ())
    return sorted(methods)


def _leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    # FastAPI 0.165 keeps an included router whole (`original_router`); older ones copy its routes.
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaf_routes(inner.routes)
        elif hasattr(route, "path_regex"):
            yield route


def _writable(error: Any) -> dict[str, Any]:
    """One validation error as JSON can carry it: the rejected `input` (then `ctx`) is left out when it
    cannot be written as strict UTF-8 JSON (a non-finite float, a lone surrogate, a 5,000-digit int, the
    bytes of a body that is not UTF-8, which FastAPI hands on as they are when the Content-Type is not JSON)."""
    for dropped in ((), ("input",), ("input", "ctx")):
        try:
            encoded: dict[str, Any] = jsonable_encoder({k: v for k, v in error.items() if k not in dropped})
        except (ValueError, TypeError):  # UnicodeDecodeError is a ValueError
            continue
        if _is_writable(encoded):
            return encoded
    return {"type": str(error.get("type")), "loc": [], "msg": "invalid input"}


def _is_writable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        return False
    return True


# What each kind of route can answer besides 200, for the OpenAPI document (`responses=` on a router
# or route). 422 is FastAPI's own validation list, added by FastAPI wherever a route takes input.
ERROR_RESPONSES: dict[int, str] = {
    400: "The content is not acceptable (e.g. a blank message), or the feature needs configuration",
    404: "No such session or memory",
    409: "The write lost a race it cannot retry",
    413: "Over a documented size or count limit (the message names the setting)",
    503: "A backing service (Redis, SQLite, OpenSearch, the embedder, the LLM) failed; see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries with the `{"detail": str}` model, e.g. `error_responses(404, 503)`."""
    return {status: {"model": ErrorResponse, "description": ERROR_RESPONSES[status]} for status in statuses}
