"""The long-term service as a dependency, apart from http/deps.py so that a working-memory request, whose
routes import deps, does not import the long-term service and its domain (filters, search, dedup)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from agent_memory.http.deps import ContainerDep
from agent_memory.services.long_term import LongTermService


async def get_long_term_service(container: ContainerDep) -> LongTermService:
    return container.long_term_service


LongTermServiceDep = Annotated[LongTermService, Depends(get_long_term_service)]
