"""The WorkingMemoryStore contract, run against every adapter: Redis (real server) and SQLite (tmp file).

TTL tests sleep for real (TTLs are whole seconds); each keeps >= 0.3 s of margin on both sides.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from agent_memory.adapters.redis_working_memory import RedisWorkingMemoryStore
from agent_memory.domain import keys
from agent_memory.domain.errors import InvalidInputError
from agent_memory.domain.models import (
    MAX_TTL_SECONDS,
    MemoryMessage,
    MemoryRecord,
    MemoryStrategyConfig,
    SessionKey,
    WorkingMemory,
)
from agent_memory.ports import WorkingMemoryStore
from tests.fixtures.working_memory_stores import STORE_KINDS, working_memory_store

TENANT = "t1"



@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkingMemoryStore]:
    with working_memory_store(request, tmp_path) as opened:
        yield opened


def key(session_id: str = "s1", namespace: str | None = None, user_id: str | None = None,
        tenant: str = TENANT) -> SessionKey:  # fmt: skip
    return SessionKey(tenant=tenant, session_id=session_id, namespace=namespace, user_id=user_id)


def message(content: str) -> MemoryMessage:
    return MemoryMessage(role="user", content=content)


def contents(memory: WorkingMemory | None) -> list[str]:
    assert memory is not None
    return [m.content for m in memory.messages]


def test_adapters_satisfy_the_port(store: WorkingMemoryStore) -> None:
    assert isinstance(store, WorkingMemoryStore)
    store.ping()


def test_get_missing_session_returns_none(store: WorkingMemoryStore) -> None:
    assert store.get(key("nope")) is None


def test_put_then_get_round_trips_every_field(store: WorkingMemoryStore) -> None:
    # Given a document using every field, with microsecond datetimes
    when = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    memory = WorkingMemory(
        session_id="s1",
        namespace="ns",
        user_id="u",
        messages=[
            MemoryMessage(role="user", content="hello", created_at=when, persisted_at=when),
            MemoryMessage(role="assistant", content="hi", discrete_memory_extracted="t"),
        ],
        memories=[MemoryRecord(text="likes tea", topics=["drinks"], event_date=when, metadata={"k": [1, 2]})],
        data={"nested": {"list": [1, "two", None]}, "flag": True},
        context="summary so far",
        tokens=42,
        long_term_memory_strategy=MemoryStrategyConfig(strategy="summary", config={"max": 3}),
        ttl_seconds=3600,
        last_accessed=when,
        created_at=when,
        updated_at=when,
    )
    # When it is stored and read back
    store.put(key("s1", "ns", "u"), memory)
    loaded = store.get(key("s1", "ns", "u"))
    # Then it is the same document, datetimes included
    assert loaded == memory
    assert loaded is not None and loaded.messages[0].created_at == when


def test_put_replaces_the_whole_document(store: WorkingMemoryStore) -> None:
    # Given a stored session with three messages and some data
    store.put(key(), WorkingMemory(session_id="s1", messages=[message(c) for c in "abc"], data={"a": 1}))
    # When it is replaced by a smaller document
    replacement = WorkingMemory(session_id="s1", messages=[message("z")], data={"b": 2}, context="c")
    store.put(key(), replacement)
    # Then nothing of the first document survives
    assert store.get(key()) == replacement


def test_the_key_decides_the_scope_of_a_put(store: WorkingMemoryStore) -> None:
    # Given a body whose ids disagree with the key it is stored under
    store.put(key("s1", "ns", "u"), WorkingMemory(session_id="other", namespace="x", user_id="y"))
    # Then the stored document carries the key's scope
    loaded = store.get(key("s1", "ns", "u"))
    assert loaded is not None
    assert (loaded.session_id, loaded.namespace, loaded.user_id) == ("s1", "ns", "u")


def test_tenants_are_isolated(store: WorkingMemoryStore) -> None:
    # Given the same session id in two tenants
    store.put(key(tenant="a"), WorkingMemory(session_id="s1", context="tenant a"))
    store.put(key(tenant="b"), WorkingMemory(session_id="s1", context="tenant b"))
    # When tenant a's session is deleted
    assert store.delete(key(tenant="a")) is True
    # Then tenant b's is untouched and each tenant lists and resolves only its own
    assert store.get(key(tenant="a")) is None
    loaded = store.get(key(tenant="b"))
    assert loaded is not None and loaded.context == "tenant b"
    assert store.list_sessions("a").total == 0
    assert store.list_sessions("b").sessions == ["s1"]
    assert store.resolve("a", "s1") is None
    assert store.resolve("b", "s1") == key(tenant="b")


def test_scopes_are_different_sessions(store: WorkingMemoryStore) -> None:
    # Given the same session id under every scope, plus components that would collide if joined naively
    scopes = [
        *(key(), key(namespace="ns"), key(namespace="ns", user_id="u"), key(user_id="u")),
        *(key(namespace="a:b"), key(namespace="a", user_id="b"), key(namespace="{x}", user_id="%")),
    ]
    for scope in scopes:
        store.put(scope, WorkingMemory(session_id="s1", context=repr(scope)))
    # Then each reads back its own document
    for scope in scopes:
        loaded = store.get(scope)
        assert loaded is not None and loaded.context == repr(scope)
    assert store.list_sessions(TENANT).total == len(scopes)
    # And an empty namespace is the same as none
    assert store.get(key(namespace="")) == store.get(key())


def test_append_creates_a_missing_session_from_the_key(store: WorkingMemoryStore) -> None:
    # When appending to a session that does not exist
    result = store.append_messages(key("s9", "ns", "u"), [message("first")], ttl_seconds=600)
    # Then it is created with the key's scope and the given TTL, and the result is what get returns
    assert (result.session_id, result.namespace, result.user_id, result.ttl_seconds) == ("s9", "ns", "u", 600)
    assert contents(result) == ["first"]
    assert store.get(key("s9", "ns", "u")) == result


def test_append_keeps_the_existing_ttl_setting_and_updates_updated_at(store: WorkingMemoryStore) -> None:
    # Given a persistent session written a while ago
    old = datetime(2020, 1, 1, tzinfo=UTC)
    store.put(key(), WorkingMemory(session_id="s1", messages=[message("a")], updated_at=old, context="c"))
    # When appending with a ttl_seconds meant for new sessions
    result = store.append_messages(key(), [message("b"), message("c")], ttl_seconds=1)
    # Then the session stays persistent, keeps its other fields and is marked as updated
    assert result.ttl_seconds is None
    assert result.context == "c"
    assert result.updated_at > old
    assert contents(store.get(key())) == ["a", "b", "c"]


def test_max_messages_keeps_only_the_newest(store: WorkingMemoryStore) -> None:
    # Given three stored messages
    store.put(key(), WorkingMemory(session_id="s1", messages=[message(c) for c in "abc"]))
    # When two more are appended with a limit of four
    result = store.append_messages(key(), [message("d"), message("e")], max_messages=4)
    # Then the oldest one is gone, in the stored document too
    assert contents(result) == ["b", "c", "d", "e"]
    assert contents(store.get(key())) == ["b", "c", "d", "e"]


def test_concurrent_appends_lose_nothing(store: WorkingMemoryStore) -> None:
    # Given 50 threads released at the same moment, each appending one message to one session
    start = threading.Barrier(50)
    errors: list[BaseException] = []

    def append(i: int) -> None:
        try:
            start.wait()
            store.append_messages(key(), [message(f"m{i}")])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then all 50 messages are stored, each once
    assert errors == []
    assert sorted(contents(store.get(key()))) == sorted(f"m{i}" for i in range(50))


def test_ttl_restarts_on_every_write_then_expires(store: WorkingMemoryStore) -> None:
    # Given a session with a one-second TTL, appended to 0.7 s later
    store.put(key(), WorkingMemory(session_id="s1", ttl_seconds=1))
    time.sleep(0.7)
    store.append_messages(key(), [message("still here")])
    # When 1.3 s have passed since the put (0.6 s since the append)
    time.sleep(0.6)
    # Then the append restarted the TTL
    assert contents(store.get(key())) == ["still here"]
    # And once a full second passes without writes it is gone from get, list and resolve
    time.sleep(0.7)
    assert store.get(key()) is None
    assert store.list_sessions(TENANT).total == 0
    assert store.resolve(TENANT, "s1") is None


def test_persistent_put_after_ttl_put_removes_the_ttl(store: WorkingMemoryStore) -> None:
    # Given a session stored with a one-second TTL, then stored again as persistent
    store.put(key(), WorkingMemory(session_id="s1", ttl_seconds=1, messages=[message("a")]))
    store.put(key(), WorkingMemory(session_id="s1", messages=[message("b")]))
    # And appended to with a ttl_seconds that only a new session would take
    store.append_messages(key(), [message("c")], ttl_seconds=1)
    # When that second has passed
    time.sleep(1.3)
    # Then the session is still there
    assert contents(store.get(key())) == ["b", "c"]
    assert store.list_sessions(TENANT).sessions == ["s1"]


def test_expired_sessions_leave_the_list_and_its_total(store: WorkingMemoryStore) -> None:
    # Given two sessions in one namespace, one expiring after a second
    store.put(key("short", "ns"), WorkingMemory(session_id="short", ttl_seconds=1))
    store.put(key("long", "ns"), WorkingMemory(session_id="long", ttl_seconds=60))
    assert store.list_sessions(TENANT, namespace="ns").total == 2
    # When the short one expires
    time.sleep(1.3)
    # Then every listing counts only the live one
    for page in (store.list_sessions(TENANT), store.list_sessions(TENANT, namespace="ns")):
        assert page.sessions == ["long"]
        assert page.total == 1


def test_list_filters_by_namespace_and_user(store: WorkingMemoryStore) -> None:
    # Given sessions across scopes, and one in another tenant
    for scope in [key("s1"), key("s2", "ns1"), key("s3", "ns1", "u1"), key("s4", None, "u1"),
                  key("s5", "ns2", "u1"), key("s6", "ns1", tenant="other")]:  # fmt: skip
        store.put(scope, WorkingMemory(session_id=scope.session_id))

    def ids(**filters: str) -> tuple[set[str], int]:
        page = store.list_sessions(TENANT, **filters)
        return set(page.sessions), page.total

    # Then each filter returns exactly its matches, with their count
    assert ids() == ({"s1", "s2", "s3", "s4", "s5"}, 5)
    assert ids(namespace="ns1") == ({"s2", "s3"}, 2)
    assert ids(user_id="u1") == ({"s3", "s4", "s5"}, 3)
    assert ids(namespace="ns1", user_id="u1") == ({"s3"}, 1)
    assert ids(namespace="missing") == (set(), 0)


def test_list_pages_with_limit_and_offset_in_a_stable_order(store: WorkingMemoryStore) -> None:
    # Given five sessions
    for i in range(5):
        store.put(key(f"s{i}"), WorkingMemory(session_id=f"s{i}"))
    everything = store.list_sessions(TENANT, limit=100)
    # When reading them two at a time
    pages = [store.list_sessions(TENANT, limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    # Then the pages partition the full list in its order, and every page reports the true total
    assert sorted(everything.sessions) == [f"s{i}" for i in range(5)]
    assert [s for page in pages for s in page.sessions] == everything.sessions
    assert [len(page.sessions) for page in pages] == [2, 2, 1, 0]
    assert {page.total for page in pages} == {5}
    assert store.list_sessions(TENANT, limit=100) == everything
    assert store.list_sessions(TENANT, limit=0).sessions == []


def test_resolve_finds_the_unique_live_session(store: WorkingMemoryStore) -> None:
    # Given a session PUT with namespace and user in the body
    store.put(key("s1", "ns1", "u1"), WorkingMemory(session_id="s1"))
    # Then a lookup by id alone, or with matching filters, finds it
    assert store.resolve(TENANT, "s1") == key("s1", "ns1", "u1")
    assert store.resolve(TENANT, "s1", namespace="ns1", user_id="u1") == key("s1", "ns1", "u1")
    # And a lookup with a different filter, id, or tenant does not
    assert store.resolve(TENANT, "s1", namespace="ns2") is None
    assert store.resolve(TENANT, "s2") is None
    assert store.resolve("other", "s1") is None


def test_resolve_refuses_an_ambiguous_id_unless_filters_narrow_it(store: WorkingMemoryStore) -> None:
    # Given the same id in two namespaces of one user
    store.put(key("s1", "ns1", "u1"), WorkingMemory(session_id="s1"))
    store.put(key("s1", "ns2", "u1"), WorkingMemory(session_id="s1"))
    # Then the bare id and the user filter are ambiguous, the namespace filter is not
    assert store.resolve(TENANT, "s1") is None
    assert store.resolve(TENANT, "s1", user_id="u1") is None
    assert store.resolve(TENANT, "s1", namespace="ns2") == key("s1", "ns2", "u1")
    # And deleting one makes the other unique again
    store.delete(key("s1", "ns2", "u1"))
    assert store.resolve(TENANT, "s1") == key("s1", "ns1", "u1")


def test_delete_removes_the_session_everywhere(store: WorkingMemoryStore) -> None:
    # Given a stored session
    store.append_messages(key("s1", "ns", "u"), [message("a")])
    # When it is deleted twice
    first, second = store.delete(key("s1", "ns", "u")), store.delete(key("s1", "ns", "u"))
    # Then only the first deleted something, and it is gone from get, list and resolve
    assert (first, second) == (True, False)
    assert store.get(key("s1", "ns", "u")) is None
    assert store.list_sessions(TENANT, namespace="ns", user_id="u").total == 0
    assert store.resolve(TENANT, "s1") is None


# -- Redis only: what the keys look like on the server ----------------------------------------------


@pytest.mark.redis
def test_redis_keys_carry_the_session_ttl_and_persistent_ones_none(redis_url: str) -> None:
    store = RedisWorkingMemoryStore.from_url(redis_url)
    raw = redis.Redis.from_url(redis_url)
    session_keys = [
        keys.session_meta_key("am", key()),
        keys.session_messages_key("am", key()),
        keys.session_operations_key("am", key()),
    ]
    # Given a session written with a TTL (put, then append so every session key exists)
    store.put(key(), WorkingMemory(session_id="s1", ttl_seconds=100))
    store.append_messages(key(), [message("a")])
    # Then every key of the session expires with it
    assert all(0 < raw.ttl(k) <= 100 for k in session_keys)
    # When it is stored again as persistent (and appended to)
    store.put(key(), WorkingMemory(session_id="s1"))
    store.append_messages(key(), [message("b")])
    # Then no key of the session keeps a TTL
    assert [raw.ttl(k) for k in session_keys] == [-1, -1, -1]
    # And nothing lives outside the documented key layout
    assert {k.decode() for k in raw.keys("*")} == {*session_keys, *keys.index_keys("am", key())}


@pytest.mark.parametrize("ttl", [0, -1, 2**31, 10**20])
def test_a_ttl_no_store_can_hold_is_refused_before_anything_changes(store: WorkingMemoryStore, ttl: int) -> None:
    # Given a stored session with a TTL
    store.put(key(), WorkingMemory(session_id="s1", ttl_seconds=100, messages=[message("kept")]))
    # When a put and an append name a TTL outside 1..MAX_TTL_SECONDS (the model refuses one, so a
    # caller that skips validation is what the store must still stop)
    unchecked = WorkingMemory.model_construct(session_id="s1", ttl_seconds=ttl, messages=[message("new")])
    with pytest.raises(InvalidInputError, match="ttl_seconds must be between 1 and"):
        store.put(key(), unchecked)
    with pytest.raises(InvalidInputError, match="ttl_seconds must be between 1 and"):
        store.append_messages(key("s2"), [message("new")], ttl_seconds=ttl)
    # Then the session is as it was, still expiring, and nothing else was created
    stored = store.get(key())
    assert contents(stored) == ["kept"] and stored is not None and stored.ttl_seconds == 100
    assert store.get(key("s2")) is None
    assert store.list_sessions(TENANT).total == 1


def test_the_longest_ttl_is_accepted(store: WorkingMemoryStore) -> None:
    store.put(key(), WorkingMemory(session_id="s1", ttl_seconds=MAX_TTL_SECONDS))
    stored = store.get(key())
    assert stored is not None and stored.ttl_seconds == MAX_TTL_SECONDS


def _redis_state(raw: redis.Redis) -> dict[bytes, tuple[bytes | None, int]]:
    """Every key's serialized value and remaining TTL: equal snapshots mean nothing was written."""
    return {k: (raw.dump(k), -1 if raw.pttl(k) < 0 else 1) for k in raw.keys("*")}


