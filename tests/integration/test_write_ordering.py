"""The ordering rule of a working-memory PUT: a request that fails leaves nothing behind.

A PUT promotes the session's new `memories` to long-term memory, then stores the session in one write.
When that write fails (Redis down, SQLite failing, a value no store can hold), what the promotion
created is retracted before the error answers; when long-term memory fails, the session is stored with
its memories unpersisted and the response says so (the next PUT promotes them).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.redis_working_memory import RedisWorkingMemoryStore
from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore
from agent_memory.adapters.sqlite_working_memory import SqliteWorkingMemoryStore
from agent_memory.bootstrap import Container
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.http.app import create_app
from agent_memory.ports import WorkingMemoryStore
from tests.fixtures.app import make_settings
from tests.fixtures.redis_process import free_port

PUT_BODY = {
    "messages": [{"role": "user", "content": "I moved to Lyon"}],
    "memories": [{"id": "new-fact", "text": "User lives in Lyon"}],
}


def _client(tmp_path: Path, working_memory_store: WorkingMemoryStore, **stores: Any) -> TestClient:
    container = Container(
        make_settings(tmp_path),
        working_memory_store=working_memory_store,
        embedder=FakeEmbedder(dimensions=64),
        language_model=None,
        **stores,
    )
    return TestClient(create_app(container))


def _long_term_ids(client: TestClient) -> list[str]:
    listing = client.post("/v1/long-term-memory/search", json={"text": "", "limit": 100})
    assert listing.status_code == 200, listing.text
    return sorted(m["id"] for m in listing.json()["memories"])


def _dead_redis() -> RedisWorkingMemoryStore:
    return RedisWorkingMemoryStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2)


def _sqlite_with_a_broken_table(tmp_path: Path) -> SqliteWorkingMemoryStore:
    path = tmp_path / "broken.sqlite3"
    store = SqliteWorkingMemoryStore(path)
    with sqlite3.connect(path) as db:  # another process damaging the file under the server
        db.execute("DROP TABLE working_memory")
    return store


@pytest.fixture(params=["redis-down", "sqlite-error"])
def failing_working_memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkingMemoryStore]:
    store = _dead_redis() if request.param == "redis-down" else _sqlite_with_a_broken_table(tmp_path)
    yield store
    store.close()


def test_a_put_whose_session_write_fails_leaves_no_long_term_memory(
    tmp_path: Path, failing_working_memory: WorkingMemoryStore
) -> None:
    with _client(tmp_path, failing_working_memory) as client:
        # Given a memory that already exists in long-term memory, written before the fault
        existing = client.post("/v1/long-term-memory/", json={"memories": [{"id": "old", "text": "User likes tea"}]})
        assert existing.status_code == 200
        # When a PUT promotes a new memory and a duplicate of the existing one, and the session write fails
        body = {**PUT_BODY, "memories": [*PUT_BODY["memories"], {"id": "dup", "text": "User likes tea"}]}
        response = client.put("/v1/working-memory/s1", json=body)
        # Then the caller is told the dependency failed, with a retry hint
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        # And the promotion was undone: only the record written before the fault exists
        assert _long_term_ids(client) == ["old"]
        assert client.get("/v1/long-term-memory/new-fact").status_code == 404


def test_a_failed_retraction_is_logged_and_a_retried_put_converges(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a long-term store whose deletes fail, and a working-memory store that is down
    long_term = SqliteLongTermStore(tmp_path / "lt.sqlite3")

    def failing_delete(tenant: str, ids: object) -> int:
        raise DependencyUnavailableError("sqlite", "disk I/O error")

    long_term.delete = failing_delete  # type: ignore[method-assign]
    healthy = SqliteWorkingMemoryStore(tmp_path / "wm.sqlite3")
    with _client(tmp_path, _dead_redis(), long_term_store=long_term) as client, caplog.at_level(logging.WARNING):
        # When the PUT fails and its promotion cannot be retracted
        assert client.put("/v1/working-memory/s1", json=PUT_BODY).status_code == 503
        # Then the leftover is named in the log
        assert "could not retract promoted memories ['new-fact']" in caplog.text
    # And when the client retries once Redis is back, the same id is written again, not duplicated
    with _client(tmp_path, healthy, long_term_store=long_term) as client:
        retried = client.put("/v1/working-memory/s1", json=PUT_BODY)
        assert retried.status_code == 200 and retried.headers["x-agent-memory-promotion"] == "promoted"
        assert _long_term_ids(client) == ["new-fact"]


def test_a_ttl_no_store_can_hold_is_refused_before_promotion(tmp_path: Path) -> None:
    with _client(tmp_path, SqliteWorkingMemoryStore(tmp_path / "wm.sqlite3")) as client:
        response = client.put("/v1/working-memory/s1", json={**PUT_BODY, "ttl_seconds": 2**40})
        assert response.status_code in (400, 422), response.text
        assert "ttl_seconds" in response.text
        assert _long_term_ids(client) == []
        assert client.get("/v1/working-memory/s1").status_code == 404


def test_a_put_with_long_term_memory_down_stores_the_session_and_defers(tmp_path: Path) -> None:
    long_term = SqliteLongTermStore(tmp_path / "lt.sqlite3")

    def failing_upsert(*args: object, **kwargs: object) -> None:
        raise DependencyUnavailableError("sqlite", "database is locked")

    with _client(tmp_path, SqliteWorkingMemoryStore(tmp_path / "wm.sqlite3"), long_term_store=long_term) as client:
        long_term.upsert = failing_upsert  # type: ignore[method-assign]
        long_term.upsert_unique = failing_upsert  # type: ignore[attr-defined]
        response = client.put("/v1/working-memory/s1", json=PUT_BODY)
        assert response.status_code == 200
        assert response.headers["x-agent-memory-promotion"] == "deferred; reason=sqlite-unavailable"
        assert response.json()["memories"][0]["persisted_at"] is None
        stored = client.get("/v1/working-memory/s1").json()
        assert [m["content"] for m in stored["messages"]] == ["I moved to Lyon"]


@pytest.mark.redis
def test_a_put_while_redis_is_too_slow_is_a_503_and_all_or_nothing(tmp_path: Path, redis_url: str) -> None:
    # Given a stored session, and a server whose store gives Redis 0.2 s per call
    store = RedisWorkingMemoryStore.from_url(redis_url, timeout_seconds=0.2)
    with _client(tmp_path, store) as client:
        before = client.put("/v1/working-memory/s1", json={"messages": [{"role": "user", "content": "first"}]})
        assert before.status_code == 200, before.text

        # When Redis stalls for two seconds (DEBUG SLEEP on another connection) while a PUT replaces the session
        blocker = threading.Thread(target=lambda: redis.Redis.from_url(redis_url).execute_command("DEBUG", "SLEEP", 2))
        blocker.start()
        _wait_until_stalled(redis_url)
        response = client.put("/v1/working-memory/s1", json=PUT_BODY)
        blocker.join()

        # Then the caller gets a 503 with a retry hint, and the session is the old one or the new one whole
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        stored = client.get("/v1/working-memory/s1").json()
        assert [m["content"] for m in stored["messages"]] in (["first"], ["I moved to Lyon"])
        # And no promoted memory outlives a session write that did not happen
        if [m["content"] for m in stored["messages"]] == ["first"]:
            assert client.get("/v1/long-term-memory/new-fact").status_code == 404
    store.close()


def _wait_until_stalled(redis_url: str) -> None:
    """Return once the server no longer answers a ping within 50 ms (the DEBUG SLEEP has begun)."""
    probe = redis.Redis.from_url(redis_url, socket_timeout=0.05)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            probe.ping()
        except redis.exceptions.TimeoutError:
            return
        time.sleep(0.01)
    raise AssertionError("the Redis server never stalled")


def test_the_long_term_service_is_built_on_the_first_promotion_only(tmp_path: Path) -> None:
    # Given long-term memory on (the default), a working-memory GET and a PUT with no new memories build
    # neither the long-term service nor its store and embedder (a cold start's opensearch-py and Bedrock
    # or OpenAI clients); the first PUT with a new memory builds it and promotes as before
    container = Container(make_settings(tmp_path), language_model=None)
    assert container.settings.long_term_memory
    built = ("long_term_service", "long_term_store", "embedder")
    with TestClient(create_app(container)) as client:
        assert client.put("/v1/working-memory/s1", json={"messages": PUT_BODY["messages"]}).status_code == 200
        assert client.get("/v1/working-memory/s1").status_code == 200
        assert [name for name in built if name in container.__dict__] == []
        response = client.put("/v1/working-memory/s1", json=PUT_BODY)
        assert response.status_code == 200, response.text
        assert response.headers["x-agent-memory-promotion"].startswith("promoted")
        assert [name for name in built if name in container.__dict__] == list(built)
        assert response.json()["memories"][0]["persisted_at"] is not None
        assert _long_term_ids(client) == ["new-fact"]
