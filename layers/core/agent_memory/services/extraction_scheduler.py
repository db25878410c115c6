"""The producer side of background extraction (services/extraction.py has the consumer): the tasks a
working-memory write queues. Apart from the consumer so that a first PUT, which queues, imports none of
the extraction strategies, prompts and knowledge updates that only the consumer runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.models import MemoryRecord, SessionKey, WorkingMemory, format_datetime
from agent_memory.domain.summary_views import Task
from agent_memory.domain.tasks import MAX_RECORDS_PER_TASK, ExtractionTask, RecordExtractionTask

if TYPE_CHECKING:
    from agent_memory.ports import TaskQueue
    from agent_memory.services.task_records import TaskRecords

logger = logging.getLogger("agent_memory.services.extraction")

EXTRACTION_HEADER_QUEUED = "queued"


def session_generation(memory: WorkingMemory) -> str:
    """The version of a stored session that a task names: its `updated_at`, which every PUT sets."""
    return format_datetime(memory.updated_at)


def session_task_id(task: ExtractionTask) -> str:
    """The id of a session's extraction record: one per session, so a caller polls one id per write."""
    return f"extract_{task.debounce_key}"



class ExtractionScheduler:
    """The producer side: one debounced task per session write that has something to extract."""

    def __init__(self, queue: TaskQueue, *, delay_seconds: int = 5, records: TaskRecords | None = None) -> None:
        self._queue = queue
        self._delay_seconds = delay_seconds
        self._records = records

    def schedule(self, key: SessionKey, memory: WorkingMemory) -> str | None:
        """`queued; task_id=<id>` (poll `GET /v1/tasks/{id}` to wait for it), `deferred;
        reason=queue-unavailable` (the write stands; the next one enqueues it), or None when no message
        awaits extraction. Never raises for a queue or task-record outage."""
        if not any(m.discrete_memory_extracted == "f" for m in memory.messages):
            return None
        task = ExtractionTask.for_session(key, generation=session_generation(memory))
        record_id = session_task_id(task)
        try:
            if self._records is not None:
                # Before the enqueue, so a fast consumer finds the record it reports to.
                self._records.put(key.tenant, Task(id=record_id, type="extract_session", generation=task.generation,
                                                   created_at=self._records.now()))
            self._queue.enqueue(task, delay_seconds=self._delay_seconds)
        except DependencyUnavailableError as exc:
            logger.warning("extraction deferred task_id=%s reason=%s", task.task_id, exc.detail)
            return f"deferred; reason={exc.dependency}-unavailable"
        if self._records is None:
            return EXTRACTION_HEADER_QUEUED
        return f"{EXTRACTION_HEADER_QUEUED}; task_id={record_id}"

    def schedule_records(self, tenant: str, records: Sequence[MemoryRecord]) -> str | None:
        """The second pass for stored records with `discrete_memory_extracted="f"` (summaries excepted):
        `queued`, `deferred; reason=...`, or None when none needs it. Never raises for a queue outage."""
        ids = [r.id for r in records if r.discrete_memory_extracted == "f" and r.extraction_strategy != "summary"]
        status = None
        for start in range(0, len(ids), MAX_RECORDS_PER_TASK):
            task = RecordExtractionTask.for_records(tenant, ids[start : start + MAX_RECORDS_PER_TASK])
            try:
                self._queue.enqueue(task, delay_seconds=self._delay_seconds)
            except DependencyUnavailableError as exc:
                logger.warning("record extraction deferred task_id=%s reason=%s", task.task_id, exc.detail)
                return f"deferred; reason={exc.dependency}-unavailable"
            status = EXTRACTION_HEADER_QUEUED
        return status


__all__ = ["EXTRACTION_HEADER_QUEUED", "ExtractionScheduler", "session_generation", "session_task_id"]
