"""Task records: what `GET /v1/tasks/{id}` reports (status, times, the error of a failed run), kept as
documents beside working memory for 7 days. Summary-view runs and session extractions both write them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent_memory.domain.models import utcnow
from agent_memory.domain.summary_views import TASK_TTL_SECONDS, Task

if TYPE_CHECKING:
    from agent_memory.ports import DocumentStore

KIND = "task"


class TaskRecords:
    def __init__(self, documents: DocumentStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._documents = documents
        self._clock = clock

    def get(self, tenant: str, task_id: str) -> Task | None:
        body = self._documents.get(tenant, KIND, task_id)
        return None if body is None else Task.model_validate_json(body)

    def recent(self, tenant: str, *, limit: int, status: str | None = None) -> tuple[list[Task], int]:
        """The tenant's live records (at most 7 days old), newest first (created_at, then id), at most
        `limit` of them, and how many there are in all (with `status`, of that status). Reads every live
        record of the tenant: bounded by the 7-day TTL, and meant for an operator's view, not a hot path."""
        tasks = [Task.model_validate_json(body) for body in self._documents.list_documents(tenant, KIND)]
        if status is not None:
            tasks = [task for task in tasks if task.status == status]
        tasks.sort(key=lambda task: (task.created_at, task.id), reverse=True)
        return tasks[:limit], len(tasks)

    def put(self, tenant: str, task: Task) -> Task:
        self._documents.put(tenant, KIND, task.id, task.model_dump_json(), ttl_seconds=TASK_TTL_SECONDS)
        return task

    def update(self, tenant: str, task_id: str, *, generation: str | None = None, **changes: Any) -> Task | None:
        """Change a stored record; with `generation`, only while it is still about that generation (a newer
        write reset it for its own run). Returns the record written, or None when nothing was. Read, then
        write: a write racing in between may be overwritten (the record is a report, not a lock)."""
        task = self.get(tenant, task_id)
        if task is None or (generation is not None and task.generation != generation):
            return None
        return self.put(tenant, task.model_copy(update=changes))

    def now(self) -> datetime:
        return self._clock()


__all__ = ["TaskRecords"]
