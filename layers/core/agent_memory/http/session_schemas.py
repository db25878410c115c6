"""API models of the Memory Platform session API (`http/routers/sessions.py`).

The shapes are documented for other clients (the Visualizer at /ui reads them): fields are only ever
added, never renamed or removed. The domain mapping is in `services/sessions.py`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agent_memory.domain.models import DomainModel, MemoryRecord, TtlSeconds, UtcDatetime
from agent_memory.domain.validation import Identifier, ScopeValue
from agent_memory.services.sessions import DEFAULT_MAX_ITEMS, DEFAULT_TTL_SECONDS

TenantField = Annotated[
    Identifier | None,
    Field(description="Optional; when sent it must be the caller's tenant (403 otherwise, never obeyed)"),
]
MemoryIds = Annotated[list[Identifier], Field(min_length=1, max_length=100)]


class CreateSessionRequest(DomainModel):
    session_id: Identifier
    tenant_id: TenantField = None
    subject: ScopeValue | None = Field(
        default=None, description="Who the session is about: stored as the session's user_id"
    )
    ttl: TtlSeconds = Field(default=DEFAULT_TTL_SECONDS, description="Seconds; restarted by every write")
    max_items: int = Field(
        default=DEFAULT_MAX_ITEMS, ge=1,
        description="Items kept; older ones are dropped only once extraction has stored what they said",
    )


class AppendMessageRequest(DomainModel):
    role: str = Field(min_length=1, max_length=64, examples=["user"])
    content: str = Field(description="Not blank; at most MAX_MESSAGE_CHARS characters")
    timestamp: UtcDatetime | None = Field(default=None, description="When it was said (default: now)")
    id: Identifier | None = Field(default=None, description="The item's id (default: a new ULID)")
    tenant_id: TenantField = None


class PrimeRequest(DomainModel):
    memory_ids: MemoryIds


class SessionItem(DomainModel):
    id: str
    role: str
    content: str
    timestamp: UtcDatetime
    extracted: bool = Field(description="Whether extraction has stored what it said in long-term memory")


class SessionResponse(DomainModel):
    session_id: str
    tenant_id: str
    subject: str | None
    items: list[SessionItem]
    item_count: int
    max_items: int | None = Field(description="The session's item limit (null: a session the AMS API created)")
    token_count: int = Field(description="Tokens of all items (cl100k)")
    primed_memory_ids: list[str]
    primed_memories: list[MemoryRecord]
    ttl: int | None = Field(description="Seconds left before the session expires (null: persistent)")
    ttl_seconds: int | None = Field(description="The session's TTL, restarted by every write")
    created_at: UtcDatetime
    updated_at: UtcDatetime


class PrimeResponse(SessionResponse):
    unknown_memory_ids: list[str] = Field(description="Requested ids with no long-term record in this tenant")


__all__ = [
    "AppendMessageRequest",
    "CreateSessionRequest",
    "MemoryIds",
    "PrimeRequest",
    "PrimeResponse",
    "SessionItem",
    "SessionResponse",
]
