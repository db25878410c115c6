"""AMS §2 rows 2–5: list, get, put and delete working memory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import TypeAdapter

from agent_memory.domain.models import SESSION_SETTINGS
from agent_memory.domain.validation import INT64_MAX
from agent_memory.http.deps import WorkingMemoryCallDep
from agent_memory.http.errors import error_responses
from agent_memory.http.json_body import StrictJsonRoute
from agent_memory.http.schemas import (
    AckResponse,
    GetWorkingMemoryQuery,
    SessionIdPath,
    SessionListResponse,
    UpdateWorkingMemory,
    WorkingMemoryResponse,
)
from agent_memory.services.summarization import SummarizationStatus
from agent_memory.services.working_memory import WorkingMemoryView

router = APIRouter(tags=["working memory"], route_class=StrictJsonRoute, responses=error_responses(503))

Namespace = Annotated[str | None, Query(description="Namespace of the session")]
UserId = Annotated[str | None, Query(description="User of the session")]
ModelName = Annotated[str | None, Query(description="Model whose context window applies")]
WindowMax = Annotated[int | None, Query(ge=1, description="Context window in tokens; overrides model_name")]

_PERCENTAGES = TypeAdapter(dict[str, float | None])
_SESSION_SETTINGS = set(SESSION_SETTINGS)

SUMMARIZATION_HEADER = "X-Agent-Memory-Summarization"
PROMOTION_HEADER = "X-Agent-Memory-Promotion"
EXTRACTION_HEADER = "X-Agent-Memory-Extraction"


def _response(view: WorkingMemoryView, headers: dict[str, str] | None = None) -> Response:
    # The hot path: the memory was validated on the way in, so serialise it once, without FastAPI
    # validating it again against the response model.
    # WorkingMemoryResponse is the memory plus the two percentages: those are spliced onto the
    # memory's own JSON (pydantic-core) rather than copying it into a second model.
    # The session API's settings (message limit, primed ids) are not part of the AMS wire format.
    body = view.memory.__pydantic_serializer__.to_json(view.memory, exclude=_SESSION_SETTINGS)
    extra = _PERCENTAGES.dump_json(
        {
            "context_percentage_total_used": view.percentage_total_used,
            "context_percentage_until_summarization": view.percentage_until_summarization,
        }
    )
    return Response(b"".join((body[:-1], b",", extra[1:])), media_type="application/json", headers=headers)


@router.get("/v1/working-memory/", response_model=SessionListResponse)
@router.get("/v1/working-memory", response_model=SessionListResponse, include_in_schema=False)
async def list_sessions(
    call: WorkingMemoryCallDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    namespace: Namespace = None,
    user_id: UserId = None,
) -> SessionListResponse:
    page = await call.run(
        call.service.list_sessions, call.tenant, namespace=namespace, user_id=user_id, limit=limit, offset=offset
    )
    return SessionListResponse(sessions=page.sessions, total=page.total)


@router.get("/v1/working-memory/{session_id}", response_model=WorkingMemoryResponse, responses=error_responses(404))
async def get_working_memory(
    session_id: SessionIdPath, call: WorkingMemoryCallDep, query: Annotated[GetWorkingMemoryQuery, Query()]
) -> Response:
    view = await call.run(call.service.get, call.tenant, session_id, **query.model_dump())
    return _response(view)


@router.put(
    "/v1/working-memory/{session_id}", response_model=WorkingMemoryResponse, responses=error_responses(400, 413)
)
async def put_working_memory(
    session_id: SessionIdPath,
    body: UpdateWorkingMemory,
    call: WorkingMemoryCallDep,
    model_name: ModelName = None,
    context_window_max: WindowMax = None,
) -> Response:
    """Replace the session. Summarizes first when the messages outgrow the window (and an LLM is set).

    The `X-Agent-Memory-Summarization` header says whether a summary was made, and if not, why;
    `X-Agent-Memory-Promotion` whether the session's new memories reached long-term memory;
    `X-Agent-Memory-Extraction` whether background extraction was queued or deferred.
    """
    view = await call.run(
        call.service.put,
        call.tenant,
        body.to_domain(session_id),
        model_name=model_name,
        context_window_max=context_window_max,
    )
    headers: dict[str, str] = {}
    if view.summarization is not None and view.summarization is not SummarizationStatus.NOT_NEEDED:
        headers[SUMMARIZATION_HEADER] = view.summarization.value
    if view.promotion is not None:
        headers[PROMOTION_HEADER] = view.promotion
    if view.extraction is not None:
        headers[EXTRACTION_HEADER] = view.extraction
    return _response(view, headers)


@router.delete("/v1/working-memory/{session_id}", response_model=AckResponse)
async def delete_working_memory(
    session_id: SessionIdPath,
    call: WorkingMemoryCallDep,
    namespace: Namespace = None,
    user_id: UserId = None,
) -> AckResponse:
    await call.run(call.service.delete, call.tenant, session_id, namespace=namespace, user_id=user_id)
    return AckResponse(status="ok")
