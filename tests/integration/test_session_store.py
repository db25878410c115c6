"""What the session API needs from every working-memory store (SQLite, one redis-server, the local 3-node
Redis Cluster): the stored item limit that drops only extracted messages, settings that survive a PUT, and
`prime`, which touches neither messages, TTL nor `updated_at`."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent_memory.domain.errors import MessageLimitError
from agent_memory.domain.models import MemoryMessage, MemoryRecord, SessionKey, WorkingMemory
from agent_memory.ports import WorkingMemoryStore
from tests.fixtures.working_memory_stores import STORE_KINDS, working_memory_store

KEY = SessionKey(tenant="t1", session_id="s1")


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkingMemoryStore]:
    with working_memory_store(request, tmp_path) as opened:
        yield opened


def messages(*ids: str) -> list[MemoryMessage]:
    return [MemoryMessage(id=i, role="user", content=f"content of {i}") for i in ids]


def record(record_id: str, text: str) -> MemoryRecord:
    return MemoryRecord(id=record_id, text=text)


def test_the_limit_drops_only_extracted_messages_and_stops_at_the_first_that_is_not(store: WorkingMemoryStore) -> None:
    # Given a session with a limit of 3 and five stored messages, the oldest two extracted
    store.append_messages(KEY, [], ttl_seconds=600, message_limit=3)
    stored = messages("m0", "m1", "m2", "m3", "m4")
    store.append_messages(KEY, stored)
    assert store.mark_extracted(KEY, stored[:2]) == 2
    # When one more is appended (six stored, limit three)
    after = store.append_messages(KEY, messages("m5"))
    # Then only the two extracted ones were dropped: m2 is not extracted, so it stops the trim
    assert [m.id for m in after.messages] == ["m2", "m3", "m4", "m5"]
    assert store.get(KEY).messages == after.messages  # type: ignore[union-attr]
    # And once everything is extracted, the next append trims to the limit, oldest first
    store.mark_extracted(KEY, after.messages)
    trimmed = store.append_messages(KEY, messages("m6"))
    assert [m.id for m in trimmed.messages] == ["m4", "m5", "m6"]
    assert (trimmed.message_limit, trimmed.ttl_seconds) == (3, 600)


def test_an_extracted_message_behind_an_unextracted_one_stays(store: WorkingMemoryStore) -> None:
    store.append_messages(KEY, [], message_limit=1)
    stored = messages("a", "b", "c")
    store.append_messages(KEY, stored)
    store.mark_extracted(KEY, [stored[1]])  # only b: a, the oldest, is still pending
    after = store.append_messages(KEY, messages("d"))
    assert [m.id for m in after.messages] == ["a", "b", "c", "d"]


def test_a_session_without_a_limit_is_never_trimmed(store: WorkingMemoryStore) -> None:
    stored = messages("a", "b", "c")
    store.append_messages(KEY, stored, message_limit=None)
    store.mark_extracted(KEY, stored)
    after = store.append_messages(KEY, messages("d"), message_limit=2)  # applies only when creating
    assert [m.id for m in after.messages] == ["a", "b", "c", "d"] and after.message_limit is None


def test_concurrent_appends_with_a_limit_keep_every_unextracted_message(store: WorkingMemoryStore) -> None:
    store.append_messages(KEY, [], message_limit=5)
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda n: store.append_messages(KEY, messages(f"m{n}")), range(30)))
    assert sorted(m.id for m in store.get(KEY).messages) == sorted(f"m{n}" for n in range(30))  # type: ignore[union-attr]


def test_max_total_refuses_an_append_past_it_whole_and_writes_nothing(store: WorkingMemoryStore) -> None:
    store.append_messages(KEY, messages("a", "b"), ttl_seconds=600, max_total=3)
    before = store.get(KEY)
    with pytest.raises(MessageLimitError) as refused:
        store.append_messages(KEY, messages("c", "d"), max_total=3)  # 4 > 3: neither is written
    assert (refused.value.count, refused.value.limit) == (4, 3)
    assert "MAX_MESSAGES_PER_SESSION" in refused.value.detail
    assert store.get(KEY) == before  # nothing changed, not even updated_at
    assert [m.id for m in store.append_messages(KEY, messages("c"), max_total=3).messages] == ["a", "b", "c"]
    with pytest.raises(MessageLimitError):
        store.append_messages(SessionKey(tenant="t1", session_id="new"), messages("x", "y"), max_total=1)
    assert store.get(SessionKey(tenant="t1", session_id="new")) is None  # no session was created either


def test_concurrent_appends_never_pass_max_total(store: WorkingMemoryStore) -> None:
    store.append_messages(KEY, messages("first"))

    def append(n: int) -> bool:
        try:
            store.append_messages(KEY, messages(f"m{n}"), max_total=10)
        except MessageLimitError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=10) as pool:
        accepted = list(pool.map(append, range(30)))
    stored = store.get(KEY)
    assert stored is not None and len(stored.messages) == 10 and sum(accepted) == 9
    assert sorted(m.id for m in stored.messages[1:]) == sorted(f"m{n}" for n, ok in enumerate(accepted) if ok)


def test_a_put_without_settings_keeps_the_stored_ones_and_one_with_settings_sets_them(
    store: WorkingMemoryStore,
) -> None:
    store.append_messages(KEY, messages("a"), message_limit=7)
    store.prime(KEY, [record("r1", "User likes tea")])
    store.put(KEY, WorkingMemory(session_id="s1", messages=messages("b")))  # what an AMS PUT writes
    kept = store.get(KEY)
    assert kept is not None
    assert ([m.id for m in kept.messages], kept.message_limit, kept.primed_memory_ids) == (["b"], 7, ["r1"])
    store.put(KEY, WorkingMemory(session_id="s1", message_limit=9, primed_memory_ids=[]))
    changed = store.get(KEY)
    assert changed is not None and (changed.message_limit, changed.primed_memory_ids) == (9, [])
    store.delete(KEY)
    store.append_messages(KEY, messages("c"))  # a new session: nothing left of the deleted one's settings
    fresh = store.get(KEY)
    assert fresh is not None and (fresh.message_limit, fresh.primed_memory_ids) == (None, None)


def test_prime_adds_records_by_id_and_leaves_messages_ttl_and_generation_alone(store: WorkingMemoryStore) -> None:
    before = store.append_messages(KEY, messages("a", "b"), ttl_seconds=600)
    primed = store.prime(KEY, [record("r1", "User likes tea"), record("r2", "User lives in Lisbon")])
    assert primed is not None
    assert [m.id for m in primed.memories] == ["r1", "r2"] and primed.primed_memory_ids == ["r1", "r2"]
    assert (primed.messages, primed.ttl_seconds, primed.updated_at) == (before.messages, 600, before.updated_at)
    again = store.prime(KEY, [record("r2", "User lives in Porto now"), record("r3", "User cycles")])
    assert again is not None
    assert [(m.id, m.text) for m in again.memories] == [
        ("r1", "User likes tea"), ("r2", "User lives in Porto now"), ("r3", "User cycles")]
    assert again.primed_memory_ids == ["r1", "r2", "r3"]
    assert store.get(KEY) == again


def test_prime_of_a_missing_session_is_none_and_creates_nothing(store: WorkingMemoryStore) -> None:
    assert store.prime(KEY, [record("r1", "x")]) is None
    assert store.get(KEY) is None


def test_prime_racing_appends_and_puts_loses_neither(store: WorkingMemoryStore) -> None:
    store.append_messages(KEY, messages("start"))

    def work(n: int) -> None:
        if n % 3 == 0:
            store.prime(KEY, [record(f"r{n}", f"fact {n}")])
        else:
            store.append_messages(KEY, messages(f"m{n}"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(30)))
    final = store.get(KEY)
    assert final is not None
    assert sorted(m.id for m in final.messages) == sorted(["start", *(f"m{n}" for n in range(30) if n % 3)])
    assert sorted(final.primed_memory_ids or []) == sorted(f"r{n}" for n in range(0, 30, 3))
    assert sorted(m.id for m in final.memories) == sorted(f"r{n}" for n in range(0, 30, 3))
