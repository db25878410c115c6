"""AMS §2 rows 14–21: summary views, their partitions and full runs, and the tasks that report on runs.

The wire models live here: they are this router's alone (the client sends and reads exactly these).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from agent_memory.domain.models import DomainModel, UtcDatetime
from agent_memory.domain.summary_views import SummaryView, SummaryViewPartitionResult, Task
from agent_memory.domain.validation import Identifier, JsonObject, ScopeValue
from agent_memory.http.deps import READ, WRITE, ContainerDep, RunDep, TenantDep
from agent_memory.http.errors import error_responses
from agent_memory.http.json_body import StrictJsonRoute
from agent_memory.http.schemas import AckResponse
from agent_memory.services.summary_views import SummaryViewService

router = APIRouter(tags=["summary views"], route_class=StrictJsonRoute, responses=error_responses(400, 503))
NOT_FOUND = error_responses(404)
ViewIdPath = Annotated[Identifier, Path(description="Summary view id")]
TaskIdPath = Annotated[Identifier, Path(description="Task id")]


async def get_summary_view_service(container: ContainerDep) -> SummaryViewService:
    return container.summary_view_service


SummaryViewServiceDep = Annotated[SummaryViewService, Depends(get_summary_view_service)]


class CreateSummaryViewRequest(DomainModel):
    """The client sends `filters` and `continuous` as null when unset: both mean the default."""

    name: str | None = Field(default=None, max_length=256)
    source: Literal["long_term", "working_memory"] = "long_term"
    group_by: list[str] = Field(default_factory=list, max_length=4)
    filters: JsonObject | None = None
    time_window_days: int | None = Field(default=None, ge=1, le=36_500)
    continuous: bool | None = None
    prompt: str | None = Field(default=None, max_length=10_000)
    model_name: str | None = Field(default=None, max_length=256)

    def to_domain(self) -> SummaryView:
        return SummaryView.model_validate(
            {**self.model_dump(), "filters": self.filters or {}, "continuous": bool(self.continuous)}
        )


class SummaryViewResponse(DomainModel):
    id: str
    name: str | None
    source: str
    group_by: list[str]
    filters: JsonObject
    time_window_days: int | None
    continuous: bool
    prompt: str | None
    model_name: str | None


class PartitionRunRequest(DomainModel):
    group: dict[str, ScopeValue] = Field(default_factory=dict)


class PartitionResponse(DomainModel):
    view_id: str
    group: dict[str, str]
    summary: str
    memory_count: int
    empty: bool
    empty_reason: str | None
    computed_at: UtcDatetime


class RunRequest(DomainModel):
    task_id: Identifier | None = None
    force: bool = False  # sent by the client's run_summary_view(force=True); every run recomputes anyway


class TaskResponse(DomainModel):
    id: str
    type: str
    status: str
    view_id: str | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    completed_at: UtcDatetime | None
    error_message: str | None


class TaskListResponse(DomainModel):
    tasks: list[TaskResponse]
    total: int = Field(description="How many live task records match, of which `tasks` are the newest")


TaskStatus = Literal["pending", "running", "success", "failed"]


def _view(view: SummaryView) -> SummaryViewResponse:
    return SummaryViewResponse.model_validate(view.model_dump())


def _partition(result: SummaryViewPartitionResult) -> PartitionResponse:
    return PartitionResponse.model_validate(result.model_dump())


def _task(task: Task) -> TaskResponse:
    return TaskResponse.model_validate(task.model_dump())


@router.post("/v1/summary-views", response_model=SummaryViewResponse, dependencies=WRITE)
async def create_summary_view(
    body: CreateSummaryViewRequest, service: SummaryViewServiceDep, tenant: TenantDep, run: RunDep
) -> SummaryViewResponse:
    """The server assigns the id (a ULID). `source` must be `long_term`; `group_by` and `filters` name
    scope fields only (400 otherwise)."""
    return _view(await run(service.create, tenant, body.to_domain()))


@router.get("/v1/summary-views", response_model=list[SummaryViewResponse], dependencies=READ)
async def list_summary_views(
    service: SummaryViewServiceDep, tenant: TenantDep, run: RunDep
) -> list[SummaryViewResponse]:
    return [_view(v) for v in await run(service.list_views, tenant)]


@router.get("/v1/summary-views/{view_id}", response_model=SummaryViewResponse, responses=NOT_FOUND, dependencies=READ)
async def get_summary_view(
    view_id: ViewIdPath, service: SummaryViewServiceDep, tenant: TenantDep, run: RunDep
) -> SummaryViewResponse:
    return _view(await run(service.get, tenant, view_id))


@router.delete("/v1/summary-views/{view_id}", response_model=AckResponse, responses=NOT_FOUND, dependencies=WRITE)
async def delete_summary_view(
    view_id: ViewIdPath, service: SummaryViewServiceDep, tenant: TenantDep, run: RunDep
) -> AckResponse:
    """Deletes the view's stored partition results too (AMS leaves them behind, #229)."""
    await run(service.delete, tenant, view_id)
    return AckResponse(status="ok")


