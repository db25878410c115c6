"""User data rights (issue 10): export or delete everything one user has in the caller's tenant.

Not AMS routes: they sit under their own tag and need the `memory:admin` scope. The export is streamed,
one stored item per chunk, so a user with 100k records never sits whole in the server's memory (under
Lambda, Mangum buffers the body and API Gateway caps it at 6 MB: export large users with the CLI).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from agent_memory.domain.models import DomainModel, MemoryRecord, UtcDatetime, WorkingMemory
from agent_memory.domain.summary_views import SummaryViewPartitionResult
from agent_memory.domain.validation import ScopeValue
from agent_memory.http.deps import ADMIN, ContainerDep, RunDep, TenantDep
from agent_memory.http.errors import error_responses
from agent_memory.http.json_body import StrictJsonRoute
from agent_memory.http.routers.summary_views import TaskResponse
from agent_memory.services.user_data import UserDataService

router = APIRouter(tags=["user data"], route_class=StrictJsonRoute, dependencies=ADMIN,
                   responses=error_responses(503))

UserIdPath = Annotated[ScopeValue, Path(min_length=1, description="The user's id, as in `user_id` of the data")]
NamespaceQuery = Annotated[
    ScopeValue | None, Query(min_length=1, description="Only this namespace (default: every namespace)")
]


async def get_user_data_service(container: ContainerDep) -> UserDataService:
    return container.user_data_service


UserDataServiceDep = Annotated[UserDataService, Depends(get_user_data_service)]


class ExportCounts(DomainModel):
    working_memory: int
    long_term_memories: int
    task_records: int
    summary_view_results: int


# A session's extraction task record, as `GET /v1/tasks/{id}` reports it.
ExportedTask = TaskResponse


class UserExport(DomainModel):
    tenant: str
    user_id: str
    namespace: str | None
    exported_at: UtcDatetime
    working_memory: list[WorkingMemory] = Field(description="Whole sessions: messages, memories, context, data")
    long_term_memories: list[MemoryRecord] = Field(description="Every field but the embedding vector")
    task_records: list[ExportedTask]
    summary_view_results: list[SummaryViewPartitionResult] = Field(
        description="Results of summary views grouped by user_id, for this user"
    )
    counts: ExportCounts


class UserDeletionResponse(DomainModel):
    tenant: str
    user_id: str
    namespace: str | None
    deleted_at: UtcDatetime = Field(description="The tombstone's time: tasks enqueued before it are dropped")
    working_memory_sessions: int
    long_term_memories: int
    pending_tasks: int | None = Field(
        description="Queued tasks deleted; null when the queue (SQS) cannot delete chosen messages, which the "
        "consumer then drops by the tombstone"
    )
    task_records: int
    summary_view_results: int


@router.get("/v1/users/{user_id}/export", response_class=StreamingResponse,
            responses={200: {"model": UserExport, "description": "Everything of the user, as JSON"}})
async def export_user(
    user_id: UserIdPath, service: UserDataServiceDep, tenant: TenantDep, run: RunDep,
    namespace: NamespaceQuery = None,
) -> StreamingResponse:
    """Everything the user has in the caller's tenant: working-memory sessions, long-term records (without
    vectors), extraction task records and summary-view results, with counts. A user with nothing answers
    an export with zero counts (not 404: "nothing" is an answer here)."""
    chunks = await run(service.export_json, tenant, user_id, namespace)
    return StreamingResponse(chunks, media_type="application/json")


@router.delete("/v1/users/{user_id}", response_model=UserDeletionResponse)
async def delete_user(
    user_id: UserIdPath, service: UserDataServiceDep, tenant: TenantDep, run: RunDep,
    namespace: NamespaceQuery = None,
) -> UserDeletionResponse:
    """Delete everything of the user in the caller's tenant, and say how much per store. Idempotent: a
    second call answers zeros. A 503 may leave part deleted: call again to finish."""
    deletion = await run(service.delete, tenant, user_id, namespace)
    return UserDeletionResponse.model_validate(deletion.to_json())
