from __future__ import annotations

import time

from fastapi import APIRouter

from agent_memory import __version__
from agent_memory.http.deps import ContainerDep
from agent_memory.http.json_body import StrictJsonRoute
from agent_memory.http.schemas import HealthCheckResponse

router = APIRouter(tags=["health"], route_class=StrictJsonRoute)


@router.get("/v1/health", response_model=HealthCheckResponse)
async def health(container: ContainerDep) -> HealthCheckResponse:
    """Liveness and what is switched on. Touches no backing store, so it answers while Redis is down."""
    return HealthCheckResponse(now=int(time.time() * 1000), version=__version__, features=container.features())
