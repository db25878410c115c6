"""Domain models shared by services, adapters and the HTTP layer.

Wire compatibility with the Agent Memory Server (AMS) REST API v1 drives their shape: unknown fields
are ignored, numbers are lax (the client sends some ints as strings), datetimes parse from ISO strings
(with or without `Z`), naive datetimes (taken as UTC) and epoch numbers, and serialize as ISO-8601 with
a `Z` suffix.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)
from ulid import ULID

from agent_memory.domain.validation import Count, JsonObject, check_datetime_range

# The longest TTL a session may have: a signed 32-bit count of seconds (about 68 years). Every store can
# hold it (Redis expiry in ms stays an exact integer inside Lua's doubles; SQLite's int64 has room), and
# it is checked before any write, so a store never fails half-way on a TTL.
MAX_TTL_SECONDS = 2**31 - 1
TtlSeconds = Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS, description="Seconds; null = persistent")]


def check_ttl(ttl_seconds: int | None) -> int | None:
    """The TTL when a store can hold it (None = persistent); `ValueError` naming the range otherwise."""
    if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS} or null, got {ttl_seconds}")
    return ttl_seconds


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A new ULID string: sortable by creation time, the id format the AMS client generates."""
    return str(ULID())


def _to_utc(value: Any) -> Any:
    """Epoch numbers and ISO strings (with or without `Z`) to datetimes; the rest is left to pydantic."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("epoch seconds outside 0001-01-01 .. 9999-12-31") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return value  # let pydantic report the error with the field name
    return value


def format_datetime(value: datetime) -> str:
    """ISO-8601 in UTC with a `Z` suffix, e.g. `2025-01-01T00:00:00Z`."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


# Naive datetimes are taken as UTC; every value is converted to UTC and must lie in the range every
# store can hold (domain/validation.py).
UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_to_utc),
    AfterValidator(check_datetime_range),
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
]


class DomainModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class MemoryTypeEnum(StrEnum):
    EPISODIC = "episodic"
    SEMANTIC = "semantic"
    MESSAGE = "message"


class SearchMode(StrEnum):
    SEMANTIC = "semantic"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


ExtractedFlag = Literal["t", "f"]


class MemoryStrategyConfig(DomainModel):
    strategy: Literal["discrete", "summary", "preferences", "custom"] = "discrete"
    config: JsonObject = Field(default_factory=dict)

# UtcDatetime without its Python serializer, for the fields of the hot path that only ever hold validated
# values or `utcnow()` (never set by `model_copy` or `model_construct`): validation leaves every value in
# UTC, and pydantic-core writes a UTC datetime exactly as `format_datetime` does (`...Z`; a unit test
# checks it over generated datetimes) at a tenth of the CPU. A session's messages are written twice per
# PUT (to the store, in the answer): 40 calls for 20 messages.
NativeUtcDatetime = Annotated[datetime, BeforeValidator(_to_utc), AfterValidator(check_datetime_range)]


class MemoryMessage(DomainModel):
    role: str
    content: str
    id: str = Field(default_factory=new_id)
    created_at: NativeUtcDatetime = Field(default_factory=utcnow)
    persisted_at: NativeUtcDatetime | None = None
    discrete_memory_extracted: ExtractedFlag = "f"

    @field_validator("id", mode="before")
    @classmethod
    def _blank_id_gets_one(cls, value: Any) -> Any:
        return new_id() if value is None or value == "" else value


def _no_commas(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    for value in values:
        if "," in value:
            raise ValueError(f"tag values must not contain commas: {value!r}")
    return values


class MemoryRecord(DomainModel):
    """A long-term memory record (AMS `MemoryRecord`)."""

    id: str = Field(default_factory=new_id)
    text: str
    session_id: str | None = None
    user_id: str | None = None
    namespace: str | None = None
    last_accessed: UtcDatetime = Field(default_factory=utcnow)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    pinned: bool = False
    access_count: Count = 0
    topics: list[str] | None = None
    entities: list[str] | None = None
    memory_hash: str | None = None
    discrete_memory_extracted: ExtractedFlag = "f"
    memory_type: MemoryTypeEnum = MemoryTypeEnum.MESSAGE
    persisted_at: UtcDatetime | None = None
    extracted_from: list[str] | None = None
    event_date: UtcDatetime | None = None
    extraction_strategy: str = "discrete"
    extraction_strategy_config: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)

    _check_topics = field_validator("topics", "entities", "extracted_from")(_no_commas)

    @field_validator("id", mode="before")
    @classmethod
    def _blank_id_gets_one(cls, value: Any) -> Any:
        return new_id() if value is None else value

    def content_hash(self) -> str:
        """SHA-256 over the fields that make two records the same memory (AMS-compatible recipe)."""
        payload = {
            "text": self.text,
            "user_id": self.user_id or "",
            "session_id": self.session_id or "",
            "namespace": self.namespace or "",
            "memory_type": str(self.memory_type),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class MemoryRecordResult(MemoryRecord):
    dist: float
    score: float | None = None
    score_type: SearchMode | None = None


class WorkingMemory(DomainModel):
    """One conversation session's working memory (AMS `WorkingMemory`)."""

    session_id: str
    messages: list[MemoryMessage] = Field(default_factory=list)
    memories: list[MemoryRecord] = Field(default_factory=list)
    data: JsonObject | None = Field(default_factory=dict)
    context: str | None = None
    user_id: str | None = None
    namespace: str | None = None
    tokens: Count = 0
    long_term_memory_strategy: MemoryStrategyConfig = Field(default_factory=MemoryStrategyConfig)
    ttl_seconds: TtlSeconds | None = None
    last_accessed: UtcDatetime = Field(default_factory=utcnow)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    # Settings of a session created through the Memory Platform session API, stored with the session and kept
    # by a write that does not carry them (an AMS PUT never does; None = keep what is stored). The AMS routes
    # do not show them (`SESSION_SETTINGS`).
    message_limit: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="At most this many messages are kept; only messages already extracted are ever dropped",
    )
    primed_memory_ids: list[str] | None = Field(
        default=None, description="Long-term records loaded into `memories` by the session API's prime"
    )


# The WorkingMemory fields that belong to the session API, not to the AMS wire format.
SESSION_SETTINGS = frozenset({"message_limit", "primed_memory_ids"})


class SessionJson(str):
    """A WorkingMemory's JSON object as its store holds it, written by pydantic (`model_dump_json`) without
    SESSION_SETTINGS: what a GET that shows the session unchanged answers as it is, with no decoding and
    re-encoding (`SessionReader.get(as_json=True)`). Keys may come in another order than the model's."""


class SessionKey(DomainModel):
    """Where a working-memory session lives: tenant → namespace → user → session.

    `(s1)`, `(ns, s1)`, `(ns, u, s1)` and `(u, s1)` are different sessions, as in AMS; the tenant comes
    from the authenticated principal, never from the request body.
    """

    model_config = ConfigDict(frozen=True)

    tenant: str
    session_id: str
    namespace: str | None = None
    user_id: str | None = None

    @field_validator("namespace", "user_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class SessionPage(DomainModel):
    sessions: list[str]
    total: int
