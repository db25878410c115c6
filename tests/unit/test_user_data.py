"""The deletion tombstone and the extraction's checks of it, on the embedded SQLite stores (no network) with
a scripted LLM: a task enqueued before a user's deletion never writes the user's memories, whether the
deletion came before it started, while the LLM worked, or between the extraction's check and its write."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from agent_memory.bootstrap import Container
from agent_memory.domain.models import MemoryMessage, MemoryRecord, SessionKey, WorkingMemory, utcnow
from agent_memory.domain.tasks import ExtractionTask, RecordExtractionTask
from agent_memory.ports import ChatMessage, Completion
from agent_memory.services.extraction_scheduler import session_generation
from agent_memory.services.user_data import UserTombstone, UserTombstones
from tests.fixtures.app import make_container

ALICE = SessionKey(tenant="t1", namespace="n1", user_id="alice", session_id="s1")
FACTS = json.dumps({"memories": [{"type": "semantic", "text": "User is vegetarian", "topics": ["diet"],
                                  "entities": [], "event_date": None}]})


class ScriptedLLM:
    """Answers FACTS; runs `during` (the deletion) the first time it is called, as if it landed meanwhile."""

    model = "scripted"

    def __init__(self) -> None:
        self.calls = 0
        self.during: Callable[[], object] | None = None

    def complete(
        self, messages: Sequence[ChatMessage], *, json_mode: bool = False, max_tokens: int | None = None
    ) -> Completion:
        self.calls += 1
        if self.during is not None:
            during, self.during = self.during, None
            during()
        return Completion(text=FACTS)


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
def container(tmp_path: Path, llm: ScriptedLLM) -> Container:
    return make_container(tmp_path, llm=llm, knowledge_updates=False)


def _session_task(container: Container, key: SessionKey = ALICE) -> ExtractionTask:
    store = container.working_memory_store
    store.put(key, WorkingMemory(session_id=key.session_id, namespace=key.namespace, user_id=key.user_id,
                                 messages=[MemoryMessage(id="m1", role="user", content="I am vegetarian")]))
    stored = store.get(key)
    assert stored is not None
    return ExtractionTask.for_session(key, generation=session_generation(stored))


def _alices_records(container: Container) -> list[MemoryRecord]:
    return container.long_term_store.user_records("t1", "alice")


def test_tombstones_cover_work_enqueued_before_the_deletion_in_its_scope(container: Container) -> None:
    tombstones = UserTombstones(container.document_store)
    now = utcnow()
    tombstones.record(UserTombstone(tenant="t1", user_id="alice", namespace="n1", deleted_at=now))
    before, after = now - timedelta(seconds=1), now + timedelta(seconds=1)
    assert tombstones.covers("t1", "alice", "n1", before)
    assert not tombstones.covers("t1", "alice", "n1", after)  # the user came back: new work runs
    assert not tombstones.covers("t1", "alice", "n2", before)  # another namespace of hers
    assert not tombstones.covers("t1", "alice", None, before)
    assert not tombstones.covers("t2", "alice", "n1", before)  # another tenant
    assert not tombstones.covers("t1", "bob", "n1", before)
    assert not tombstones.covers("t1", None, "n1", before)
    # A deletion of every namespace covers each of them
    tombstones.record(UserTombstone(tenant="t1", user_id="alice", deleted_at=now))
    assert tombstones.covers("t1", "alice", "n2", before) and tombstones.covers("t1", "alice", None, before)


def test_a_task_of_a_deleted_user_is_dropped_without_calling_the_llm(container: Container, llm: ScriptedLLM) -> None:
    task = _session_task(container)
    container.user_data_service.delete("t1", "alice")
    # the session is gone anyway; the user writes again, and the old task is delivered late
    _session_task(container, ALICE.model_copy(update={"session_id": "s2"}))
    assert container.extraction_service.run(task).status == "user-deleted"
    assert llm.calls == 0 and _alices_records(container) == []


def test_a_deletion_while_the_llm_works_stops_the_write(container: Container, llm: ScriptedLLM) -> None:
    task = _session_task(container)
    llm.during = lambda: container.user_data_service.delete("t1", "alice")
    result = container.extraction_service.run(task)
    assert result.status == "user-deleted"
    assert llm.calls == 1 and _alices_records(container) == []


def test_a_deletion_between_the_check_and_the_write_is_undone_after_it(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _session_task(container)
    service = container.long_term_service
    create = service.create

    def delete_then_create(*args: object, **kwargs: object) -> object:
        # The deletion runs to its end (nothing of this task's to list yet), then the write lands
        container.user_data_service.delete("t1", "alice")
        return create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "create", delete_then_create)
    assert container.extraction_service.run(task).status == "user-deleted"
    assert _alices_records(container) == []


def test_the_second_pass_drops_records_of_a_user_deleted_meanwhile(container: Container, llm: ScriptedLLM) -> None:
    source = MemoryRecord(id="r1", text="I am vegetarian", namespace="n1", user_id="alice",
                          discrete_memory_extracted="f")
    bob = MemoryRecord(id="r2", text="I like tea", namespace="n1", user_id="bob", discrete_memory_extracted="t")
    container.long_term_service.create("t1", [source, bob])
    task = RecordExtractionTask.for_records("t1", ["r1"])
    llm.during = lambda: container.user_data_service.delete("t1", "alice")
    container.extraction_service.run(task)
    assert _alices_records(container) == []
    assert [r.id for r in container.long_term_store.user_records("t1", "bob")] == ["r2"]


def test_a_task_enqueued_after_the_deletion_runs(container: Container, llm: ScriptedLLM) -> None:
    container.user_data_service.delete("t1", "alice")
    task = _session_task(container)  # enqueued now, after the tombstone
    assert container.extraction_service.run(task).status == "extracted"
    assert [r.text for r in _alices_records(container)] == ["User is vegetarian"]


def test_deletion_pages_through_more_records_than_one_page(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_memory.services import user_data

    monkeypatch.setattr(user_data, "DELETE_PAGE", 500)
    records = [MemoryRecord(id=f"r{i:04d}", text=f"fact number {i}", user_id="alice") for i in range(1203)]
    records.append(MemoryRecord(id="keep", text="bob's fact", user_id="bob"))
    store = container.long_term_store
    store.ensure_ready(64)
    store.upsert("t1", records, [[1.0] + [0.0] * 63] * len(records))
    export = json.loads("".join(container.user_data_service.export_json("t1", "alice")))
    assert export["counts"]["long_term_memories"] == 1203
    assert len({r["id"] for r in export["long_term_memories"]}) == 1203
    assert container.user_data_service.delete("t1", "alice").long_term_memories == 1203
    assert _alices_records(container) == []
    assert [r.id for r in container.long_term_store.user_records("t1", "bob")] == ["keep"]


def test_a_summary_view_run_stores_nothing_for_a_user_deleted_meanwhile(
    container: Container, llm: ScriptedLLM
) -> None:
    from agent_memory.domain.summary_views import SummaryView
    from agent_memory.domain.tasks import SummaryViewRunTask

    container.long_term_service.create("t1", [
        MemoryRecord(id="a", text="Alice likes tea", user_id="alice", discrete_memory_extracted="t"),
        MemoryRecord(id="b", text="Bob likes coffee", user_id="bob", discrete_memory_extracted="t"),
    ])
    views = container.summary_view_service
    view = views.create("t1", SummaryView(name="per user", group_by=["user_id"]))
    message = SummaryViewRunTask.for_view("t1", view.id, "task-1")
    # the deletion lands while the LLM summarizes the first group
    llm.during = lambda: container.user_data_service.delete("t1", "alice")
    views.run(message)
    assert {p.group["user_id"] for p in views.list_partitions("t1", view.id)} == {"bob"}


def test_the_embedded_queue_drops_the_users_session_tasks_leased_and_dead_ones_too(tmp_path: Path) -> None:
    from agent_memory.adapters.sqlite_task_queue import SqliteTaskQueue
    from agent_memory.domain.tasks import decode_task

    queue = SqliteTaskQueue(tmp_path / "tasks.sqlite3", max_receives=1)

    def task(user: str, namespace: str, session: str) -> ExtractionTask:
        key = SessionKey(tenant="t1", namespace=namespace, user_id=user, session_id=session)
        return ExtractionTask.for_session(key, generation="g")

    queue.enqueue(task("alice", "n2", "dead"))
    dead = queue.claim(60)
    assert dead is not None
    queue.fail(dead, "boom", retry_in_seconds=0)  # past max_receives: a dead letter
    queue.enqueue(task("alice", "n1", "leased"))
    assert queue.claim(60) is not None  # a worker holds it
    queue.enqueue(task("alice", "n1", "pending"))
    queue.enqueue(task("bob", "n1", "pending"))
    queue.enqueue(RecordExtractionTask.for_records("t1", ["r1"]))  # names no user: kept
    other = ExtractionTask.for_session(SessionKey(tenant="t2", user_id="alice", session_id="s"), generation="g")
    queue.enqueue(other)

    assert queue.drop_user_tasks("t1", "alice", namespace="n1") == 2
    assert queue.drop_user_tasks("t1", "alice") == 1  # the dead letter in n2
    assert queue.drop_user_tasks("t1", "alice") == 0
    assert queue.counts() == {"pending": 3, "dead": 0}
    remaining = []
    while (claimed := queue.claim(60)) is not None:
        remaining.append(decode_task(claimed.body))
    assert sorted((t.tenant, getattr(t, "user_id", None) or "-") for t in remaining) == [
        ("t1", "-"), ("t1", "bob"), ("t2", "alice")]
