"""FastAPI dependencies as `Annotated` aliases, so route signatures read like documentation and tests
override one function (`app.dependency_overrides[get_container]`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agent_memory.bootstrap import Container
from agent_memory.services.long_term import LongTermService
from agent_memory.services.working_memory import WorkingMemoryService


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_tenant(container: ContainerDep) -> str:
    """The caller's tenant. With AUTH_MODE=disabled every caller is the configured default tenant."""
    return container.settings.default_tenant


TenantDep = Annotated[str, Depends(get_tenant)]


def get_working_memory_service(container: ContainerDep) -> WorkingMemoryService:
    return container.working_memory_service


WorkingMemoryServiceDep = Annotated[WorkingMemoryService, Depends(get_working_memory_service)]


def get_long_term_service(container: ContainerDep) -> LongTermService:
    return container.long_term_service


LongTermServiceDep = Annotated[LongTermService, Depends(get_long_term_service)]
