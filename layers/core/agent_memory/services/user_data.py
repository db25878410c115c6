"""User data rights: export, or delete, everything one user has in one tenant (issue 10, item 5).

Both walk every store that can hold something of the user, page by page, so a user with 100k records is
exported or deleted in bounded memory:
- working memory: the user's sessions (`WorkingMemoryStore.user_sessions`), whole documents;
- long-term memory: the user's records (`LongTermStore.user_records`, keyset pages by id), without vectors;
- extraction history: each session's extraction task record (`extract_<digest>`, services/task_records.py),
  and the summary-view results computed for a group of the user (`group_by` with `user_id`); the
  per-message `discrete_memory_extracted` flags, the thread summary and knowledge-update histories live in
  the session and the records, so they go with them;
- pending tasks: deleted from the embedded queue; SQS cannot delete chosen messages, so a deletion
  tombstone `(tenant, user_id, namespace, deleted_at)` in the DocumentStore makes the consumer drop every
  task of the user enqueued before it, and makes an extraction already running check it before and after it
  writes (`UserTombstones.covers`, called by services/extraction.py).

A deletion writes the tombstone first, so anything that starts while it runs is already dropped; every step
is idempotent, so a deletion that failed half-way (a 503) is finished by running it again, and a second
deletion answers zeros.

    >>> _digest("alice") == _digest("alice") != _digest("bob")
    True
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from agent_memory.domain.models import DomainModel, SessionKey, UtcDatetime, format_datetime, utcnow
from agent_memory.domain.summary_views import SummaryViewPartitionResult, Task
from agent_memory.domain.tasks import ExtractionTask
from agent_memory.services.extraction_scheduler import session_task_id
from agent_memory.services.summary_views import PARTITIONS
from agent_memory.services.task_records import KIND as TASK_KIND

if TYPE_CHECKING:
    from agent_memory.ports import DocumentStore, LongTermStore, TaskQueue, WorkingMemoryStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

TOMBSTONE_KIND = "user_deletion"
# SQS keeps a message at most 14 days from its first enqueue, in the dead-letter queue too (a standard
# queue's retention counts from the original enqueue), so after 15 days no task older than the deletion
# can be delivered any more; the tombstone then only names a deleted user, and expires.
TOMBSTONE_TTL_SECONDS = 15 * 24 * 3600
SESSION_PAGE = 100
RECORD_PAGE = 500
# A deletion reads bigger pages: each page is one delete request, which on an OpenSearch domain waits for a
# refresh (up to its 1 s interval), so 100k records take 20 of them rather than 200.
DELETE_PAGE = 5000


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class UserTombstone(DomainModel):
    tenant: str
    user_id: str
    namespace: str | None = None  # None: every namespace
    deleted_at: UtcDatetime


class UserTombstones:
    """Deletion tombstones in the DocumentStore: one per (tenant, user) and one per (tenant, user, namespace)."""

    def __init__(self, documents: DocumentStore) -> None:
        self._documents = documents

    @staticmethod
    def _id(user_id: str, namespace: str | None) -> str:
        return f"u_{_digest(user_id)}" + ("" if namespace is None else f"_n_{_digest(namespace)}")

    def record(self, tombstone: UserTombstone) -> None:
        self._documents.put(tombstone.tenant, TOMBSTONE_KIND, self._id(tombstone.user_id, tombstone.namespace),
                            tombstone.model_dump_json(), ttl_seconds=TOMBSTONE_TTL_SECONDS)

    def deleted_at(self, tenant: str, user_id: str, namespace: str | None) -> datetime | None:
        """When the user's data (everywhere, or in `namespace`) was last deleted; None if never."""
        found: list[datetime] = []
        for scope in (None, namespace) if namespace is not None else (None,):
            body = self._documents.get(tenant, TOMBSTONE_KIND, self._id(user_id, scope))
            if body is not None:
                found.append(UserTombstone.model_validate_json(body).deleted_at)
        return max(found, default=None)

    def covers(self, tenant: str, user_id: str | None, namespace: str | None, enqueued_at: datetime) -> bool:
        """True when the user was deleted after `enqueued_at`: work enqueued before then must not run or
        write. A task of no user is never covered."""
        if not user_id:
            return False
        deleted = self.deleted_at(tenant, user_id, namespace)
        return deleted is not None and deleted > enqueued_at


