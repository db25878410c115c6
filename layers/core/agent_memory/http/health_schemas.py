"""The API models the health check and the error table need: ErrorResponse, BackendCheck, HealthCheckResponse.

Kept apart from `http/schemas.py` (which re-exports them) so that a cold start whose first request is
the health check does not build every request and response model of the API (~30 ms; docs/architecture.md,
"A Lambda layer that starts fast").
"""

from __future__ import annotations

from pydantic import Field

from agent_memory.domain.models import DomainModel


class ErrorResponse(DomainModel):
    """Every error but a validation error: `{"detail": "<what is wrong>"}`."""

    detail: str


class BackendCheck(DomainModel):
    ok: bool
    milliseconds: float = Field(description="How long the backend took to answer (or to fail)")
    detail: str | None = Field(default=None, description="Why it failed")


class HealthCheckResponse(DomainModel):
    now: int = Field(description="Server time, epoch milliseconds")
    version: str
    features: dict[str, bool]
    backends: dict[str, str] = Field(description="Which adapter serves each tier, e.g. working_memory: redis")
    checks: dict[str, BackendCheck] | None = Field(
        default=None, description="With deep=true: whether each backend answered (503 when one did not)"
    )


__all__ = ["BackendCheck", "ErrorResponse", "HealthCheckResponse"]
