"""Ports: what the services need from the outside world, named by role.

Every port but one is synchronous. Blocking calls run on a server's worker threads and inline under
Lambda (http/blocking.py), so blocking clients with short timeouts are both simpler and safer than async
clients bound to an event loop that Lambda may freeze. The exception is `SessionReader`, the one read on
the hot path (a working-memory GET), which a server does on its event loop: the hop to a worker thread
cost more CPU than the rest of the request. Adapters raise only `agent_memory.domain.errors`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from agent_memory.domain.models import DomainModel, MemoryMessage

if TYPE_CHECKING:  # named in signatures only: a working-memory request imports none of the long-term domain
    from datetime import datetime

    from agent_memory.domain.api_keys import ApiKey
    from agent_memory.domain.filters import SearchQuery
    from agent_memory.domain.keywords import KeywordQuery
    from agent_memory.domain.models import (
        MemoryRecord,
        MemoryRecordResult,
        SessionJson,
        SessionKey,
        SessionPage,
        WorkingMemory,
    )
    from agent_memory.domain.rate_limit import RateDecision, RateLimit
    from agent_memory.domain.search import Candidates
    from agent_memory.domain.tasks import AnyTask

K = TypeVar("K", bound=Hashable)


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
        message_limit: int | None = None,
        max_total: int | None = None,
    ) -> WorkingMemory:
        """Append atomically, creating the session if missing; never loses a concurrent append.

        `max_total`: MessageLimitError, with nothing written, when the session would then hold more than
        this many messages, checked in the same atomic step (so concurrent appends cannot pass it); an
        append repeated after a timeout is never refused for the messages it added itself.

        `max_messages` keeps only the newest N messages. `ttl_seconds` and `message_limit` apply only
        when the append creates the session; an existing session keeps its own ttl_seconds (restarted
        by this write) and message limit. A session with a `message_limit` (stored with it) then drops,
        in the same operation, its oldest messages beyond the limit that are already extracted
        (`discrete_memory_extracted == "t"`), stopping at the first that is not: a message is never
        dropped before extraction has stored what it said. Returns the document after the append.
        `put` keeps the stored `message_limit` and `primed_memory_ids` when the memory written has None.
        """

    def prime(self, key: SessionKey, records: Sequence[MemoryRecord]) -> WorkingMemory | None:
        """Add long-term `records` to the session's `memories` (replacing by id) and their ids to its
        `primed_memory_ids`, atomically with respect to every other write of the session; messages, TTL
        and `updated_at` unchanged (so a pending extraction is not superseded). None when it is missing.
        """

    def delete(self, key: SessionKey) -> bool: ...

    def mark_extracted(self, key: SessionKey, messages: Sequence[MemoryMessage]) -> int:
        """Set `discrete_memory_extracted="t"` on the stored messages that match `messages`, atomically.

        A stored message is marked only when it has the id, role and content of one of `messages`, so
        a message that a write changed meanwhile stays unextracted; nothing else in the document
        changes, its TTL included (a concurrent PUT is never overwritten). Returns how many messages
        were marked (0 when the session is gone).
        """

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

    def user_sessions(
        self, tenant: str, user_id: str, *, namespace: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionKey]:
        """One page of the keys of the user's live sessions (in one namespace, or all), in a stable order:
        what a user export or deletion pages through (services/user_data.py)."""

    def ping(self) -> None: ...


class SessionReader(Protocol):
    """A working-memory store's `get` as a coroutine, for a server's event loop (the Redis store has one;
    `Container.session_reader`). Bound to the loop it is first used on; `aclose` it there."""

    async def get(self, key: SessionKey, *, as_json: bool = False) -> WorkingMemory | SessionJson | None:
        """The session stored at exactly `key`, or None; DependencyUnavailableError when the store is down.
        `as_json`: as its stored JSON (`SessionJson`) where the store has it in this version's format."""

    async def aclose(self) -> None: ...


@runtime_checkable
class SessionSweeper(Protocol):
    """What the CleanupFunction needs of a working-memory store beyond the port (services/cleanup.py).

    Expiry is the store's own clock (the Redis server's, as its keys expire by it), never the caller's.
    """

    def tenants(self) -> list[str]:
        """Every tenant with a session or an index entry in the store, sorted."""

    def sweep_expired(self, tenant: str) -> int:
        """Remove the tenant's expired sessions from every index (and any of their rows left); returns how
        many sessions were swept. Idempotent: a second call finds nothing."""

    def expiring_sessions(
        self, tenant: str, within_seconds: float, *, limit: int = 1000
    ) -> list[tuple[SessionKey, int]]:
        """Live sessions of the tenant that expire within `within_seconds`, soonest first, each with its
        expiry (epoch ms); persistent sessions never."""


@runtime_checkable
class TenantDirectory(Protocol):
    """A store that can name its tenants (the long-term stores, for forgetting policies)."""

    def tenants(self) -> list[str]: ...


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
        """One page of results and the true total number of matches.

        Every store answers by running `services.ranking.search` over its `CandidateSource`, so ranking,
        scores, totals and argument checks are the same on every store."""

    def find_by_hash(self, tenant: str, memory_hash: str) -> list[MemoryRecord]: ...

    def touch(self, tenant: str, ids: Sequence[str], when: datetime) -> None:
        """Set last_accessed=when and access_count+=1."""

    def user_records(
        self, tenant: str, user_id: str, *, namespace: str | None = None, after: str | None = None, limit: int = 500
    ) -> list[MemoryRecord]:
        """Up to `limit` of the user's records (in one namespace, or all) with ids after `after`, by id: a
        keyset page, so an export or deletion of any number of records reads each page in bounded time."""


