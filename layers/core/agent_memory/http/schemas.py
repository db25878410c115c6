"""API models: request bodies and responses exactly as the AMS REST API v1 puts them on the wire.

They are mapped to and from the domain models explicitly in the routers; storage never sees them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import Field, field_validator

from agent_memory.domain.models import (
    DomainModel,
    MemoryMessage,
    MemoryRecord,
    MemoryRecordResult,
    MemoryStrategyConfig,
    MemoryTypeEnum,
    TtlSeconds,
    UtcDatetime,
    WorkingMemory,
    new_id,
    utcnow,
)
from agent_memory.domain.search import SearchRequest
from agent_memory.domain.validation import INT64_MAX, Count, Identifier, JsonObject, ScopeValue, check_unique_ids

# Re-exported: the health check's and the error table's models live apart (http/health_schemas.py).
from agent_memory.http.health_schemas import BackendCheck as BackendCheck
from agent_memory.http.health_schemas import ErrorResponse as ErrorResponse
from agent_memory.http.health_schemas import HealthCheckResponse as HealthCheckResponse
from agent_memory.services.maintenance import ForgetPolicy
from agent_memory.services.prompt import PromptSession

SessionIdPath = Annotated[Identifier, Path(description="Session id: no / ? # % \\, control characters or edge spaces")]
MemoryIdPath = Annotated[Identifier, Path(description="Memory id: no / ? # % \\, control characters or edge spaces")]


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


class GetWorkingMemoryQuery(DomainModel):
    """The query of a working-memory GET, as one model: FastAPI then validates one object per request
    instead of resolving five parameters one by one (the GET is the hot path). OpenAPI still lists each."""

    namespace: str | None = Field(default=None, description="Namespace of the session")
    user_id: str | None = Field(default=None, description="User of the session")
    model_name: str | None = Field(default=None, description="Model whose context window applies")
    context_window_max: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="Context window in tokens; overrides model_name"
    )
    recent_messages_limit: int | None = Field(
        default=None, le=INT64_MAX, description="Keep only the newest N messages"
    )


class WorkingMemoryResponse(WorkingMemory):
    context_percentage_total_used: float | None = None
    context_percentage_until_summarization: float | None = None


class ExtractedMemoryRecord(MemoryRecord):
    """A record in a create request; text must not be blank.

    Deliberate differences from AMS: a record without an `id` gets a server-assigned ULID (AMS answers
    422), as a curl user expects; the answer's `stored_ids` says which. Server-side defaults differ from
    the client's: `memory_type` semantic, `discrete_memory_extracted` t.
    """

    id: Identifier = Field(default_factory=new_id, description="Omit it and the server assigns a ULID")
    session_id: Identifier | None = None
    user_id: ScopeValue | None = None
    namespace: ScopeValue | None = None
    memory_type: MemoryTypeEnum = MemoryTypeEnum.SEMANTIC
    discrete_memory_extracted: Literal["t", "f"] = "t"

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class CreateMemoryRecordRequest(DomainModel):
    memories: list[ExtractedMemoryRecord]
    deduplicate: bool = True

    _unique_memories = field_validator("memories")(check_unique_ids)


class CreateMemoryRecordResponse(AckResponse):
    """AMS answers only `status`; the extra fields say what deduplication did (the client ignores them)."""

    stored_ids: list[str] = Field(default_factory=list)
    duplicate_ids: list[str] = Field(default_factory=list)
    merged_ids: list[str] = Field(default_factory=list)
    duplicate_of: dict[str, str] = Field(
        default_factory=dict, description="Each duplicate id and the id of the stored record kept instead"
    )


class EditMemoryRecordRequest(DomainModel):
    text: str | None = None
    topics: list[str] | None = None
    entities: list[str] | None = None
    memory_type: MemoryTypeEnum | None = None
    namespace: ScopeValue | None = None
    user_id: ScopeValue | None = None
    session_id: Identifier | None = None
    event_date: UtcDatetime | None = None
    pinned: bool | None = None


class MemoryRecordResultsResponse(DomainModel):
    memories: list[MemoryRecordResult]
    total: int
    next_offset: int | None = None


class ForgetRequest(DomainModel):
    policy: ForgetPolicy
    pinned_ids: list[str] | None = None


class MemoryPromptRequest(DomainModel):
    query: str
    session: PromptSession | None = None
    long_term_search: SearchRequest | bool | None = None


class MemoryPromptResponse(DomainModel):
    messages: list[dict[str, Any]]
    long_term_memories: list[MemoryRecordResult] | None = None
