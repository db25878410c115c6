"""The one place where domain errors become HTTP responses.

Bodies follow the AMS shape `{"detail": "<text>"}`; validation errors keep FastAPI's 422 list shape
because the official client passes `detail` through as it is.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from agent_memory.domain.errors import (
    AgentMemoryError,
    ConflictError,
    DependencyUnavailableError,
    FeatureDisabledError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    UnprocessableError,
)

logger = logging.getLogger("agent_memory.http")

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[AgentMemoryError], int], ...] = (
    (UnprocessableError, 422),
    (InvalidInputError, 400),
    (FeatureDisabledError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
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
        headers = {"Retry-After": "1"} if status == 503 else None
        if status >= 500:
            logger.warning("dependency failure: %s", exc.detail)
        return JSONResponse({"detail": exc.detail}, status_code=status, headers=headers)
