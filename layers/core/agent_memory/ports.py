"""Ports: what the services need from the outside world, named by role.

Every port is synchronous. Request handlers run in FastAPI's thread pool and in Lambda one invocation
uses one thread, so blocking clients with short timeouts are both simpler and safer than async clients
bound to an event loop that Lambda may freeze. Adapters raise only `agent_memory.domain.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from agent_memory.domain.filters import SearchQuery
from agent_memory.domain.models import (
    DomainModel,
    MemoryMessage,
    MemoryRecord,
    MemoryRecordResult,
    SessionKey,
    SessionPage,
    WorkingMemory,
)


@runtime_checkable
class WorkingMemoryStore(Protocol):
    """One document per session. Value and TTL are always written together.

    `ttl_seconds` of the stored WorkingMemory decides expiry: None = persistent, otherwise the TTL is
    restarted on every write (sliding on writes; reads never touch it).
    """

    def get(self, key: SessionKey) -> WorkingMemory | None: ...

    def put(self, key: SessionKey, memory: WorkingMemory) -> None:
        """Replace the whole document (messages included) and its TTL atomically."""

    def append_messages(
        self,
        key: SessionKey,
        messages: Sequence[MemoryMessage],
        *,
        max_messages: int | None = None,
        ttl_seconds: int | None = None,
    ) -> WorkingMemory:
        """Append atomically, creating the session if missing; never loses a concurrent append.

        `max_messages` keeps only the newest N messages. `ttl_seconds` applies only when the append
        creates the session; an existing session keeps its own ttl_seconds (restarted by this write).
        Returns the document after the append.
        """

    def delete(self, key: SessionKey) -> bool: ...

    def list_sessions(
        self,
        tenant: str,
        *,
        namespace: str | None = None,
        user_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SessionPage:
        """Session ids of live sessions, in a stable order, with the true total of matches.

        `limit` >= 1 and `offset` >= 0: WorkingMemoryService.list_sessions checks them."""

    def resolve(
        self, tenant: str, session_id: str, *, namespace: str | None = None, user_id: str | None = None
    ) -> SessionKey | None:
        """The one live session with this id (matching namespace/user when given); None if 0 or >1."""

    def ping(self) -> None: ...


@runtime_checkable
class LongTermStore(Protocol):
    """Long-term memory records with their embedding vectors, partitioned by tenant."""

    def ensure_ready(self, dimensions: int) -> None:
        """Create the index/tables if missing; raise ConfigurationError on a dimension mismatch."""

    def upsert(
        self,
        tenant: str,
        records: Sequence[MemoryRecord],
        vectors: Sequence[Sequence[float]],
        contexts: Sequence[str | None] | None = None,
    ) -> None:
        """Insert or replace by id; readable by the next get/search call (read-your-writes).

        Vectors are unit length, or shorter (the mean of two unit vectors); similarity is their inner
        product with the unit query vector, and a longer vector is scaled to unit length. `contexts`
        (one per record, or None) is text indexed for keyword search at a lower weight than the record's
        own text, and never returned.
        """

    def upsert_unique(
        self,
        tenant: str,
        records: Sequence[MemoryRecord],
        vectors: Sequence[Sequence[float]],
        contexts: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Like `upsert`, but a record is not stored when its content is already there; one id per record.

        For each record, in order, atomically with respect to every other writer (threads, processes,
        other service instances): if this tenant already holds a record with the same `memory_hash`
        and a different id (stored before, or earlier in this batch), the record is not written and
        the id of the oldest such record (by created_at, then id) is returned in its place; otherwise
        the record is upserted (replacing by id) and its own id is returned. So N concurrent calls
        with the same text under different ids store exactly one record, and every caller learns
        which one was kept. A record without a `memory_hash` is always upserted. Readable by the next
        get/search call, as `upsert`. Example: `upsert_unique("t1", [a, b], vectors)` where b has
        a's text under another id stores only a and returns `[a.id, a.id]`.
        """

    def get(self, tenant: str, ids: Sequence[str]) -> list[MemoryRecord]: ...

    def delete(self, tenant: str, ids: Sequence[str]) -> int: ...

    def search(self, query: SearchQuery) -> tuple[list[MemoryRecordResult], int]:
        """One page of results and the true total number of matches."""

    def find_by_hash(self, tenant: str, memory_hash: str) -> list[MemoryRecord]: ...

    def touch(self, tenant: str, ids: Sequence[str], when: datetime) -> None:
        """Set last_accessed=when and access_count+=1."""


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class ChatMessage(DomainModel):
    role: str
    content: str


class Completion(DomainModel):
    text: str
    total_tokens: int = 0


class LanguageModel(Protocol):
    model: str

    def complete(
        self, messages: Sequence[ChatMessage], *, json_mode: bool = False, max_tokens: int | None = None
    ) -> Completion: ...


__all__ = [
    "ChatMessage",
    "Completion",
    "Embedder",
    "LanguageModel",
    "LongTermStore",
    "MemoryMessage",
    "WorkingMemoryStore",
]