@dataclass
class UserDeletion:
    """What one deletion removed, per store. `pending_tasks` None: the queue (SQS) cannot delete chosen
    messages; the tombstone makes the consumer drop them."""

    tenant: str
    user_id: str
    namespace: str | None
    deleted_at: datetime
    working_memory_sessions: int = 0
    long_term_memories: int = 0
    pending_tasks: int | None = 0
    task_records: int = 0
    summary_view_results: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "deleted_at": format_datetime(self.deleted_at)}


class UserDataService:
    """Export and delete one user's data in one tenant, over the stores the container selected.

    Example::

        service = container.user_data_service
        for chunk in service.export_json("t1", "alice"):
            out.write(chunk)
        service.delete("t1", "alice").long_term_memories   # how many records were deleted
    """

    def __init__(
        self,
        sessions: WorkingMemoryStore,
        documents: DocumentStore,
        *,
        long_term: LongTermStore | None = None,
        queue: TaskQueue | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._documents = documents
        self._long_term = long_term
        self._queue = queue
        self._tombstones = UserTombstones(documents)
        self._clock = clock

    # --- reading ----------------------------------------------------------------------------------
    def session_keys(self, tenant: str, user_id: str, namespace: str | None = None) -> Iterator[SessionKey]:
        """Every live session of the user, once each, page by page."""
        seen: set[SessionKey] = set()
        offset = 0
        while True:
            page = self._sessions.user_sessions(tenant, user_id, namespace=namespace, limit=SESSION_PAGE,
                                                offset=offset)
            if not page:
                return
            offset += len(page)
            for key in page:
                # A write during the walk can move a session in the Redis index (it is ordered by expiry).
                if key not in seen:
                    seen.add(key)
                    yield key

    def record_pages(
        self, tenant: str, user_id: str, namespace: str | None = None, *, size: int = RECORD_PAGE
    ) -> Iterator[list[Any]]:
        """The user's long-term records in keyset pages by id (nothing when long-term memory is off)."""
        if self._long_term is None:
            return
        after: str | None = None
        while True:
            page = self._long_term.user_records(tenant, user_id, namespace=namespace, after=after, limit=size)
            if not page:
                return
            after = page[-1].id
            yield page

    def _partitions(self, tenant: str, user_id: str, namespace: str | None) -> list[SummaryViewPartitionResult]:
        """Summary-view results computed for a group of this user (in `namespace`, when the view groups by
        namespace too; a result over all the user's namespaces holds the namespace's memories as well)."""
        results = [SummaryViewPartitionResult.model_validate_json(body)
                   for body in self._documents.list_documents(tenant, PARTITIONS)]
        return [
            r for r in results
            if r.group.get("user_id") == user_id
            and (namespace is None or r.group.get("namespace") in (None, namespace))
        ]

    @staticmethod
    def _task_record_id(key: SessionKey) -> str:
        return session_task_id(ExtractionTask.for_session(key, generation="-"))

    # --- export -----------------------------------------------------------------------------------
    def export_json(self, tenant: str, user_id: str, namespace: str | None = None) -> Iterator[str]:
        """The export as JSON text, in chunks (one per stored item), so neither side holds it whole:
        `{"tenant", "user_id", "namespace", "exported_at", "working_memory": [...], "long_term_memories":
        [...], "task_records": [...], "summary_view_results": [...], "counts": {...}}`.

        The first chunk is produced only after the first reads succeeded, so a store that is down fails the
        call (503) before anything is sent. Raises DependencyUnavailableError."""
        # Each store's first page is read now, before the first chunk: a store that is down fails the call.
        keys = _read_ahead(self.session_keys(tenant, user_id, namespace))
        pages = _read_ahead(self.record_pages(tenant, user_id, namespace))
        partitions = self._partitions(tenant, user_id, namespace)
        return self._chunks(tenant, user_id, namespace, keys, pages, partitions)

    def _chunks(
        self, tenant: str, user_id: str, namespace: str | None, keys: Iterator[SessionKey],
        pages: Iterator[list[Any]], partitions: list[SummaryViewPartitionResult],
    ) -> Iterator[str]:
        counts = {"working_memory": 0, "long_term_memories": 0, "task_records": 0, "summary_view_results": 0}
        head = {"tenant": tenant, "user_id": user_id, "namespace": namespace,
                "exported_at": format_datetime(self._clock())}
        yield json.dumps(head)[:-1] + ', "working_memory": ['
        task_ids: list[str] = []
        for key in keys:
            memory = self._sessions.get(key)
            if memory is None:  # deleted or expired during the walk
                continue
            yield ("," if counts["working_memory"] else "") + memory.model_dump_json()
            counts["working_memory"] += 1
            task_ids.append(self._task_record_id(key))
        yield '], "long_term_memories": ['
        for page in pages:
            for record in page:
                yield ("," if counts["long_term_memories"] else "") + record.model_dump_json()
                counts["long_term_memories"] += 1
        yield '], "task_records": ['
        for task_id in task_ids:
            body = self._documents.get(tenant, TASK_KIND, task_id)
            if body is not None:
                task = Task.model_validate_json(body)
                yield ("," if counts["task_records"] else "") + task.model_dump_json(exclude={"generation"})
                counts["task_records"] += 1
        yield '], "summary_view_results": ['
        yield ",".join(p.model_dump_json() for p in partitions)
        counts["summary_view_results"] = len(partitions)
        yield '], "counts": ' + json.dumps(counts) + "}"

    # --- delete -----------------------------------------------------------------------------------
    def delete(self, tenant: str, user_id: str, namespace: str | None = None) -> UserDeletion:
        """Delete everything of the user (in `namespace`, or everywhere) and say how much, per store.

        Order: the tombstone first (work that starts meanwhile is dropped), then queued tasks, sessions with
        their task records, long-term records, summary-view results. Raises DependencyUnavailableError; what
        was deleted before the failure stays deleted and a retry finishes the rest."""
        result = UserDeletion(tenant=tenant, user_id=user_id, namespace=namespace, deleted_at=self._clock())
        self._tombstones.record(UserTombstone(tenant=tenant, user_id=user_id, namespace=namespace,
                                              deleted_at=result.deleted_at))
        result.pending_tasks = self._queue.drop_user_tasks(tenant, user_id, namespace=namespace) if self._queue else 0
        kept = 0  # sessions listed but not deleted (gone meanwhile), skipped so the walk always ends
        while True:
            # The first page not yet skipped: what was deleted leaves the listing.
            page = self._sessions.user_sessions(tenant, user_id, namespace=namespace, limit=SESSION_PAGE,
                                                offset=kept)
            if not page:
                break
            for key in page:
                deleted = self._sessions.delete(key)
                result.working_memory_sessions += int(deleted)
                kept += int(not deleted)
            result.task_records += self._documents.delete(tenant, TASK_KIND, [self._task_record_id(k) for k in page])
        if self._long_term is not None:
            for records in self.record_pages(tenant, user_id, namespace, size=DELETE_PAGE):
                result.long_term_memories += self._long_term.delete(tenant, [r.id for r in records])
        stale = [p.key for p in self._partitions(tenant, user_id, namespace)]
        result.summary_view_results = self._documents.delete(tenant, PARTITIONS, stale) if stale else 0
        logger.info(
            "user data deleted tenant=%s sessions=%d records=%d tasks=%s task_records=%d summary_results=%d",
            tenant, result.working_memory_sessions, result.long_term_memories, result.pending_tasks,
            result.task_records, result.summary_view_results,
        )
        return result


def _read_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items` with its first element read now (so its store's first call happens here), then the rest."""
    return itertools.chain(list(itertools.islice(items, 1)), items)


__all__ = ["TOMBSTONE_TTL_SECONDS", "UserDataService", "UserDeletion", "UserTombstone", "UserTombstones"]
