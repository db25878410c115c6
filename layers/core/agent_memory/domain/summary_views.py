"""Summary views (AMS §2 rows 14–21): a standing question over long-term memory ("summarize each user's
memories"), grouped by scope fields, with stored per-group results and tasks that refresh them all."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field

from agent_memory.domain.models import DomainModel, UtcDatetime, new_id, utcnow
from agent_memory.domain.validation import JsonObject

GROUP_FIELDS = ("user_id", "namespace", "session_id", "memory_type")
FILTER_FIELDS = ("user_id", "namespace", "session_id", "memory_type", "extraction_strategy", "topics", "event_date")
# AMS keeps a task for 7 days.
TASK_TTL_SECONDS = 7 * 24 * 3600


class SummaryView(DomainModel):
    id: str = Field(default_factory=new_id)
    name: str | None = None
    source: Literal["long_term", "working_memory"] = "long_term"
    group_by: list[str] = Field(default_factory=list)
    filters: JsonObject = Field(default_factory=dict)
    time_window_days: int | None = Field(default=None, ge=1, le=36_500)
    continuous: bool = False
    prompt: str | None = Field(default=None, max_length=10_000)
    model_name: str | None = None


class SummaryViewPartitionResult(DomainModel):
    view_id: str
    group: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    memory_count: int = Field(default=0, ge=0)
    empty: bool = False
    empty_reason: str | None = None
    computed_at: UtcDatetime = Field(default_factory=utcnow)

    @property
    def key(self) -> str:
        """One stored result per view and group."""
        return partition_key(self.view_id, self.group)


class Task(DomainModel):
    """A background run as `GET /v1/tasks/{id}` reports it. `extract_session` tasks have one record per
    session (its id comes in the PUT's `X-Agent-Memory-Extraction` header), reset to pending by every
    write that enqueues; `generation` says which write the record is about (not on the wire)."""

    id: str = Field(default_factory=new_id)
    type: Literal["summary_view_full_run", "extract_session"] = "summary_view_full_run"
    status: Literal["pending", "running", "success", "failed"] = "pending"
    view_id: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    error_message: str | None = None
    generation: str | None = None


def partition_key(view_id: str, group: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(group, sort_keys=True).encode()).hexdigest()[:24]
    return f"{view_id}:{digest}"


__all__ = [
    "FILTER_FIELDS",
    "GROUP_FIELDS",
    "TASK_TTL_SECONDS",
    "SummaryView",
    "SummaryViewPartitionResult",
    "Task",
    "partition_key",
]
