"""The Memory Platform session API (DESIGN.md, API surface 2; issue 12): sessions on the working-memory store.

`POST /api/v1/working-memory/sessions`, `GET .../sessions/{id}`, `POST .../{id}/messages` (an atomic append),
`POST .../{id}/prime`. The tenant is the caller's; a `tenant_id` in a body must be that tenant (403).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from agent_memory.domain.errors import PermissionDeniedError
from agent_memory.domain.models import MemoryMessage, new_id, utcnow
from agent_memory.http.deps import READ, WRITE, ContainerDep, RunDep, TenantDep
from agent_memory.http.errors import error_responses
from agent_memory.http.json_body import StrictJsonRoute
from agent_memory.http.schemas import ErrorResponse, SessionIdPath
from agent_memory.http.session_schemas import (
    AppendMessageRequest,
    CreateSessionRequest,
    MemoryIds,
    PrimeRequest,
    PrimeResponse,
    SessionItem,
    SessionResponse,
)
from agent_memory.services.sessions import SessionService, SessionView

router = APIRouter(
    prefix="/api/v1/working-memory/sessions",
    tags=["memory platform sessions"],
    route_class=StrictJsonRoute,
    responses=error_responses(503),
)

EXTRACTION_HEADER = "X-Agent-Memory-Extraction"
_FOREIGN_TENANT: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "A tenant_id in the body that is not the caller's tenant"}
}


async def get_session_service(container: ContainerDep) -> SessionService:
    return container.session_service


SessionServiceDep = Annotated[SessionService, Depends(get_session_service)]


def _check_tenant(sent: str | None, tenant: str) -> None:
    if sent is not None and sent != tenant:
        raise PermissionDeniedError(f"tenant_id {sent!r} is not the caller's tenant")


def _session(view: SessionView) -> SessionResponse:
    memory = view.memory
    return SessionResponse(
        session_id=memory.session_id,
        tenant_id=view.key.tenant,
        subject=view.key.user_id,
        items=[
            SessionItem(id=m.id, role=m.role, content=m.content, timestamp=m.created_at,
                        extracted=m.discrete_memory_extracted == "t")
            for m in memory.messages
        ],
        item_count=len(memory.messages),
        max_items=memory.message_limit,
        token_count=view.token_count,
        primed_memory_ids=list(memory.primed_memory_ids or []),
        primed_memories=view.primed,
        ttl=view.ttl_left,
        ttl_seconds=memory.ttl_seconds,
        created_at=memory.created_at,
        updated_at=memory.updated_at,
    )


@router.post("", status_code=201, response_model=SessionResponse, dependencies=WRITE,
             responses={**error_responses(413), **_FOREIGN_TENANT,
                        409: {"model": ErrorResponse, "description": "A session with this id exists in the tenant"}})
async def create_session(
    body: CreateSessionRequest, tenant: TenantDep, sessions: SessionServiceDep, run: RunDep
) -> SessionResponse:
    """Create an empty session (409 when one with this id exists in the caller's tenant)."""
    _check_tenant(body.tenant_id, tenant)
    view = await run(sessions.create, tenant, body.session_id, subject=body.subject, ttl_seconds=body.ttl,
                     max_items=body.max_items)
    return _session(view)


@router.get("/{session_id}", response_model=SessionResponse, dependencies=READ, responses=error_responses(404))
async def get_session(
    session_id: SessionIdPath, tenant: TenantDep, sessions: SessionServiceDep, run: RunDep
) -> SessionResponse:
    """The session's items, token count, primed memories and TTL left; 404 when it does not exist."""
    return _session(await run(sessions.get, tenant, session_id))


@router.post("/{session_id}/messages", response_model=SessionResponse, dependencies=WRITE,
             responses={**error_responses(400, 413), **_FOREIGN_TENANT})
async def append_message(
    session_id: SessionIdPath,
    body: AppendMessageRequest,
    tenant: TenantDep,
    sessions: SessionServiceDep,
    run: RunDep,
    response: Response,
) -> SessionResponse:
    """Append one item atomically (never loses a concurrent append); the session is created when missing.

    The oldest items beyond the session's `max_items` are dropped only once extraction has stored what they
    said. `X-Agent-Memory-Extraction` says whether extraction was queued, as after a working-memory PUT."""
    _check_tenant(body.tenant_id, tenant)
    message = MemoryMessage(role=body.role, content=body.content, id=body.id or new_id(),
                            created_at=body.timestamp or utcnow())
    view = await run(sessions.append, tenant, session_id, message)
    if view.extraction is not None:
        response.headers[EXTRACTION_HEADER] = view.extraction
    return _session(view)


@router.post("/{session_id}/prime", response_model=PrimeResponse, dependencies=WRITE,
             responses=error_responses(400, 404))
async def prime_session(
    session_id: SessionIdPath,
    body: Annotated[
        MemoryIds | PrimeRequest,
        Body(description='Long-term memory ids: `["id1", "id2"]` or `{"memory_ids": [...]}`'),
    ],
    tenant: TenantDep,
    sessions: SessionServiceDep,
    run: RunDep,
) -> PrimeResponse:
    """Load those long-term records into the session; ids with no record are reported, not fatal."""
    ids = body.memory_ids if isinstance(body, PrimeRequest) else body
    view = await run(sessions.prime, tenant, session_id, ids)
    return PrimeResponse(**_session(view).model_dump(), unknown_memory_ids=view.unknown_memory_ids)
