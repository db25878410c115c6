"""The scheduled cleanup (services/cleanup.py) on real stores: working memory and documents on a real
redis-server, on the local 3-node Redis Cluster and on SQLite; long-term memory in the embedded SQLite
store; final extractions through the embedded task queue. The service's clock is fixed (forgetting is
judged against it); an expired session is made the way Redis leaves one (its keys gone, its index
entries scored in the past), so no test waits for a TTL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from agent_memory.adapters._redis import redis_client
from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.redis_documents import RedisDocumentStore
from agent_memory.adapters.redis_working_memory import RedisWorkingMemoryStore
from agent_memory.adapters.sqlite_documents import SqliteDocumentStore
from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore
from agent_memory.adapters.sqlite_task_queue import SqliteTaskQueue
from agent_memory.adapters.sqlite_working_memory import SqliteWorkingMemoryStore
from agent_memory.domain import keys
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.models import MemoryMessage, MemoryRecord, SessionKey, WorkingMemory, format_datetime
from agent_memory.domain.tasks import AnyTask, ExtractionTask, decode_task
from agent_memory.services.cleanup import CURSOR_TENANT, CleanupService
from agent_memory.services.extraction_scheduler import ExtractionScheduler
from agent_memory.services.long_term import LongTermService
from agent_memory.services.maintenance import ForgetPolicy
from agent_memory.services.task_records import TaskRecords
from tests.fixtures.redis_process import free_port

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
INTERVAL = 900  # seconds: sessions expiring within 2 x 15 min get their final extraction


@dataclass
class Stores:
    kind: str
    working: Any  # RedisWorkingMemoryStore | SqliteWorkingMemoryStore
    documents: Any
    raw: Any  # the Redis client, or the SQLite file's path

    def expire(self, key: SessionKey) -> None:
        """Make `key` expired as the store itself would: Redis drops the keys (same millisecond as the
        index entries' scores, which stay until swept or read); SQLite keeps an invisible row."""
        member = keys.session_member(key)
        if self.kind == "sqlite":
            with sqlite3.connect(self.raw) as db:
                db.execute("UPDATE working_memory SET expires_at = 1 WHERE member = ?", (member,))
            return
        for name in (keys.session_meta_key, keys.session_messages_key, keys.session_operations_key):
            self.raw.delete(name("am", key))
        for index in keys.index_keys("am", key):
            self.raw.zadd(index, {member: 1}, xx=True)  # 1970: long past

    def index_entries(self, tenant: str) -> int:
        """Entries in every index of the tenant (Redis), or rows of the tenant (SQLite), live or not."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.raw) as db:
                return int(db.execute("SELECT COUNT(*) FROM working_memory WHERE tenant = ?", (tenant,)).fetchone()[0])
        pattern = keys.tenant_index_pattern("am", tenant)
        return sum(self.raw.zcard(k) for k in self.raw.scan_iter(pattern))


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("redis-cluster", marks=pytest.mark.redis), "sqlite"])  # fmt: skip
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "sqlite":
        path = tmp_path / "wm.sqlite3"
        yield Stores("sqlite", SqliteWorkingMemoryStore(path), SqliteDocumentStore(tmp_path / "docs.sqlite3"), path)
        return
    cluster = request.param == "redis-cluster"
    client = redis_client(request.getfixturevalue("redis_cluster_url" if cluster else "redis_url"), cluster=cluster)
    yield Stores(request.param, RedisWorkingMemoryStore(client), RedisDocumentStore(client), client)
    client.close()


class RecordingQueue:
    """The embedded queue, with every enqueue counted (the queue itself merges pending duplicates, which
    would hide a second enqueue)."""

    def __init__(self, path: Path) -> None:
        self.queue = SqliteTaskQueue(path)
        self.sent: list[AnyTask] = []

    def enqueue(self, task: AnyTask, *, delay_seconds: int = 0) -> None:
        self.sent.append(task)
        self.queue.enqueue(task, delay_seconds=delay_seconds)

    def drop_user_tasks(self, tenant: str, user_id: str, *, namespace: str | None = None) -> int | None:
        return self.queue.drop_user_tasks(tenant, user_id, namespace=namespace)

    def ping(self) -> None:
        self.queue.ping()


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[RecordingQueue]:
    q = RecordingQueue(tmp_path / "tasks.sqlite3")
    yield q
    q.queue.close()


def cleanup(stores: Stores, queue: RecordingQueue | None = None, **kw: Any) -> CleanupService:
    scheduler = None
    if queue is not None:
        scheduler = ExtractionScheduler(queue, delay_seconds=0, records=TaskRecords(stores.documents))
    return CleanupService(stores.working, stores.documents, interval_seconds=INTERVAL, scheduler=scheduler,
                          clock=lambda: NOW, **kw)  # fmt: skip


def session(tenant: str, sid: str, *, ns: str | None = "ns", user: str | None = "u1") -> SessionKey:
    return SessionKey(tenant=tenant, session_id=sid, namespace=ns, user_id=user)


def write(stores: Stores, key: SessionKey, *, ttl: int | None = 3600, extracted: str = "f") -> None:
    messages = [MemoryMessage(role="user", content=f"I live in {key.session_id}", discrete_memory_extracted=extracted)]
    stores.working.put(key, WorkingMemory(session_id=key.session_id, messages=messages, ttl_seconds=ttl))


# --- sweep ----------------------------------------------------------------------------------------


def test_expired_sessions_leave_every_index_of_every_tenant_without_a_read(stores: Stores) -> None:
    # Given two tenants, each with an expired session (in every index) and a live one
    # (expired after every write: SQLite purges expired rows on each write)
    for tenant in ("acme", "globex"):
        write(stores, session(tenant, "gone"))
        write(stores, session(tenant, "live"))
    for tenant in ("acme", "globex"):
        stores.expire(session(tenant, "gone"))
    before = {t: stores.index_entries(t) for t in ("acme", "globex")}

    # When the cleanup runs (no read of any list has pruned anything)
    report = cleanup(stores).run()

    # Then each tenant's expired session is gone from its indexes, the live one stays everywhere
    assert report.sessions_swept == 2 and report.finished and report.tenants == 2
    for tenant in ("acme", "globex"):
        assert stores.index_entries(tenant) < before[tenant]
        page = stores.working.list_sessions(tenant)
        assert (page.sessions, page.total) == (["live"], 1)
        assert stores.working.list_sessions(tenant, namespace="ns", user_id="u1").total == 1
    if stores.kind != "sqlite":  # exactly the live session's five index entries are left
        assert stores.index_entries("acme") == len(keys.index_keys("am", session("acme", "live")))


def test_a_second_run_finds_nothing_more_to_sweep(stores: Stores) -> None:
    write(stores, session("acme", "gone"))
    stores.expire(session("acme", "gone"))
    service = cleanup(stores)

    first, second = service.run(), service.run()

    assert (first.sessions_swept, second.sessions_swept) == (1, 0)


def test_tenants_are_found_on_every_node(stores: Stores) -> None:
    # Twelve tenants hash to slots on all three nodes of the cluster
    tenants = [f"tenant-{i:02d}" for i in range(12)]
    for tenant in tenants:
        write(stores, session(tenant, "s1", ns=None, user=None))

    assert stores.working.tenants() == tenants


# --- final extraction -----------------------------------------------------------------------------


def test_a_session_about_to_expire_gets_its_final_extraction_queued_exactly_once(
    stores: Stores, queue: RecordingQueue
) -> None:
    # Given a session expiring within the lookahead with unextracted messages, one expiring later, one
    # already extracted and one persistent
    write(stores, session("acme", "soon"), ttl=600)
    write(stores, session("acme", "later"), ttl=7200)
    write(stores, session("acme", "done"), ttl=600, extracted="t")
    write(stores, session("acme", "forever"), ttl=None)
    service = cleanup(stores, queue)

    # When the cleanup runs twice (the second as a retried or overlapping run would)
    first, second = service.run(), service.run()

    # Then exactly one extraction was queued, for the session about to expire, at no delay
    assert (first.final_extractions_queued, second.final_extractions_queued) == (1, 0)
    assert [(t.session_id, t.namespace, t.user_id) for t in queue.sent] == [("soon", "ns", "u1")]
    claimed = queue.queue.claim(60)  # due now
    assert claimed is not None
    task = decode_task(claimed.body)
    assert isinstance(task, ExtractionTask) and task.session_id == "soon"
    # and it names the session's current generation, so the extraction does not skip it as superseded
    stored = stores.working.get(session("acme", "soon"))
    assert stored is not None and task.generation == format_datetime(stored.updated_at)


def test_a_session_written_again_gets_another_final_extraction_for_its_new_expiry(
    stores: Stores, queue: RecordingQueue
) -> None:
    write(stores, session("acme", "soon"), ttl=600)
    service = cleanup(stores, queue)
    service.run()

    # When the user says more (a new expiry, new unextracted messages) and the next run comes
    stores.working.append_messages(session("acme", "soon"), [MemoryMessage(role="user", content="and I moved")])
    report = service.run()

    assert report.final_extractions_queued == 1 and len(queue.sent) == 2


def test_no_final_extraction_when_extraction_is_off(stores: Stores) -> None:
    write(stores, session("acme", "soon"), ttl=600)

    assert cleanup(stores, None).run().final_extractions_queued == 0


# --- forgetting -----------------------------------------------------------------------------------


@pytest.fixture
def long_term(tmp_path: Path) -> Iterator[tuple[LongTermService, SqliteLongTermStore]]:
    store = SqliteLongTermStore(tmp_path / "long_term.sqlite3")
    yield LongTermService(store, FakeEmbedder(dimensions=16)), store
    store.close()


def record(record_id: str, *, age_days: float, pinned: bool = False) -> MemoryRecord:
    when = NOW - timedelta(days=age_days)
    return MemoryRecord(id=record_id, text=f"fact {record_id}", created_at=when, last_accessed=when, pinned=pinned,
                        discrete_memory_extracted="t")  # fmt: skip


def test_a_forgetting_policy_forgets_the_right_records_of_each_tenant(
    stores: Stores, long_term: tuple[LongTermService, SqliteLongTermStore]
) -> None:
    service, store = long_term
    # Given records of two tenants, old and new, one old one pinned; globex has no session at all
    service.create("acme", [record("a-old", age_days=400), record("a-pinned", age_days=500, pinned=True),
                            record("a-new", age_days=3), record("a-newer", age_days=1)],
                   deduplicate=False)  # fmt: skip
    service.create("globex", [record("g-old", age_days=400), record("g-new", age_days=2)], deduplicate=False)
    write(stores, session("acme", "s1"))

    # When the cleanup applies max age 365 days and a budget of 2 per tenant
    policy = ForgetPolicy(max_age_days=365, budget=2)
    report = cleanup(stores, long_term=service, long_term_tenants=store, policy=policy).run()

    # Then each tenant lost its old records, the pinned one stays, and the budget counted per tenant
    # (acme keeps its pinned record and its two newest: pinned records are outside the budget)
    assert report.records_forgotten == 2
    assert sorted(r.id for r in store.get("acme", ["a-old", "a-pinned", "a-new", "a-newer"])) == [
        "a-new", "a-newer", "a-pinned"]  # fmt: skip
    assert [r.id for r in store.get("globex", ["g-old", "g-new"])] == ["g-new"]


def test_no_policy_forgets_nothing(stores: Stores, long_term: tuple[LongTermService, SqliteLongTermStore]) -> None:
    service, store = long_term
    service.create("acme", [record("a-old", age_days=4000)], deduplicate=False)

    report = cleanup(stores, long_term=service, long_term_tenants=store, policy=None).run()

    assert report.records_forgotten == 0 and [r.id for r in store.get("acme", ["a-old"])] == ["a-old"]


# --- time budget and resume -----------------------------------------------------------------------


class Budget:
    """A context's remaining time that runs out after `tenants` checks (deterministic, no real time)."""

    def __init__(self, tenants: int) -> None:
        self.left = tenants

    def __call__(self) -> int:
        self.left -= 1
        return 60_000 if self.left >= 0 else 0


def test_a_run_cut_short_resumes_where_it_stopped_and_the_next_finishes(stores: Stores) -> None:
    tenants = [f"tenant-{i}" for i in range(5)]
    for tenant in tenants:
        write(stores, session(tenant, "gone"))
    for tenant in tenants:
        stores.expire(session(tenant, "gone"))
    service = cleanup(stores)

    # When the first run has time for two tenants only
    first = service.run(remaining_ms=Budget(tenants=2))

    # Then it stopped after two, leaving a cursor; the rest are untouched
    assert (first.finished, first.tenants, first.sessions_swept, first.resumed) == (False, 2, 2, False)
    assert json.loads(stores.documents.get(CURSOR_TENANT, "cleanup", "cursor"))["after"] == "tenant-1"
    assert [stores.index_entries(t) > 0 for t in tenants] == [False, False, True, True, True]

    # And the next run starts at the third tenant, finishes, and removes the cursor
    second = service.run(remaining_ms=Budget(tenants=100))
    assert (second.finished, second.tenants, second.sessions_swept, second.resumed) == (True, 3, 3, True)
    assert stores.documents.get(CURSOR_TENANT, "cleanup", "cursor") is None
    assert all(stores.index_entries(t) == 0 for t in tenants)

    # And a run after that is a fresh pass with nothing left to do
    third = service.run()
    assert (third.resumed, third.finished, third.sessions_swept) == (False, True, 0)


def test_two_runs_do_what_one_does(stores: Stores, queue: RecordingQueue,
                                   long_term: tuple[LongTermService, SqliteLongTermStore]) -> None:  # fmt: skip
    service, store = long_term
    write(stores, session("acme", "gone"))
    write(stores, session("acme", "soon"), ttl=600)
    stores.expire(session("acme", "gone"))
    service.create("acme", [record("old", age_days=400), record("new", age_days=1)], deduplicate=False)
    cleaner = cleanup(stores, queue, long_term=service, long_term_tenants=store, policy=ForgetPolicy(max_age_days=30))

    first, second = cleaner.run(), cleaner.run()

    assert (first.sessions_swept, first.final_extractions_queued, first.records_forgotten) == (1, 1, 1)
    assert (second.sessions_swept, second.final_extractions_queued, second.records_forgotten) == (0, 0, 0)
    assert len(queue.sent) == 1
    assert [r.id for r in store.get("acme", ["old", "new"])] == ["new"]
    assert stores.working.list_sessions("acme").sessions == ["soon"]


def test_the_cursor_is_invisible_to_tenants(stores: Stores) -> None:
    # The cursor's tenant name cannot be a tenant id ("/" is refused), so no tenant lists it
    write(stores, session("acme", "live"))
    write(stores, session("zeta", "live"))
    cleanup(stores).run(remaining_ms=Budget(tenants=1))

    assert stores.documents.get(CURSOR_TENANT, "cleanup", "cursor") is not None
    assert stores.working.tenants() == ["acme", "zeta"]
    assert stores.documents.list_documents("acme", "cleanup") == []


@pytest.mark.redis
def test_redis_sweep_failure_of_one_tenant_does_not_stop_the_others(redis_url: str) -> None:
    client = redis_client(redis_url, cluster=False)
    stores = Stores("redis", RedisWorkingMemoryStore(client), RedisDocumentStore(client), client)
    for tenant in ("acme", "globex"):
        write(stores, session(tenant, "gone"))
    for tenant in ("acme", "globex"):
        stores.expire(session(tenant, "gone"))
    # A foreign key of the wrong type where acme's namespace index should be
    raw = redis.Redis.from_url(redis_url)
    raw.delete(keys.list_index_key("am", "acme", namespace="ns"))
    raw.set(keys.list_index_key("am", "acme", namespace="ns"), "not a zset")

    report = cleanup(stores).run()

    assert report.failed_tenants == ["acme"] and report.sessions_swept == 1  # globex's
    assert stores.working.list_sessions("globex").total == 0
    raw.close()
    client.close()


@pytest.mark.parametrize("call", ["tenants", "sweep_expired", "expiring_sessions", "run"])
def test_redis_down_is_a_dependency_failure_naming_redis(tmp_path: Path, call: str) -> None:
    # Given stores on a port nothing listens on
    client = redis_client(f"redis://127.0.0.1:{free_port()}", timeout_seconds=0.2, cluster=False)
    working = RedisWorkingMemoryStore(client)
    calls = {
        "tenants": working.tenants,
        "sweep_expired": lambda: working.sweep_expired("acme"),
        "expiring_sessions": lambda: working.expiring_sessions("acme", 60),
        # the whole run: its cursor and tenants cannot be read, so it fails (the function's Errors alarm)
        "run": lambda: CleanupService(working, RedisDocumentStore(client), interval_seconds=INTERVAL).run(),
    }
    with pytest.raises(DependencyUnavailableError) as raised:
        calls[call]()
    assert raised.value.dependency == "redis"
    client.close()