@pytest.mark.redis
@pytest.mark.parametrize("bad_ttl", ["0", "-3", "1.5", "abc", "2147483648", "100000000000000000000"])
def test_redis_scripts_check_the_ttl_before_their_first_write(redis_url: str, bad_ttl: str) -> None:
    # Given a stored session (put, then append, so every key exists), and the raw server state
    store = RedisWorkingMemoryStore.from_url(redis_url)
    raw = redis.Redis.from_url(redis_url)
    store.put(key(), WorkingMemory(session_id="s1", ttl_seconds=100))
    store.append_messages(key(), [message("a")])
    before = _redis_state(raw)
    # When the PUT script itself is sent a TTL Redis cannot apply (the adapter's own check bypassed)
    put_args = [keys.session_member(key()), "{}", bad_ttl, "2025-01-01T00:00:00Z", message("b").model_dump_json()]
    with pytest.raises(redis.exceptions.ResponseError, match="invalid ttl"):
        store._put(keys=store._session_keys(key()), args=put_args)
    # And the APPEND script finds a TTL it cannot apply stored in the session
    raw.hset(keys.session_meta_key("am", key()), "ttl", bad_ttl)
    before_append = _redis_state(raw)
    with pytest.raises(redis.exceptions.ResponseError, match="invalid ttl"):
        store._append(  # the raw script
            keys=store._session_keys(key()),
            args=[keys.session_member(key()), "{}", "", "2025-01-01T00:00:00Z", "", "op1", "300000",
                  message("c").model_dump_json()],
        )  # fmt: skip
    # Then neither script wrote anything: every key, value and TTL is as it was
    assert _redis_state(raw) == before_append
    raw.hset(keys.session_meta_key("am", key()), "ttl", "100")
    assert _redis_state(raw) == before
