"""The working-memory routes' API models: the PUT body, the GET's query and response, the session list.

Kept apart from `http/schemas.py` (which re-exports them) so that a cold start whose first request is a
working-memory call builds none of the long-term, prompt or forgetting models, nor imports the services
those need (~15 ms; docs/architecture.md, "A Lambda layer that starts fast").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field, field_validator

from agent_memory.domain.models import (
    DomainModel,
    MemoryMessage,
    MemoryRecord,
    MemoryStrategyConfig,
    TtlSeconds,
    UtcDatetime,
    WorkingMemory,
    new_id,
    utcnow,
)
from agent_memory.domain.validation import INT64_MAX, Count, Identifier, JsonObject, ScopeValue, check_unique_ids

SessionIdPath = Annotated[Identifier, Path(description="Session id: no / ? # % \\, control characters or edge spaces")]


class AckResponse(DomainModel):
    status: str


class SessionListResponse(DomainModel):
    sessions: list[str]
    total: int


class WorkingMemoryRecordIn(MemoryRecord):
    """A memory inside a working-memory PUT: ids are optional (a ULID is assigned), text must not be blank."""

    id: Identifier = Field(default_factory=new_id)
    session_id: Identifier | None = None
    user_id: ScopeValue | None = None
    namespace: ScopeValue | None = None

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
    data: JsonObject | None = None
    context: str | None = None
    user_id: ScopeValue | None = None
    namespace: ScopeValue | None = None
    tokens: Count = 0
    long_term_memory_strategy: MemoryStrategyConfig = Field(default_factory=MemoryStrategyConfig)
    ttl_seconds: TtlSeconds | None = None
    last_accessed: UtcDatetime = Field(default_factory=utcnow)
    created_at: UtcDatetime = Field(default_factory=utcnow)

    _unique_memories = field_validator("memories")(check_unique_ids)

    def to_domain(self, session_id: str) -> WorkingMemory:
        fields = self.model_dump(exclude={"memories", "messages"})
        memories = [MemoryRecord.model_validate(m.model_dump()) for m in self.memories]
        return WorkingMemory(session_id=session_id, messages=self.messages, memories=memories, **fields)


class ContextWindowQuery(DomainModel):
    """The query of a working-memory PUT, and part of a GET's: the context window that applies. One model,
    so FastAPI validates one object per request instead of resolving each parameter (the working-memory
    routes are the hot path; the hot endpoints validate with the same models). OpenAPI still lists each."""

    model_name: str | None = Field(default=None, description="Model whose context window applies")
    context_window_max: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="Context window in tokens; overrides model_name"
    )


class GetWorkingMemoryQuery(ContextWindowQuery):
    """The query of a working-memory GET."""

    namespace: str | None = Field(default=None, description="Namespace of the session")
    user_id: str | None = Field(default=None, description="User of the session")
    recent_messages_limit: int | None = Field(
        default=None, le=INT64_MAX, description="Keep only the newest N messages"
    )


class WorkingMemoryResponse(WorkingMemory):
    context_percentage_total_used: float | None = None
    context_percentage_until_summarization: float | None = None
