"""AMS §2 row 13: `POST /v1/memory/prompt`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from agent_memory.http.deps import READ, RunDep, TenantDep, WorkingMemoryServiceDep
from agent_memory.http.errors import error_responses
from agent_memory.http.json_body import StrictJsonRoute
from agent_memory.http.long_term_deps import LongTermServiceDep
from agent_memory.http.schemas import MemoryPromptRequest, MemoryPromptResponse
from agent_memory.services.prompt import build_prompt

router = APIRouter(tags=["memory prompt"], route_class=StrictJsonRoute, responses=error_responses(400, 503))


@router.post(
    "/v1/memory/prompt", response_model=MemoryPromptResponse, responses=error_responses(413),
    dependencies=READ,
)
async def memory_prompt(
    body: MemoryPromptRequest,
    working_memory: WorkingMemoryServiceDep,
    long_term: LongTermServiceDep,
    tenant: TenantDep,
    run: RunDep,
    optimize_query: Annotated[bool, Query()] = False,
) -> MemoryPromptResponse:
    result = await run(
        build_prompt,
        working_memory,
        long_term,
        tenant,
        query=body.query,
        session=body.session,
        long_term_search=body.long_term_search,
        optimize_query=optimize_query,
    )
    return MemoryPromptResponse(messages=result.messages, long_term_memories=result.long_term_memories)
