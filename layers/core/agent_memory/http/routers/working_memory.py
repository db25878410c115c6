"""AMS §2 rows 2–5: list, get, put and delete working memory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from agent_memory.http.deps import TenantDep, WorkingMemoryServiceDep
from agent_memory.http.schemas import (
    AckResponse,
    SessionListResponse,
    UpdateWorkingMemory,
    WorkingMemoryResponse,
)
from agent_memory.services.summarization import SummarizationStatus
from agent_memory.services.working_memory import WorkingMemoryView

router = APIRouter(tags=["working memory"])

Namespace = Annotated[str | None, Query(description="Namespace of the session")]
UserId = Annotated[str | None, Query(description="User of the session")]
ModelName = Annotated[str | None, Query(description="Model whose context window applies")]
WindowMax = Annotated[int | None, Query(ge=1, description="Context window in tokens; overrides model_name")]

SUMMARIZATION_HEADER = "X-Agent-Memory-Summarization"
PROMOTION_HEADER = "X-Agent-Memory-Promotion"


def _response(view: WorkingMemoryView) -> WorkingMemoryResponse:
    return WorkingMemoryResponse(
        **view.memory.model_dump(),
        context_percentage_total_used=view.percentage_total_used,
        context_percentage_until_summarization=view.percentage_until_summarization,
    )


@router.get("/v1/working-memory/", response_model=SessionListResponse)
@router.get("/v1/working-memory", response_model=SessionListResponse, include_in_schema=False)
def list_sessions(
    service: WorkingMemoryServiceDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    namespace: Namespace = None,
    user_id: UserId = None,
) -> SessionListResponse:
    page = service.list_sessions(tenant, namespace=namespace, user_id=user_id, limit=limit, offset=offset)
    return SessionListResponse(sessions=page.sessions, total=page.total)


@router.get("/v1/working-memory/{session_id}", response_model=WorkingMemoryResponse)
def get_working_memory(
    session_id: str,
    service: WorkingMemoryServiceDep,
    tenant: TenantDep,
    namespace: Namespace = None,
    user_id: UserId = None,
    model_name: ModelName = None,
    context_window_max: WindowMax = None,
    recent_messages_limit: Annotated[int | None, Query(description="Keep only the newest N messages")] = None,
) -> WorkingMemoryResponse:
    view = service.get(
        tenant,
        session_id,
        namespace=namespace,
        user_id=user_id,
        model_name=model_name,
        context_window_max=context_window_max,
        recent_messages_limit=recent_messages_limit,
    )
    return _response(view)


@router.put("/v1/working-memory/{session_id}", response_model=WorkingMemoryResponse)
def put_working_memory(
    session_id: str,
    body: UpdateWorkingMemory,
    response: Response,
    service: WorkingMemoryServiceDep,
    tenant: TenantDep,
    model_name: ModelName = None,
    context_window_max: WindowMax = None,
) -> WorkingMemoryResponse:
    """Replace the session. Summarizes first when the messages outgrow the window (and an LLM is set).

    The `X-Agent-Memory-Summarization` header says whether a summary was made, and if not, why;
    `X-Agent-Memory-Promotion` whether the session's new memories reached long-term memory.
    """
    view = service.put(
        tenant, body.to_domain(session_id), model_name=model_name, context_window_max=context_window_max
    )
    if view.summarization is not None and view.summarization is not SummarizationStatus.NOT_NEEDED:
        response.headers[SUMMARIZATION_HEADER] = view.summarization.value
    if view.promotion is not None:
        response.headers[PROMOTION_HEADER] = view.promotion
    return _response(view)


@router.delete("/v1/working-memory/{session_id}", response_model=AckResponse)
def delete_working_memory(
    session_id: str,
    service: WorkingMemoryServiceDep,
    tenant: TenantDep,
    namespace: Namespace = None,
    user_id: UserId = None,
) -> AckResponse:
    service.delete(tenant, session_id, namespace=namespace, user_id=user_id)
    return AckResponse(status="ok")
