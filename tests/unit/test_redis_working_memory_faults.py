"""How RedisWorkingMemoryStore fails: fast, as DependencyUnavailableError, and never half-written."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.connection import SSLConnection

from agent_memory.adapters.redis_working_memory import RedisWorkingMemoryStore
from agent_memory.domain import keys
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.models import MemoryMessage, SessionKey, WorkingMemory
from tests.fixtures.redis_server import free_port, running_redis_server

KEY = SessionKey(tenant="t1", session_id="s1", namespace="ns")


def message(content: str) -> MemoryMessage:
    return MemoryMessage(role="user", content=content)


OPERATIONS: dict[str, Callable[[RedisWorkingMemoryStore], object]] = {
    "get": lambda store: store.get(KEY),
    "put": lambda store: store.put(KEY, WorkingMemory(session_id="s1")),
    "append": lambda store: store.append_messages(KEY, [message("a")]),
    "delete": lambda store: store.delete(KEY),
    "list": lambda store: store.list_sessions("t1"),
    "resolve": lambda store: store.resolve("t1", "s1"),
    "ping": lambda store: store.ping(),
}


def test_from_url_bounds_every_call_and_supports_tls_with_auth() -> None:
    # When a store is built for an ElastiCache-style TLS URL with credentials (no connection is made)
    store = RedisWorkingMemoryStore.from_url("rediss://app:s3cret@cache.example:6380/0", timeout_seconds=0.3)
    pool = store._client.connection_pool
    # Then it speaks TLS, authenticates from the URL and never waits longer than the timeout per attempt
    assert pool.connection_class is SSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("app", "s3cret")
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.3
    assert kwargs["retry"].get_retries() <= 1


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_closed_port_raises_dependency_unavailable(operation: str) -> None:
    # Given a store pointed at a port nothing listens on
    store = RedisWorkingMemoryStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2)
    # Then every operation fails as an unavailable dependency, not a vendor exception
    with pytest.raises(DependencyUnavailableError) as raised:
        OPERATIONS[operation](store)
    assert raised.value.dependency == "redis"
    assert isinstance(raised.value.__cause__, redis.exceptions.RedisError)


@pytest.mark.redis
def test_a_server_killed_mid_way_raises_dependency_unavailable(tmp_path: Path) -> None:
    with running_redis_server(tmp_path) as server:
        # Given a working store
        store = RedisWorkingMemoryStore.from_url(server.url, timeout_seconds=0.2)
        store.put(KEY, WorkingMemory(session_id="s1", messages=[message("a")]))
        assert store.get(KEY) is not None
        # When its server dies
        server.kill()
        # Then writes and reads fail as an unavailable dependency
        with pytest.raises(DependencyUnavailableError):
            store.append_messages(KEY, [message("b")])
        with pytest.raises(DependencyUnavailableError):
            store.get(KEY)


@pytest.mark.redis
def test_a_put_that_times_out_is_all_or_nothing(redis_url: str) -> None:
    # Given a stored document and an impatient store
    healthy = RedisWorkingMemoryStore.from_url(redis_url)
    before = WorkingMemory(session_id="s1", namespace="ns", messages=[message(c) for c in "abc"], context="A")
    healthy.put(KEY, before)
    impatient = RedisWorkingMemoryStore.from_url(redis_url, timeout_seconds=0.1)
    impatient.ping()

    # When the server blocks (DEBUG SLEEP on another connection) while the impatient store writes
    def block_server() -> None:
        redis.Redis.from_url(redis_url).execute_command("DEBUG", "SLEEP", 1)

    blocker = threading.Thread(target=block_server)
    blocker.start()
    time.sleep(0.2)
    after = WorkingMemory(session_id="s1", namespace="ns", messages=[message("z")], context="B")
    with pytest.raises(DependencyUnavailableError):
        impatient.put(KEY, after)
    blocker.join()
    # Then the write is all or nothing (a timed-out command may still run once the server wakes up):
    # never the new context with the old messages or the other way round
    assert healthy.get(KEY) in (before, after)


@pytest.mark.redis
def test_a_write_rejected_by_the_server_leaves_nothing_behind(redis_url: str) -> None:
    # Given a stored session, and a corrupt index key (wrong type) that this session's writes must touch
    store = RedisWorkingMemoryStore.from_url(redis_url)
    before = WorkingMemory(session_id="s1", namespace="ns", messages=[message("a")], ttl_seconds=100)
    store.put(KEY, before)
    raw = redis.Redis.from_url(redis_url)
    raw.set(keys.list_index_key("am", "t1", namespace="ns"), "not a sorted set")
    # When a put, an append and a delete each fail on it
    with pytest.raises(DependencyUnavailableError):
        store.put(KEY, WorkingMemory(session_id="s1", namespace="ns", messages=[message("z")]))
    with pytest.raises(DependencyUnavailableError):
        store.append_messages(KEY, [message("b")])
    with pytest.raises(DependencyUnavailableError):
        store.delete(KEY)
    # Then the session is exactly as before, TTL and index entries included
    assert store.get(KEY) == before
    assert 0 < raw.ttl(keys.session_meta_key("am", KEY)) <= 100
    assert store.resolve("t1", "s1") == KEY


@pytest.mark.redis
def test_a_resent_append_is_applied_once(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two appends carrying the same operation id, as when the client retries after a timeout
    # whose command had in fact reached the server
    store = RedisWorkingMemoryStore.from_url(redis_url)
    same_id = uuid.uuid4()
    monkeypatch.setattr(uuid, "uuid4", lambda: same_id)
    first = store.append_messages(KEY, [message("once")])
    second = store.append_messages(KEY, [message("once")])
    # Then the message is stored once and both calls return the same document
    stored = store.get(KEY)
    assert stored is not None and [m.content for m in stored.messages] == ["once"]
    assert second == first


@pytest.mark.redis
def test_a_resent_append_that_reached_max_total_is_not_refused(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an append that filled the session to its max_total, sent again with the same operation id (a
    # retry after a timeout whose command had reached the server)
    store = RedisWorkingMemoryStore.from_url(redis_url)
    store.append_messages(KEY, [message("a")])
    same_id = uuid.uuid4()
    monkeypatch.setattr(uuid, "uuid4", lambda: same_id)
    first = store.append_messages(KEY, [message("b")], max_total=2)
    second = store.append_messages(KEY, [message("b")], max_total=2)
    # Then the resend answers the document it made, not a 413 for its own message
    assert second == first and [m.content for m in first.messages] == ["a", "b"]
