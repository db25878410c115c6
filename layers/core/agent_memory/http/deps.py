"""FastAPI dependencies as `Annotated` aliases, so route signatures read like documentation and tests
override one function (`app.dependency_overrides[get_container]`).

They are `async def` on purpose: they do no I/O, and FastAPI runs a plain `def` dependency in a worker
thread. Under Mangum every invocation is a new root task, so anyio cannot reuse its workers and each
hop would start a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from agent_memory.bootstrap import Container
from agent_memory.http.blocking import BlockingRunner
from agent_memory.services.long_term import LongTermService
from agent_memory.services.working_memory import WorkingMemoryService


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_tenant(container: ContainerDep) -> str:
    """The caller's tenant. With AUTH_MODE=disabled every caller is the configured default tenant."""
    return container.settings.default_tenant


TenantDep = Annotated[str, Depends(get_tenant)]


async def get_working_memory_service(container: ContainerDep) -> WorkingMemoryService:
    return container.working_memory_service


WorkingMemoryServiceDep = Annotated[WorkingMemoryService, Depends(get_working_memory_service)]


async def get_long_term_service(container: ContainerDep) -> LongTermService:
    return container.long_term_service


LongTermServiceDep = Annotated[LongTermService, Depends(get_long_term_service)]


async def get_runner(request: Request) -> BlockingRunner:
    runner: BlockingRunner = request.app.state.runner
    return runner


RunDep = Annotated[BlockingRunner, Depends(get_runner)]


@dataclass(frozen=True, slots=True)
class WorkingMemoryCall:
    """What a working-memory route needs to call its service for the caller, as one dependency.

    The working-memory routes are the hot path: FastAPI resolves each dependency (and sub-dependency)
    separately, so one resolved object instead of service + tenant + runner saves a third of the
    framework's per-request work on a GET.
    """

    service: WorkingMemoryService
    tenant: str
    run: BlockingRunner


async def get_working_memory_call(container: ContainerDep, request: Request) -> WorkingMemoryCall:
    return WorkingMemoryCall(
        service=container.working_memory_service,
        tenant=await get_tenant(container),
        run=request.app.state.runner,
    )


WorkingMemoryCallDep = Annotated[WorkingMemoryCall, Depends(get_working_memory_call)]
