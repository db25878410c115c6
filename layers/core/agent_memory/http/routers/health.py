from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from agent_memory import __version__
from agent_memory.domain.auth import SCOPE_READ
from agent_memory.http.blocking import BlockingRunner
from agent_memory.http.deps import ContainerDep, get_principal
from agent_memory.http.health_schemas import BackendCheck, HealthCheckResponse
from agent_memory.http.json_body import StrictJsonRoute
from agent_memory.services.auth import require
from agent_memory.services.health import probe_backends

router = APIRouter(tags=["health"], route_class=StrictJsonRoute)


@router.get(
    "/v1/health",
    response_model=HealthCheckResponse,
    responses={503: {"model": HealthCheckResponse, "description": "deep=true and a backend did not answer"}},
)
async def health(
    container: ContainerDep,
    request: Request,
    deep: Annotated[bool, Query(description="Also call each backend once and say whether it answered")] = False,
) -> JSONResponse | HealthCheckResponse:
    """Liveness, what is switched on and which backends serve it. Touches no backing store unless `deep`,
    so the plain check answers while Redis is down (the AMS client polls it)."""
    response = HealthCheckResponse(
        now=int(time.time() * 1000),
        version=__version__,
        features=container.features(),
        backends=container.backends(),
    )
    if not deep:
        return response
    # The deep check calls every backend: a credential is needed (the plain check stays open for pollers).
    require(await get_principal(request), SCOPE_READ)
    run: BlockingRunner = request.app.state.runner  # not a dependency: the cheap check must stay cheap
    statuses = await run(probe_backends, container.backend_probes())
    response.checks = {name: BackendCheck(**asdict(status)) for name, status in statuses.items()}
    status = 200 if all(s.ok for s in statuses.values()) else 503
    return JSONResponse(response.model_dump(mode="json"), status_code=status)


@router.get("/", include_in_schema=False)
async def root() -> dict[str, str]:
    """A pointer for whoever opens the base URL in a browser or with curl."""
    return {
        "service": "serverless-agent-memory",
        "version": __version__,
        "docs": "/docs",
        "openapi": "/openapi.json",
        "health": "/v1/health",
        "ui": "/ui",
    }