@router.post(
    "/v1/summary-views/{view_id}/partitions/run", response_model=PartitionResponse, responses=NOT_FOUND,
    dependencies=WRITE,
)
async def run_summary_view_partition(
    view_id: ViewIdPath, body: PartitionRunRequest, service: SummaryViewServiceDep, tenant: TenantDep, run: RunDep
) -> PartitionResponse:
    """Summarize one group now (a synchronous LLM call); its keys must be exactly the view's group_by."""
    return _partition(await run(service.run_partition, tenant, view_id, dict(body.group)))


@router.get(
    "/v1/summary-views/{view_id}/partitions", response_model=list[PartitionResponse], responses=NOT_FOUND,
    dependencies=READ,
)
async def list_summary_view_partitions(
    view_id: ViewIdPath,
    service: SummaryViewServiceDep,
    tenant: TenantDep,
    run: RunDep,
    user_id: Annotated[ScopeValue | None, Query()] = None,
    namespace: Annotated[ScopeValue | None, Query()] = None,
    session_id: Annotated[ScopeValue | None, Query()] = None,
    memory_type: Annotated[ScopeValue | None, Query()] = None,
) -> list[PartitionResponse]:
    results = await run(service.list_partitions, tenant, view_id, user_id=user_id, namespace=namespace,
                        session_id=session_id, memory_type=memory_type)
    return [_partition(r) for r in results]


@router.post("/v1/summary-views/{view_id}/run", response_model=TaskResponse, responses=NOT_FOUND, dependencies=WRITE)
async def run_summary_view(
    view_id: ViewIdPath, body: RunRequest, service: SummaryViewServiceDep, tenant: TenantDep, run: RunDep
) -> TaskResponse:
    """Recompute every partition in the background; poll `GET /v1/tasks/{id}` for its progress."""
    return _task(await run(service.start_run, tenant, view_id, body.task_id))


@router.get("/v1/tasks", response_model=TaskListResponse, dependencies=READ)
async def list_tasks(
    service: SummaryViewServiceDep,
    tenant: TenantDep,
    run: RunDep,
    limit: Annotated[int, Query(ge=1, le=100, description="At most this many, newest first")] = 20,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status")] = None,
) -> TaskListResponse:
    """The caller's task records of the last 7 days, newest first: summary-view runs and session
    extractions (`extract_session`, one per session). Not in AMS; the Visualizer (`/ui`) lists them."""
    tasks, total = await run(service.list_tasks, tenant, limit=limit, status=status)
    return TaskListResponse(tasks=[_task(task) for task in tasks], total=total)


@router.get("/v1/tasks/{task_id}", response_model=TaskResponse, responses=NOT_FOUND, dependencies=READ)
async def get_task(
    task_id: TaskIdPath, service: SummaryViewServiceDep, tenant: TenantDep, run: RunDep
) -> TaskResponse:
    """A task's status (pending, running, success, failed), its times and, when it failed, why."""
    return _task(await run(service.get_task, tenant, task_id))