class CandidateSource(Protocol[K]):
    """What a long-term store's engine does for the shared search flow (`services/ranking.py`).

    One object answers for one search: a store may bind it to a read snapshot. Keys are the store's
    own (a row id, a document id); the flow never looks inside them. Filters (`query.filters`) and the
    tenant always apply before any top-k, and a store's keyword statistics cover its tenant only.
    """

    def check_query_vector(self, dimensions: int) -> None:
        """Raise ConfigurationError when the store's vectors do not have `dimensions`."""

    def vector_candidates(self, query: SearchQuery, size: int | None) -> Candidates[K]:
        """The `size` (None: all) filtered records nearest to `query.vector`, by cosine distance (inner
        product with the unit query), within `query.distance_threshold` when set; `total` counts every
        filtered record within it."""

    def keyword_candidates(
        self, query: SearchQuery, keywords: KeywordQuery, *, start: int, size: int | None
    ) -> Candidates[K]:
        """Filtered keyword matches by raw BM25, best first, from rank `start`, `size` of them (None:
        all). A record matches when it holds any word or phrase (own text or context) and every phrase
        in its own text; `best` is the best raw score over all matches, `total` their number."""

    def dates(self, tenant: str, keys: Sequence[K]) -> dict[K, datetime]:
        """When each record happened, for the time match: event_date, else created_at."""

    def records(self, tenant: str, keys: Sequence[K]) -> dict[K, dict[str, Any]]:
        """The stored records (MemoryRecord fields, JSON-compatible) of the keys still present."""

    def listing(self, query: SearchQuery) -> tuple[list[dict[str, Any]], int]:
        """One page of filtered records newest first (created_at, then id, descending), and the total."""


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


class DocumentStore(Protocol):
    """Small JSON documents by tenant, kind and id (summary views, their results, task records), kept
    beside working memory (Redis or SQLite). Bodies are opaque strings; `ttl_seconds` None = persistent."""

    def put(self, tenant: str, kind: str, doc_id: str, body: str, *, ttl_seconds: int | None = None) -> None: ...

    def get(self, tenant: str, kind: str, doc_id: str) -> str | None: ...

    def list_documents(self, tenant: str, kind: str) -> list[str]:
        """Every live document of the kind, ordered by id."""

    def delete(self, tenant: str, kind: str, doc_ids: Sequence[str]) -> int: ...


class TaskQueue(Protocol):
    """Where background work is sent (SQS on AWS, a SQLite table on a laptop). At-least-once."""

    def enqueue(self, task: AnyTask, *, delay_seconds: int = 0) -> None:
        """Deliver `task` no sooner than `delay_seconds` from now; DependencyUnavailableError when the
        queue cannot take it. A queue may drop a still-pending task with the same `debounce_key`."""

    def drop_user_tasks(self, tenant: str, user_id: str, *, namespace: str | None = None) -> int | None:
        """Delete the queued session tasks of one user (in one namespace, or all), dead letters included;
        how many. None when the queue cannot delete chosen messages (SQS): the user's deletion tombstone
        makes the consumer drop them instead (services/user_data.py)."""

    def ping(self) -> None: ...


class ClaimedTask(DomainModel):
    """One delivery of a message by a `TaskLeases` queue: its body, lease and delivery count."""

    message_id: str
    body: str
    lease: str
    receive_count: int


class TaskLeases(Protocol):
    """A queue a worker pulls from (the embedded queue; on AWS the Lambda SQS poller does this job).

    A claimed message is invisible to other workers (in any process) until its lease expires; a
    worker that dies leaves it to be claimed again, so every message is delivered at least once.
    """

    def claim(self, lease_seconds: float) -> ClaimedTask | None: ...

    def complete(self, claimed: ClaimedTask) -> None:
        """Remove the message; a no-op when the lease was lost to another worker."""

    def fail(self, claimed: ClaimedTask, error: str, *, retry_in_seconds: float, dead: bool = False) -> None:
        """Give the message back for a retry, or move it to the dead letters (`dead`, or too many receives)."""

    def wait_for_work(self, timeout: float) -> None:
        """Block until something may be due (or `timeout` seconds): an idle worker's pause between polls."""


class RateLimiter(Protocol):
    """Token buckets by name (Redis on AWS, shared by every instance; in-process locally).

    `blocking` says whether `acquire` does I/O (the HTTP layer then runs it off the event loop)."""

    blocking: bool

    def acquire(self, tenant: str, subject: str, limit: RateLimit) -> RateDecision:
        """Take one token from the bucket of `subject` in `tenant`; DependencyUnavailableError when the
        limiter's store fails."""


class ApiKeyStore(Protocol):
    """Hashed API keys by key id (SQLite locally, DynamoDB on AWS); never holds a key's secret.

    `blocking` says whether `get` is network I/O (the HTTP layer then runs it off the event loop)."""

    blocking: bool

    def create(self, key: ApiKey) -> None:
        """Store a new key; ConflictError if its id exists."""

    def get(self, key_id: str) -> ApiKey | None: ...

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (of one tenant), oldest first."""

    def revoke(self, key_id: str, when: datetime) -> ApiKey:
        """Mark the key revoked (kept for the record); NotFoundError if there is no such key."""

    def touch(self, key_id: str, when: datetime) -> None:
        """Record a use of the key (`last_used_at`)."""


__all__ = [
    "ApiKeyStore",
    "CandidateSource",
    "ChatMessage",
    "ClaimedTask",
    "Completion",
    "DocumentStore",
    "Embedder",
    "LanguageModel",
    "LongTermStore",
    "MemoryMessage",
    "RateLimiter",
    "SessionSweeper",
    "TaskLeases",
    "TaskQueue",
    "TenantDirectory",
    "WorkingMemoryStore",
]
