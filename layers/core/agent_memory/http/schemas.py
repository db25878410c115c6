"""API models: request bodies and responses exactly as the AMS REST API v1 puts them on the wire.

They are mapped to and from the domain models explicitly in the routers; storage never sees them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from agent_memory.domain.models import (
    DomainModel,
    MemoryMessage,
    MemoryRecord,
    MemoryStrategyConfig,
    UtcDatetime,
    WorkingMemory,
    utcnow,
)


class HealthCheckResponse(DomainModel):
    now: int = Field(description="Server time, epoch milliseconds")
    version: str
    features: dict[str, bool]


class AckResponse(DomainModel):
    status: str


class SessionListResponse(DomainModel):
    sessions: list[str]
    total: int


class WorkingMemoryRecordIn(MemoryRecord):
    """A memory inside a working-memory PUT: ids are optional (a ULID is assigned), text must not be blank."""

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("memory text must not be empty")
        return value


class UpdateWorkingMemory(DomainModel):
    """PUT body. `session_id` in the body is ignored: the path decides."""

    messages: list[MemoryMessage] = Field(default_factory=list)
    memories: list[WorkingMemoryRecordIn] = Field(default_factory=list)
    data: dict[str, Any] | None = None
    context: str | None = None
    user_id: str | None = None
    namespace: str | None = None
    tokens: int = Field(default=0, ge=0)
    long_term_memory_strategy: MemoryStrategyConfig = Field(default_factory=MemoryStrategyConfig)
    ttl_seconds: int | None = Field(default=None, ge=1, description="null = persistent; else seconds")
    last_accessed: UtcDatetime = Field(default_factory=utcnow)
    created_at: UtcDatetime = Field(default_factory=utcnow)

    def to_domain(self, session_id: str) -> WorkingMemory:
        fields = self.model_dump(exclude={"memories", "messages"})
        memories = [MemoryRecord.model_validate(m.model_dump()) for m in self.memories]
        return WorkingMemory(session_id=session_id, messages=self.messages, memories=memories, **fields)


class WorkingMemoryResponse(WorkingMemory):
    context_percentage_total_used: float | None = None
    context_percentage_until_summarization: float | None = None
