"""API models: request bodies and responses exactly as the AMS REST API v1 puts them on the wire.

They are mapped to and from the domain models explicitly in the routers; storage never sees them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import Field, field_validator

from agent_memory.domain.models import (
    DomainModel,
    MemoryRecord,
    MemoryRecordResult,
    MemoryTypeEnum,
    UtcDatetime,
    new_id,
)
from agent_memory.domain.search import SearchRequest
from agent_memory.domain.validation import Identifier, ScopeValue, check_unique_ids

# Re-exported: the health check's and the error table's models live apart (http/health_schemas.py).
from agent_memory.http.health_schemas import BackendCheck as BackendCheck
from agent_memory.http.health_schemas import ErrorResponse as ErrorResponse
from agent_memory.http.health_schemas import HealthCheckResponse as HealthCheckResponse

# Re-exported: the working-memory routes' models live apart too (http/working_memory_schemas.py).
from agent_memory.http.working_memory_schemas import AckResponse as AckResponse
from agent_memory.http.working_memory_schemas import ContextWindowQuery as ContextWindowQuery
from agent_memory.http.working_memory_schemas import GetWorkingMemoryQuery as GetWorkingMemoryQuery
from agent_memory.http.working_memory_schemas import SessionIdPath as SessionIdPath
from agent_memory.http.working_memory_schemas import SessionListResponse as SessionListResponse
from agent_memory.http.working_memory_schemas import UpdateWorkingMemory as UpdateWorkingMemory
from agent_memory.http.working_memory_schemas import WorkingMemoryRecordIn as WorkingMemoryRecordIn
from agent_memory.http.working_memory_schemas import WorkingMemoryResponse as WorkingMemoryResponse
from agent_memory.services.maintenance import ForgetPolicy
from agent_memory.services.prompt import PromptSession

MemoryIdPath = Annotated[Identifier, Path(description="Memory id: no / ? # % \\, control characters or edge spaces")]


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
