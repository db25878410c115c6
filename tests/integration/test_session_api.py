"""The Memory Platform session API (issue 12 item 1) on both working-memory stores (SQLite, a real
redis-server), in-process and over real HTTP: its routes, the round trip with the AMS routes, atomic appends,
the item limit, priming, tenants, bad input and a store that is down."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from agent_memory.http.app import create_app
from tests.fixtures.app import LiveServer, make_container, serve_in_thread
from tests.fixtures.redis_process import free_port

SESSIONS = "/api/v1/working-memory/sessions"


def item(content: str, **fields: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **fields}


# -- the routes -----------------------------------------------------------------------------------------


def test_create_then_get_shows_an_empty_session_with_its_ttl_and_limit(api: TestClient) -> None:
    created = api.post(SESSIONS, json={"session_id": "s1", "subject": "user-7"})
    assert created.status_code == 201, created.text
    got = api.get(f"{SESSIONS}/s1")
    assert got.status_code == 200
    body = got.json()
    assert body == created.json()
    assert {k: body[k] for k in ("session_id", "tenant_id", "subject", "items", "item_count", "max_items",
                                 "token_count", "primed_memory_ids", "primed_memories", "ttl_seconds")} == {
        "session_id": "s1", "tenant_id": "default", "subject": "user-7", "items": [], "item_count": 0,
        "max_items": 50, "token_count": 0, "primed_memory_ids": [], "primed_memories": [], "ttl_seconds": 3600}
    assert 3590 <= body["ttl"] <= 3600


def test_create_takes_ttl_and_max_items_and_refuses_an_existing_id(api: TestClient) -> None:
    assert api.post(SESSIONS, json={"session_id": "s1", "ttl": 60, "max_items": 5}).status_code == 201
    body = api.get(f"{SESSIONS}/s1").json()
    assert (body["ttl_seconds"], body["max_items"]) == (60, 5)
    again = api.post(SESSIONS, json={"session_id": "s1"})
    assert again.status_code == 409
    assert again.json() == {"detail": "Session s1 already exists"}


def test_a_missing_session_is_404(api: TestClient) -> None:
    response = api.get(f"{SESSIONS}/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Session nope not found"}


def test_an_append_creates_the_session_and_updates_items_and_token_count(api: TestClient) -> None:
    first = api.post(f"{SESSIONS}/s1/messages", json=item("I moved to Lisbon", timestamp="2025-03-01T10:00:00Z"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["max_items"] == 50 and body["ttl_seconds"] == 3600  # created by this API: its defaults
    assert [(i["role"], i["content"], i["timestamp"], i["extracted"]) for i in body["items"]] == [
        ("user", "I moved to Lisbon", "2025-03-01T10:00:00Z", False)]
    tokens = body["token_count"]
    assert tokens > 0

    second = api.post(f"{SESSIONS}/s1/messages", json={"role": "assistant", "content": "How do you like it there?",
                                                        "id": "m-2"}).json()
    assert second["item_count"] == 2 and second["items"][1]["id"] == "m-2"
    assert second["token_count"] > tokens
    assert api.get(f"{SESSIONS}/s1").json()["items"] == second["items"]


def test_a_session_written_through_one_api_reads_back_through_the_other(api: TestClient) -> None:
    # Given a session created and appended to through the session API, with a subject
    api.post(SESSIONS, json={"session_id": "s1", "subject": "user-7"})
    api.post(f"{SESSIONS}/s1/messages", json=item("I collect vinyl", id="m1"))
    # Then the AMS GET shows the same message, the subject as the user, and not the session API's settings
    ams = api.get("/v1/working-memory/s1").json()
    assert ams["user_id"] == "user-7"
    assert [(m["id"], m["content"]) for m in ams["messages"]] == [("m1", "I collect vinyl")]
    assert "message_limit" not in ams and "primed_memory_ids" not in ams

    # Given a session written by an AMS PUT (with a namespace and user)
    api.put("/v1/working-memory/s2", json={"namespace": "ns", "user_id": "u", "messages": [
        {"id": "a", "role": "user", "content": "hello"}]})
    # Then the session API reads it, and an append lands in that same session
    got = api.get(f"{SESSIONS}/s2").json()
    assert (got["subject"], got["max_items"], [i["id"] for i in got["items"]]) == ("u", None, ["a"])
    api.post(f"{SESSIONS}/s2/messages", json=item("again", id="b"))
    ams = api.get("/v1/working-memory/s2", params={"namespace": "ns", "user_id": "u"}).json()
    assert [m["id"] for m in ams["messages"]] == ["a", "b"]


def test_a_put_replaces_and_an_append_after_it_is_kept(api: TestClient) -> None:
    api.post(f"{SESSIONS}/s1/messages", json=item("old", id="old"))
    api.put("/v1/working-memory/s1", json={"messages": [{"id": "new", "role": "user", "content": "replaced"}]})
    api.post(f"{SESSIONS}/s1/messages", json=item("after", id="after"))
    body = api.get(f"{SESSIONS}/s1").json()
    assert [i["id"] for i in body["items"]] == ["new", "after"]
    assert body["max_items"] == 50  # the AMS PUT kept the session's own limit


def test_fifty_concurrent_appends_over_http_keep_fifty(live_server: LiveServer) -> None:
    # Given 50 clients appending to one session at once, over real HTTP
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        def append(n: int) -> int:
            return http.post(f"{SESSIONS}/s1/messages", json=item(f"message {n}", id=f"m{n}")).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(append, range(50)))
        # Then every append answered 200 and every message is stored, exactly once
        assert statuses == [200] * 50
        body = http.get(f"{SESSIONS}/s1").json()
    assert body["item_count"] == 50
    assert sorted(i["id"] for i in body["items"]) == sorted(f"m{n}" for n in range(50))


def test_concurrent_appends_over_http_stop_exactly_at_max_messages_per_session(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given a server whose sessions hold at most 20 messages, and 40 clients appending to one session at once
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    container = make_container(tmp_path, redis_url=redis_url, max_messages_per_session=20, long_term_memory=False)
    for server in serve_in_thread(container):
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            def append(n: int) -> int:
                return http.post(f"{SESSIONS}/s1/messages", json=item(f"message {n}", id=f"m{n}")).status_code

            with ThreadPoolExecutor(max_workers=40) as pool:
                statuses = list(pool.map(append, range(40)))
            body = http.get(f"{SESSIONS}/s1").json()
    # Then exactly 20 were stored and the other 20 answered 413: the limit is checked inside the append
    assert sorted(statuses) == [200] * 20 + [413] * 20
    assert body["item_count"] == 20
    assert sorted(i["id"] for i in body["items"]) == sorted(f"m{n}" for n, s in enumerate(statuses) if s == 200)


# -- the item limit ---------------------------------------------------------------------------------------


# The store's rule (only extracted messages are dropped) on every store: test_session_store.py; with real
# extraction: test_session_api_extraction.py.


def test_more_than_max_messages_per_session_is_413_naming_it(tmp_path: Path) -> None:
    container = make_container(tmp_path, max_messages_per_session=3)
    with TestClient(create_app(container)) as api:
        for n in range(3):
            assert api.post(f"{SESSIONS}/s1/messages", json=item(f"m{n}")).status_code == 200
        refused = api.post(f"{SESSIONS}/s1/messages", json=item("one too many"))
        assert refused.status_code == 413
        assert "MAX_MESSAGES_PER_SESSION" in refused.json()["detail"]
        assert api.get(f"{SESSIONS}/s1").json()["item_count"] == 3
        over = api.post(SESSIONS, json={"session_id": "s2", "max_items": 4})
        assert over.status_code == 413 and "MAX_MESSAGES_PER_SESSION" in over.json()["detail"]


# -- priming ----------------------------------------------------------------------------------------------


def test_prime_loads_records_reports_unknown_ids_and_the_session_returns_them(api: TestClient) -> None:
    api.post("/v1/long-term-memory/", json={"memories": [
        {"id": "r1", "text": "User likes green tea"}, {"id": "r2", "text": "User lives in Lisbon"}]})
    api.post(SESSIONS, json={"session_id": "s1"})
    api.post(f"{SESSIONS}/s1/messages", json=item("hi", id="m1"))

    primed = api.post(f"{SESSIONS}/s1/prime", json=["r1", "missing", "r2"])
    assert primed.status_code == 200, primed.text
    body = primed.json()
    assert body["unknown_memory_ids"] == ["missing"]
    assert body["primed_memory_ids"] == ["r1", "r2"]
    assert [r["text"] for r in body["primed_memories"]] == ["User likes green tea", "User lives in Lisbon"]
    # The object form, priming again: no duplicates
    again = api.post(f"{SESSIONS}/s1/prime", json={"memory_ids": ["r2"]}).json()
    assert again["primed_memory_ids"] == ["r1", "r2"] and again["unknown_memory_ids"] == []

    got = api.get(f"{SESSIONS}/s1").json()
    assert [r["id"] for r in got["primed_memories"]] == ["r1", "r2"]
    assert [i["id"] for i in got["items"]] == ["m1"]  # messages untouched
    ams = api.get("/v1/working-memory/s1").json()
    assert [m["id"] for m in ams["memories"]] == ["r1", "r2"]
    assert all(m["persisted_at"] for m in ams["memories"])  # already long-term: an AMS PUT will not re-promote


def test_prime_of_a_missing_session_is_404_and_of_only_unknown_ids_reports_them(api: TestClient) -> None:
    assert api.post(f"{SESSIONS}/nope/prime", json=["r1"]).status_code == 404
    api.post(SESSIONS, json={"session_id": "s1"})
    body = api.post(f"{SESSIONS}/s1/prime", json=["x", "y"]).json()
    assert (body["unknown_memory_ids"], body["primed_memory_ids"]) == (["x", "y"], [])


def test_prime_without_long_term_memory_is_400_naming_the_setting(tmp_path: Path) -> None:
    with TestClient(create_app(make_container(tmp_path, long_term_memory=False))) as api:
        api.post(SESSIONS, json={"session_id": "s1"})
        response = api.post(f"{SESSIONS}/s1/prime", json=["r1"])
        assert response.status_code == 400
        assert "LONG_TERM_MEMORY" in response.json()["detail"]


def test_primed_ids_and_the_limit_survive_an_ams_put(api: TestClient) -> None:
    api.post("/v1/long-term-memory/", json={"memories": [{"id": "r1", "text": "User likes green tea"}]})
    api.post(SESSIONS, json={"session_id": "s1", "max_items": 7})
    api.post(f"{SESSIONS}/s1/prime", json=["r1"])
    ams = api.get("/v1/working-memory/s1").json()
    # The AMS client's append: a GET, then the whole document PUT back
    ams["messages"].append({"id": "m1", "role": "user", "content": "hello"})
    assert api.put("/v1/working-memory/s1", json=ams).status_code == 200
    body = api.get(f"{SESSIONS}/s1").json()
    assert (body["max_items"], body["primed_memory_ids"], [r["id"] for r in body["primed_memories"]]) == (
        7, ["r1"], ["r1"])
    # A PUT that drops the primed record: it is no longer shown as primed
    api.put("/v1/working-memory/s1", json={"messages": ams["messages"]})
    assert api.get(f"{SESSIONS}/s1").json()["primed_memories"] == []


# -- tenants ----------------------------------------------------------------------------------------------


def test_the_tenant_comes_from_the_caller_and_a_different_body_tenant_is_403(api: TestClient) -> None:
    acme = {"x-tenant-id": "acme"}
    created = api.post(SESSIONS, json={"session_id": "s1", "tenant_id": "acme"}, headers=acme)
    assert created.status_code == 201 and created.json()["tenant_id"] == "acme"
    assert api.get(f"{SESSIONS}/s1").status_code == 404  # DEFAULT_TENANT has no such session
    assert api.get(f"{SESSIONS}/s1", headers=acme).status_code == 200

    refused = api.post(SESSIONS, json={"session_id": "s2", "tenant_id": "globex"}, headers=acme)
    assert refused.status_code == 403
    assert "globex" in refused.json()["detail"]
    append = api.post(f"{SESSIONS}/s2/messages", json=item("x", tenant_id="default"), headers=acme)
    assert append.status_code == 403
    assert api.get(f"{SESSIONS}/s2", headers=acme).status_code == 404  # nothing was written
    assert api.get(f"{SESSIONS}/s2").status_code == 404


# -- bad input and failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "loc"), [
    (SESSIONS, {}, ["body", "session_id"]),
    (SESSIONS, {"session_id": "a/b"}, ["body", "session_id"]),
    (SESSIONS, {"session_id": "s1", "ttl": 0}, ["body", "ttl"]),
    (SESSIONS, {"session_id": "s1", "max_items": 0}, ["body", "max_items"]),
    (f"{SESSIONS}/s1/messages", {"content": "x"}, ["body", "role"]),
    (f"{SESSIONS}/s1/messages", {"role": "user"}, ["body", "content"]),
    (f"{SESSIONS}/s1/messages", {"role": "user", "content": "x", "timestamp": "yesterday"}, ["body", "timestamp"]),
    (f"{SESSIONS}/s1/prime", [], ["body"]),
])
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    api: TestClient, path: str, body: Any, loc: list[str]
) -> None:
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert any(error["loc"][: len(loc)] == loc for error in response.json()["detail"]), response.json()
    assert api.get("/v1/working-memory/").json()["total"] == 0


def test_blank_content_is_400_too_long_is_413_and_nothing_is_stored(tmp_path: Path) -> None:
    container = make_container(tmp_path, max_message_chars=10)
    with TestClient(create_app(container)) as api:
        blank = api.post(f"{SESSIONS}/s1/messages", json=item("   "))
        assert blank.status_code == 400 and "empty" in blank.json()["detail"]
        long = api.post(f"{SESSIONS}/s1/messages", json=item("x" * 11))
        assert long.status_code == 413 and "MAX_MESSAGE_CHARS" in long.json()["detail"]
        future = api.post(f"{SESSIONS}/s1/messages", json=item("hi", timestamp="2999-01-01T00:00:00Z"))
        assert future.status_code == 422
        assert api.get(f"{SESSIONS}/s1").status_code == 404


def test_redis_down_is_503_with_retry_after(tmp_path: Path) -> None:
    container = make_container(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_seconds=0.2)
    with TestClient(create_app(container)) as api:
        for method, path, body in (("POST", SESSIONS, {"session_id": "s1"}), ("GET", f"{SESSIONS}/s1", None),
                                   ("POST", f"{SESSIONS}/s1/messages", item("hi")),
                                   ("POST", f"{SESSIONS}/s1/prime", ["r1"])):
            response = api.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["Retry-After"] == "1"
            assert "redis" in response.json()["detail"]


def test_openapi_documents_the_routes_under_their_own_tag(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    operations = {(m, p): op for p, ops in paths.items() if p.startswith(SESSIONS) for m, op in ops.items()}
    assert set(operations) == {("post", SESSIONS), ("get", SESSIONS + "/{session_id}"),
                               ("post", SESSIONS + "/{session_id}/messages"),
                               ("post", SESSIONS + "/{session_id}/prime")}
    for op in operations.values():
        assert op["tags"] == ["memory platform sessions"]
        assert {"422", "503"} <= set(op["responses"])
    assert {"403", "409"} <= set(operations[("post", SESSIONS)]["responses"])  # a body tenant_id not the caller's
    assert "403" in operations[("post", SESSIONS + "/{session_id}/messages")]["responses"]
