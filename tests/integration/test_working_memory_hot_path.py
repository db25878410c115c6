"""The working-memory GET's hot path (`WorkingMemoryGet` ahead of the documented route, reads on the event
loop through `RedisSessionReader`, the stored JSON answered as it is) answers exactly what the documented
FastAPI route answers on the blocking store: the same status and the same JSON, for generated sessions
(written by PUT, by the session API's appends and by a prime) and generated requests (good and bad ids,
known, unknown, repeated and invalid query parameters). Also: which apps read on the event loop."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_memory.adapters.redis_working_memory import RedisSessionReader
from agent_memory.http.app import create_app
from agent_memory.http.routers.working_memory import WorkingMemoryGet, WorkingMemoryPut
from tests.fixtures.app import make_container

pytestmark = pytest.mark.redis

SESSIONS = "/api/v1/working-memory/sessions"


class Apps:
    """The same container behind two apps: the hot one served (its lifespan opened the event-loop reader)
    and one with neither the hot path nor the reader, as the documented route alone answers."""

    def __init__(self, hot: TestClient, plain: TestClient) -> None:
        self.hot = hot
        self.plain = plain

    def both(self, url: str) -> tuple[Any, Any]:
        hot = self.hot.get(url)
        with patch.object(WorkingMemoryGet, "arguments", staticmethod(lambda scope: None)):  # always hand over
            plain = self.plain.get(url)
        return hot, plain


@pytest.fixture
def apps(tmp_path: Path, redis_url: str) -> Iterator[Apps]:
    container = make_container(tmp_path, redis_url=redis_url)
    app = create_app(container)
    with TestClient(app) as hot:
        assert isinstance(app.state.session_reader, RedisSessionReader)
        plain_app = create_app(container)
        plain = TestClient(plain_app)  # no `with`: no lifespan, so no reader
        assert plain_app.state.session_reader is None
        yield Apps(hot, plain)


def assert_same(apps: Apps, url: str) -> Any:
    hot, plain = apps.both(url)
    assert (hot.status_code, hot.json()) == (plain.status_code, plain.json()), url
    assert hot.headers["content-type"] == plain.headers["content-type"]
    return hot


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(str.strip)
scope_value = st.sampled_from(["ns-a", "ns b", "u1", "é-user"])
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]), "content": text},
    optional={"created_at": st.sampled_from(["2024-02-29T12:00:00Z", "2025-01-01T00:00:00+02:00", 1700000000])},
)
session_body = st.fixed_dictionaries(
    {"messages": st.lists(message, max_size=4)},
    optional={
        "data": st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.none())),
        "context": text,
        "ttl_seconds": st.integers(1, 10**6),
        "namespace": scope_value,
        "user_id": scope_value,
        "memories": st.lists(st.fixed_dictionaries({"text": text}), max_size=2),
    },
)
query_key = st.sampled_from(
    ["namespace", "user_id", "model_name", "context_window_max", "recent_messages_limit", "unknown"]
)
query_value = st.sampled_from(
    ["", "0", "1", "-1", "3", "40", "abc", "gpt-4o", "1e3", "99999999999999999999999", "ns-a", "u1"]
)
query = st.lists(st.tuples(query_key, query_value), max_size=4)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=session_body, pairs=query, how=st.sampled_from(["as given", "missing id", "odd id"]))
def test_the_hot_path_answers_what_the_documented_route_answers(
    apps: Apps, body: dict[str, Any], pairs: list[tuple[str, str]], how: str
) -> None:
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    stored = apps.hot.put(f"/v1/working-memory/{session_id}", json=body)
    assert stored.status_code == 200, stored.text
    path_id = {"as given": session_id, "missing id": "nope", "odd id": quote(" s", safe="")}[how]

    assert_same(apps, f"/v1/working-memory/{path_id}" + (f"?{urlencode(pairs)}" if pairs else ""))


@pytest.mark.parametrize(
    "suffix",
    ["", "?user_id=u1", "?user_id=u1&namespace=ns-a", "?user_id=u2", "?model_name=gpt-4o", "?context_window_max=5",
     "?recent_messages_limit=1", "?recent_messages_limit=0", "?namespace=a&namespace=b", "?other=1",
     "?context_window_max=0", "?context_window_max=x"],
)  # fmt: skip
def test_sessions_written_by_appends_and_a_prime_answer_alike(apps: Apps, suffix: str) -> None:
    api = apps.hot
    created = api.post(SESSIONS, json={"session_id": "s1", "subject": "u1", "max_items": 3})
    assert created.status_code == 201, created.text
    for i in range(5):  # past the session's limit of 3: without an LLM the oldest go to long-term memory
        appended = api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": f"m{i} ünï"})
        assert appended.status_code == 200, appended.text
    got = assert_same(apps, f"/v1/working-memory/s1{suffix}")
    if suffix in ("", "?user_id=u1"):
        assert [m["content"] for m in got.json()["messages"]] == [f"m{i} ünï" for i in (2, 3, 4)]
        assert "message_limit" not in got.json()  # a session-API setting, not in the AMS answer

    records = api.post("/v1/long-term-memory/", json={"memories": [{"id": "r1", "text": "User likes tea"}]})
    assert records.status_code == 200, records.text
    primed = api.post(f"{SESSIONS}/s1/prime", json=["r1"])
    assert primed.status_code == 200, primed.text
    got = assert_same(apps, f"/v1/working-memory/s1{suffix}")
    if suffix == "":
        assert [m["id"] for m in got.json()["memories"]] == ["r1"]


def test_a_write_after_a_read_is_read_at_once(apps: Apps) -> None:
    api = apps.hot
    for i in range(3):
        put = api.put("/v1/working-memory/s1", json={"messages": [{"role": "user", "content": f"v{i}"}]})
        assert put.status_code == 200, put.text
        assert [m["content"] for m in api.get("/v1/working-memory/s1").json()["messages"]] == [f"v{i}"]
    api.delete("/v1/working-memory/s1")
    assert api.get("/v1/working-memory/s1").status_code == 404


def test_where_reads_happen_on_the_event_loop(tmp_path: Path, redis_url: str) -> None:
    redis_app = create_app(make_container(tmp_path / "r", redis_url=redis_url))
    with TestClient(redis_app):
        assert isinstance(redis_app.state.session_reader, RedisSessionReader)
    assert redis_app.state.session_reader is None  # closed with the lifespan

    sqlite_app = create_app(make_container(tmp_path / "s"))
    with TestClient(sqlite_app):
        assert sqlite_app.state.session_reader is None  # SQLite reads stay on worker threads

    lambda_app = create_app(make_container(tmp_path / "l", redis_url=redis_url), inline_blocking_calls=True)
    with TestClient(lambda_app):
        assert lambda_app.state.session_reader is None  # Lambda: no lifespan of its own, reads inline


def test_a_redis_that_cannot_be_asked_at_start_up_leaves_reads_on_the_blocking_path(tmp_path: Path) -> None:
    # REDIS_CLUSTER=auto asks the server at start-up whether it is a cluster; with Redis down the server
    # still starts, without the event-loop reader, and answers 503s (and serves again once Redis is back)
    from tests.fixtures.redis_process import free_port

    app = create_app(make_container(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_cluster="auto"))
    with TestClient(app) as api:
        assert app.state.session_reader is None
        response = api.get("/v1/working-memory/s1")
    assert response.status_code == 503 and "redis" in response.json()["detail"], response.text


def test_a_redis_token_from_a_secret_keeps_reads_on_the_blocking_store(tmp_path: Path, redis_url: str) -> None:
    # The async client takes credentials from the URL only, so a secret AUTH token means no reader
    container = make_container(tmp_path, redis_url=redis_url, redis_auth_token_secret="arn:aws:secretsmanager:x")
    assert container.session_reader() is None


def test_a_prime_makes_the_reader_decode_the_session(apps: Apps) -> None:
    # A prime rewrites the document with the json module: the stored JSON is no longer the models' own,
    # so the reader must decode it rather than answer it as stored
    from agent_memory.domain.models import SessionJson, SessionKey, WorkingMemory

    api = apps.hot
    assert api.post(SESSIONS, json={"session_id": "s1"}).status_code == 201
    assert api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": "hi"}).status_code == 200
    reader = api.app.state.session_reader  # type: ignore[attr-defined]
    key = SessionKey(tenant="default", session_id="s1")
    assert isinstance(api.portal.call(lambda: reader.get(key, as_json=True)), SessionJson)  # type: ignore[union-attr]
    assert api.post("/v1/long-term-memory/", json={"memories": [{"id": "r1", "text": "tea"}]}).status_code == 200
    assert api.post(f"{SESSIONS}/s1/prime", json=["r1"]).status_code == 200
    after = api.portal.call(lambda: reader.get(key, as_json=True))  # type: ignore[union-attr]
    assert isinstance(after, WorkingMemory) and [m.id for m in after.memories] == ["r1"]


def test_redis_down_is_a_503_on_the_hot_path(tmp_path: Path) -> None:
    from tests.fixtures.redis_process import free_port

    app = create_app(make_container(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_cluster="false"))
    with TestClient(app) as api:
        assert isinstance(app.state.session_reader, RedisSessionReader)
        response = api.get("/v1/working-memory/s1")
    assert response.status_code == 503 and "redis" in response.json()["detail"], response.text
    assert response.headers["retry-after"]


VOLATILE = {"updated_at", "last_accessed", "created_at", "id", "persisted_at"}  # clock- or id-generator-made


def _steady(value: Any) -> Any:
    """A response with what the clock and the id generator made left out, to compare two writes."""
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def _put(client: TestClient, tenant: str, url: str, raw: bytes, content_type: str | None) -> Any:
    headers = {"x-tenant-id": tenant} | ({"content-type": content_type} if content_type else {})
    return client.put(url, content=raw, headers=headers)


raw_body = st.one_of(
    session_body.map(lambda body: json.dumps(body).encode()),
    st.sampled_from([
        b"", b"{", b"[]", b"null", b'{"messages": NaN}',
        b'{"messages": [{"id": "m1", "role": "user", "content": " "}]}',
        b'{"ttl_seconds": 0}', b'{"ttl_seconds": 99999999999}', b'{"messages": "x"}', b'{"data": {"a": Infinity}}',
        b'{"memories": [{"id": "m", "text": "a"}, {"id": "m", "text": "b"}]}', b'{"context": "\\ud800"}',
        b'{"messages": [{"role": "user", "content": "hi", "created_at": "9999-13-01"}]}', b"\xff\xfe",
    ]),
)  # fmt: skip
put_query = st.lists(
    st.tuples(st.sampled_from(["model_name", "context_window_max", "namespace"]), query_value), max_size=3
)
content_type = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", None, "application/merge-patch+json"]
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_body, pairs=put_query, kind=content_type, how=st.sampled_from(["as given", "odd id"]))
def test_the_hot_put_answers_and_stores_what_the_documented_route_does(
    apps: Apps, raw: bytes, pairs: list[tuple[str, str]], kind: str | None, how: str
) -> None:
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    path_id = session_id if how == "as given" else quote("s ", safe="")
    url = f"/v1/working-memory/{path_id}" + (f"?{urlencode(pairs)}" if pairs else "")

    hot = _put(apps.hot, "tenant-hot", url, raw, kind)
    with patch.object(WorkingMemoryPut, "__call__", _always_documented):
        plain = _put(apps.plain, "tenant-plain", url, raw, kind)

    assert hot.status_code == plain.status_code, (url, raw, hot.text, plain.text)
    assert _steady(hot.json()) == _steady(plain.json()), (url, raw)
    assert {k: v for k, v in hot.headers.items() if k.startswith("x-agent-memory")} == {
        k: v for k, v in plain.headers.items() if k.startswith("x-agent-memory")
    }
    stored = [
        apps.plain.get(f"/v1/working-memory/{session_id}", headers={"x-tenant-id": tenant})
        for tenant in ("tenant-hot", "tenant-plain")
    ]
    assert stored[0].status_code == stored[1].status_code
    assert _steady(stored[0].json()) == _steady(stored[1].json())


async def _always_documented(self: WorkingMemoryPut, scope: Any, receive: Any, send: Any) -> None:
    await self.documented.handle(scope, receive, send)


def test_a_chunked_put_over_the_limit_is_a_413_on_the_hot_path(tmp_path: Path, redis_url: str) -> None:
    app = create_app(make_container(tmp_path, redis_url=redis_url, max_request_bytes=1000))
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 2000}]}).encode()
    with TestClient(app) as api:
        json_type = {"content-type": "application/json"}
        chunked = api.put("/v1/working-memory/s1", content=iter([body[:600], body[600:]]), headers=json_type)
        declared = api.put("/v1/working-memory/s1", content=body, headers=json_type)
        assert api.get("/v1/working-memory/s1").status_code == 404  # nothing was stored
    for response in (chunked, declared):
        assert response.status_code == 413 and "MAX_REQUEST_BYTES" in response.text, response.text
