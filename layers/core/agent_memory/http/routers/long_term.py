"""AMS §2 rows 6–12: create, search, delete, compact, forget, get and patch long-term memories."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from agent_memory.domain.models import MemoryRecord, utcnow
from agent_memory.domain.search import SearchRequest
from agent_memory.http.deps import READ, WRITE, RunDep, TenantDep
from agent_memory.http.errors import error_responses
from agent_memory.http.json_body import StrictJsonRoute
from agent_memory.http.long_term_deps import LongTermServiceDep
from agent_memory.http.schemas import (
    AckResponse,
    CreateMemoryRecordRequest,
    CreateMemoryRecordResponse,
    EditMemoryRecordRequest,
    ForgetRequest,
    MemoryIdPath,
    MemoryRecordResultsResponse,
)
from agent_memory.services import maintenance

router = APIRouter(tags=["long-term memory"], route_class=StrictJsonRoute, responses=error_responses(400, 503))
WITH_BODY = error_responses(413)

OptimizeQuery = Annotated[bool, Query(description="Rewrite the query with the LLM first (when configured)")]


@router.post(
    "/v1/long-term-memory/", response_model=CreateMemoryRecordResponse, responses=WITH_BODY,
    dependencies=WRITE,
)
@router.post(
    "/v1/long-term-memory", response_model=CreateMemoryRecordResponse, include_in_schema=False,
    dependencies=WRITE,
)
async def create_long_term_memory(
    body: CreateMemoryRecordRequest, service: LongTermServiceDep, tenant: TenantDep, run: RunDep, response: Response
) -> CreateMemoryRecordResponse:
    """Embed and index the records before answering: a search right after this sees them.

    Records stored with `discrete_memory_extracted="f"` (the Python client's default) get a second
    extraction pass in the background; `X-Agent-Memory-Extraction` says whether it was queued or deferred."""
    records = [MemoryRecord.model_validate(m.model_dump()) for m in body.memories]
    outcome = await run(service.create, tenant, records, deduplicate=body.deduplicate)
    if outcome.extraction is not None:
        response.headers["X-Agent-Memory-Extraction"] = outcome.extraction
    return CreateMemoryRecordResponse(
        status="ok",
        stored_ids=outcome.stored,
        duplicate_ids=outcome.duplicates,
        merged_ids=outcome.merged,
        duplicate_of=outcome.duplicate_of,
    )


@router.post(
    "/v1/long-term-memory/search", response_model=MemoryRecordResultsResponse, responses=WITH_BODY,
    dependencies=READ,
)
async def search_long_term_memory(
    body: SearchRequest,
    service: LongTermServiceDep,
    tenant: TenantDep,
    run: RunDep,
    optimize_query: OptimizeQuery = False,
) -> MemoryRecordResultsResponse:
    results = await run(service.search, tenant, body, optimize_query=optimize_query)
    return MemoryRecordResultsResponse(
        memories=results.memories, total=results.total, next_offset=results.next_offset
    )


@router.delete("/v1/long-term-memory", response_model=AckResponse, dependencies=WRITE)
@router.delete("/v1/long-term-memory/", response_model=AckResponse, include_in_schema=False, dependencies=WRITE)
async def delete_long_term_memories(
    service: LongTermServiceDep,
    tenant: TenantDep,
    run: RunDep,
    memory_ids: Annotated[list[str], Query(max_length=1000)] = [],  # noqa: B006 - FastAPI copies defaults
) -> AckResponse:
    deleted = await run(service.delete, tenant, memory_ids)
    return AckResponse(status=f"ok, deleted {deleted} memories")


@router.post("/v1/long-term-memory/compact", response_model=AckResponse, dependencies=WRITE)
async def compact_long_term_memories(
    service: LongTermServiceDep,
    tenant: TenantDep,
    run: RunDep,
    namespace: str | None = None,
    user_id: str | None = None,
) -> AckResponse:
    scope = maintenance.Scope(namespace=namespace, user_id=user_id)
    remaining = await run(maintenance.compact, service, tenant, scope)
    return AckResponse(status=f"ok, {remaining} memories remaining after compaction")


@router.post(
    "/v1/long-term-memory/forget", response_model=maintenance.ForgetResult, responses=WITH_BODY,
    dependencies=WRITE,
)
async def forget_long_term_memories(
    body: ForgetRequest,
    service: LongTermServiceDep,
    tenant: TenantDep,
    run: RunDep,
    namespace: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    dry_run: bool = True,
) -> maintenance.ForgetResult:
    """Delete what the policy selects. `dry_run` defaults to true: say what would go, delete nothing."""
    return await run(
        maintenance.forget,
        service,
        tenant,
        body.policy,
        scope=maintenance.Scope(namespace=namespace, user_id=user_id, session_id=session_id),
        limit=limit,
        dry_run=dry_run,
        pinned_ids=body.pinned_ids,
        now=utcnow(),
    )


@router.get(
    "/v1/long-term-memory/{memory_id}", response_model=MemoryRecord, responses=error_responses(404),
    dependencies=READ,
)
async def get_long_term_memory(
    memory_id: MemoryIdPath, service: LongTermServiceDep, tenant: TenantDep, run: RunDep
) -> MemoryRecord:
    return await run(service.get, tenant, memory_id)


@router.patch(
    "/v1/long-term-memory/{memory_id}", response_model=MemoryRecord, responses=error_responses(404, 413),
    dependencies=WRITE,
)
async def edit_long_term_memory(
    memory_id: MemoryIdPath, body: EditMemoryRecordRequest, service: LongTermServiceDep, tenant: TenantDep, run: RunDep
) -> MemoryRecord:
    return await run(service.patch, tenant, memory_id, body.model_dump(exclude_none=True))
