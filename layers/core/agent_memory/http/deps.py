"""FastAPI dependencies as `Annotated` aliases, so route signatures read like documentation and tests
override one function (`app.dependency_overrides[get_container]`).

They are `async def` on purpose: they do no I/O, and FastAPI runs a plain `def` dependency in a worker
thread. Under Mangum every invocation is a new root task, so anyio cannot reuse its workers and each
hop would start a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from agent_memory.bootstrap import Container
from agent_memory.domain.auth import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE, Principal
from agent_memory.http.blocking import BlockingRunner
from agent_memory.http.rate_limit import enforce_rate_limit
from agent_memory.ports import SessionReader
from agent_memory.services.auth import TENANT_HEADER, Authenticator, require
from agent_memory.services.working_memory import WorkingMemoryService


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_principal(request: Request) -> Principal:
    """Who is calling (services/auth.Authenticator): 401 without a valid credential, 403 when `x-tenant-id`
    names another tenant, 400 when it is not a valid tenant id.

    It reads the headers itself rather than through FastAPI's security classes, which would be two more
    dependencies to resolve on every request; http/security.py documents the schemes in OpenAPI instead.
    With auth disabled this is one header lookup.
    """
    auth: Authenticator = request.app.state.container.authenticator
    headers = request.headers
    tenant_header = headers.get(TENANT_HEADER)
    if auth.disabled:
        principal = auth.local_principal(tenant_header)
    else:
        credential = auth.credential(headers)
        if auth.verify_blocks:  # DynamoDB or a JWKS fetch: off the event loop
            principal = await request.app.state.runner(auth.verify, credential, tenant_header)
        else:  # a SQLite primary-key read: microseconds, inline
            principal = auth.verify(credential, tenant_header)
    await enforce_rate_limit(request.app.state.container, principal, request.app.state.runner)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_scope(scope: str) -> Any:
    """A dependency that lets the request through only when the principal has `scope` (else 403), e.g.
    `@router.get(..., dependencies=READ)`. FastAPI resolves `get_principal` once per
    request however many dependencies use it."""

    async def check_scope(principal: PrincipalDep) -> Principal:
        return require(principal, scope)

    check_scope.required_scope = scope  # type: ignore[attr-defined]  # read by http/security.py and tests
    return Depends(check_scope)


# `dependencies=READ` on a route: reads (GET, the search and prompt POSTs), writes, user data rights.
READ = [require_scope(SCOPE_READ)]
WRITE = [require_scope(SCOPE_WRITE)]
ADMIN = [require_scope(SCOPE_ADMIN)]


async def get_tenant(principal: PrincipalDep) -> str:
    """The caller's tenant: the credential's, or with AUTH_MODE=disabled DEFAULT_TENANT or `x-tenant-id`.
    Routes also declare the scope they need (READ, WRITE, ADMIN)."""
    return principal.tenant


TenantDep = Annotated[str, Depends(get_tenant)]


async def get_working_memory_service(container: ContainerDep) -> WorkingMemoryService:
    return container.working_memory_service


WorkingMemoryServiceDep = Annotated[WorkingMemoryService, Depends(get_working_memory_service)]


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
    reader: SessionReader | None  # a server's event-loop reader (http/app.py), for the GET


async def get_working_memory_call(container: ContainerDep, request: Request) -> WorkingMemoryCall:
    """The principal and its scope are checked here, inside the one dependency: GET needs memory:read,
    PUT and DELETE memory:write."""
    principal = await get_principal(request)
    require(principal, SCOPE_READ if request.method in _READ_METHODS else SCOPE_WRITE)
    state = request.app.state
    return WorkingMemoryCall(
        service=container.working_memory_service,
        tenant=principal.tenant,
        run=state.runner,
        reader=state.session_reader,
    )


_READ_METHODS = frozenset({"GET", "HEAD"})


WorkingMemoryCallDep = Annotated[WorkingMemoryCall, Depends(get_working_memory_call)]
