"""Summary views and their tasks (AMS §2 rows 14–21): a view names which long-term memories to summarize
and how to group them; a partition run summarizes one group synchronously (as the contract answers);
a full run is a task on the queue that recomputes every group and reports progress in a `Task` record.

Differences from AMS, on purpose: deleting a view deletes its stored results too (AMS #229), and a
task that fails says why in `error_message` while the queue retries it (then dead-letters it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from agent_memory.domain.errors import (
    DependencyUnavailableError,
    FeatureDisabledError,
    InvalidInputError,
    NotFoundError,
)
from agent_memory.domain.models import MemoryRecord, format_datetime, utcnow
from agent_memory.domain.search import SearchRequest
from agent_memory.domain.summary_views import (
    FILTER_FIELDS,
    GROUP_FIELDS,
    SummaryView,
    SummaryViewPartitionResult,
    Task,
)
from agent_memory.domain.tasks import SummaryViewRunTask
from agent_memory.ports import ChatMessage
from agent_memory.services.task_records import TaskRecords

if TYPE_CHECKING:
    from agent_memory.ports import DocumentStore, LanguageModel, TaskQueue
    from agent_memory.services.long_term import LongTermService
    from agent_memory.services.user_data import UserTombstones

logger = logging.getLogger(__name__)

VIEWS, PARTITIONS = "summary_view", "summary_view_partition"
# The newest memories a partition summary reads, and the records a full run scans for its groups.
MAX_MEMORIES_PER_PARTITION = 500
MAX_RECORDS_PER_RUN = 10_000
_PAGE = 100

DEFAULT_PROMPT = """Summarize these long-term memories of one group ({group}) in a short paragraph: the
lasting facts, preferences and recent events that matter later. Write "User" for the user."""


@dataclass(frozen=True)
class RunResult:
    status: Literal["success", "view-gone"]
    partitions: int = 0


class SummaryViewService:
    def __init__(
        self,
        documents: DocumentStore,
        long_term: LongTermService,
        *,
        llm: LanguageModel | None,
        queue: TaskQueue | None,
        tombstones: UserTombstones | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._documents = documents
        self._long_term = long_term
        self._llm = llm
        self._queue = queue
        self._tombstones = tombstones
        self._clock = clock
        self._tasks = TaskRecords(documents, clock=clock)

    # --- views ------------------------------------------------------------------------------------
    def create(self, tenant: str, view: SummaryView) -> SummaryView:
        if view.source != "long_term":
            raise InvalidInputError(
                "SummaryView.source must be 'long_term' for now; 'working_memory' is not yet supported."
            )
        unsupported = [f for f in view.group_by if f not in GROUP_FIELDS]
        if unsupported:
            raise InvalidInputError(f"Unsupported group_by fields: {', '.join(unsupported)}")
        unsupported = [f for f in view.filters if f not in FILTER_FIELDS]
        if unsupported:
            raise InvalidInputError(f"Unsupported filter fields: {', '.join(unsupported)}")
        self._request(view, {}, limit=1)  # a filter value the search cannot read fails now, not at run time
        self._documents.put(tenant, VIEWS, view.id, view.model_dump_json())
        return view

    def list_views(self, tenant: str) -> list[SummaryView]:
        return [SummaryView.model_validate_json(body) for body in self._documents.list_documents(tenant, VIEWS)]

    def get(self, tenant: str, view_id: str) -> SummaryView:
        body = self._documents.get(tenant, VIEWS, view_id)
        if body is None:
            raise NotFoundError(f"SummaryView {view_id} not found")
        return SummaryView.model_validate_json(body)

    def delete(self, tenant: str, view_id: str) -> None:
        self.get(tenant, view_id)
        stale = [p.key for p in self._partitions(tenant) if p.view_id == view_id]
        self._documents.delete(tenant, PARTITIONS, stale)
        self._documents.delete(tenant, VIEWS, [view_id])

    # --- partitions -------------------------------------------------------------------------------
    def run_partition(self, tenant: str, view_id: str, group: dict[str, str]) -> SummaryViewPartitionResult:
        """Summarize one group now (the LLM call is synchronous, as in AMS) and store the result."""
        view = self.get(tenant, view_id)
        if sorted(group) != sorted(view.group_by):
            raise InvalidInputError(f"group keys {sorted(group)} must exactly match view.group_by {view.group_by}")
        llm = self._need_llm()
        memories = self._records(tenant, view, group, MAX_MEMORIES_PER_PARTITION)
        now = self._clock()
        if not memories:
            result = SummaryViewPartitionResult(view_id=view.id, group=group, memory_count=0, empty=True,
                                                empty_reason="no memories match this group", computed_at=now)
        else:
            result = SummaryViewPartitionResult(view_id=view.id, group=group, memory_count=len(memories),
                                                summary=self._summarize(llm, view, group, memories), computed_at=now)
        self._documents.put(tenant, PARTITIONS, result.key, result.model_dump_json())
        return result

    def list_partitions(self, tenant: str, view_id: str, **group: str | None) -> list[SummaryViewPartitionResult]:
        self.get(tenant, view_id)
        wanted = {k: v for k, v in group.items() if v is not None}
        return [
            p for p in self._partitions(tenant)
            if p.view_id == view_id and all(p.group.get(k) == v for k, v in wanted.items())
        ]

    # --- full runs and tasks ----------------------------------------------------------------------
    def start_run(self, tenant: str, view_id: str, task_id: str | None = None) -> Task:
        """A pending Task, and its run on the queue. DependencyUnavailableError when the queue is down
        (the Task then says failed, so a poller is not left waiting)."""
        self.get(tenant, view_id)
        self._need_llm()
        if self._queue is None:
            raise FeatureDisabledError("summary view runs need the task queue (background tasks are off)")
        task = Task(view_id=view_id, created_at=self._clock())
        if task_id:
            task = task.model_copy(update={"id": task_id})
        self._put_task(tenant, task)
        try:
            self._queue.enqueue(SummaryViewRunTask.for_view(tenant, view_id, task.id))
        except DependencyUnavailableError as exc:
            self._put_task(tenant, task.model_copy(update={"status": "failed", "error_message": exc.detail}))
            raise
        return task

    def get_task(self, tenant: str, task_id: str) -> Task:
        """Any task's record: a summary-view run, or a session's extraction."""
        task = self._tasks.get(tenant, task_id)
        if task is None:
            raise NotFoundError(f"Task {task_id} not found")
        return task

    def list_tasks(self, tenant: str, *, limit: int, status: str | None = None) -> tuple[list[Task], int]:
        """The tenant's task records, newest first: summary-view runs and session extractions alike."""
        if limit < 1:
            raise InvalidInputError(f"limit must be >= 1, got {limit}")
        return self._tasks.recent(tenant, limit=limit, status=status)

    def run(self, message: SummaryViewRunTask) -> RunResult:
        """The queue consumer: recompute every group of the view, reporting in the Task record. A failure
        is recorded in the Task and re-raised, so the queue retries it."""
        tenant = message.tenant
        task = self._task_or_new(tenant, message)
        try:
            view = self.get(tenant, message.view_id)
        except NotFoundError as exc:
            self._put_task(tenant, task.model_copy(
                update={"status": "failed", "error_message": exc.detail, "completed_at": self._clock()}))
            return RunResult("view-gone")
        task = task.model_copy(update={"status": "running", "started_at": self._clock(), "error_message": None})
        self._put_task(tenant, task)
        try:
            groups = self._groups(tenant, view)
            for group in groups:
                # A group of a user deleted after this run was enqueued (services/user_data.py) is skipped,
                # and its result deleted again when the deletion landed while it was computed.
                if self._user_deleted(message, group):
                    continue
                result = self.run_partition(tenant, view.id, group)
                if self._user_deleted(message, group):
                    self._documents.delete(tenant, PARTITIONS, [result.key])
        except Exception as exc:
            detail = getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}"
            self._put_task(tenant, task.model_copy(
                update={"status": "failed", "error_message": detail[:1000], "completed_at": self._clock()}))
            raise
        self._put_task(tenant, task.model_copy(update={"status": "success", "completed_at": self._clock()}))
        logger.info("summary view run done task_id=%s view_id=%s partitions=%d", task.id, view.id, len(groups))
        return RunResult("success", len(groups))

    # --- helpers ----------------------------------------------------------------------------------
    def _user_deleted(self, message: SummaryViewRunTask, group: dict[str, str]) -> bool:
        return self._tombstones is not None and self._tombstones.covers(
            message.tenant, group.get("user_id"), group.get("namespace"), message.enqueued_at)

    def _need_llm(self) -> LanguageModel:
        if self._llm is None:
            raise FeatureDisabledError("summary views need an LLM (OPENAI_API_KEY, or LLM_PROVIDER=azure|bedrock)")
        return self._llm

    def _put_task(self, tenant: str, task: Task) -> None:
        self._tasks.put(tenant, task)

    def _task_or_new(self, tenant: str, message: SummaryViewRunTask) -> Task:
        try:
            return self.get_task(tenant, message.task_id)
        except NotFoundError:  # expired, or enqueued by hand: report under the message's id
            return Task(id=message.task_id, view_id=message.view_id, created_at=self._clock())

    def _partitions(self, tenant: str) -> list[SummaryViewPartitionResult]:
        return [SummaryViewPartitionResult.model_validate_json(b) for b in self._documents.list_documents(
            tenant, PARTITIONS)]

    def _request(self, view: SummaryView, group: dict[str, str], *, limit: int, offset: int = 0) -> SearchRequest:
        filters: dict[str, Any] = {}
        for name, value in view.filters.items():
            filters[name] = {"eq": value} if isinstance(value, str) else value
        for name, value in group.items():
            filters[name] = {"eq": value}
        if view.time_window_days:
            since = self._clock() - timedelta(days=view.time_window_days)
            filters["created_at"] = {"gte": format_datetime(since)}
        try:
            return SearchRequest.model_validate({"text": "", "limit": limit, "offset": offset, **filters})
        except ValidationError as exc:
            raise InvalidInputError(f"summary view filters: {exc.errors()[0]['msg']}") from None

    def _records(self, tenant: str, view: SummaryView, group: dict[str, str], most: int) -> list[MemoryRecord]:
        """The newest `most` records of the view and group (list mode: no query text, newest first)."""
        found: list[MemoryRecord] = []
        while len(found) < most:
            page = self._long_term.search(tenant, self._request(view, group, limit=_PAGE, offset=len(found)))
            found.extend(page.memories)
            if page.next_offset is None:
                break
        return found[:most]

    def _groups(self, tenant: str, view: SummaryView) -> list[dict[str, str]]:
        """Each distinct combination of the view's group_by values among its records ({} when ungrouped)."""
        if not view.group_by:
            return [{}]
        seen: dict[tuple[str, ...], dict[str, str]] = {}
        for record in self._records(tenant, view, {}, MAX_RECORDS_PER_RUN):
            values = [getattr(record, name) for name in view.group_by]
            if all(values):
                group = {name: str(value) for name, value in zip(view.group_by, values, strict=True)}
                seen.setdefault(tuple(group.values()), group)
        return list(seen.values())

    def _summarize(
        self, llm: LanguageModel, view: SummaryView, group: dict[str, str], memories: Sequence[MemoryRecord]
    ) -> str:
        described = ", ".join(f"{k}={v}" for k, v in group.items()) or "all memories"
        lines = "\n".join(
            f"- [{format_datetime(m.event_date or m.created_at)[:10]}] {m.text}"
            for m in sorted(memories, key=lambda m: m.created_at)
        )
        instructions = view.prompt or DEFAULT_PROMPT.format(group=described)
        answer = llm.complete([ChatMessage(role="user", content=f"{instructions}\n\nMemories:\n{lines}")]).text
        if not answer.strip():
            raise DependencyUnavailableError("llm", "answered with an empty summary")
        return answer.strip()


__all__ = ["RunResult", "SummaryViewService"]
