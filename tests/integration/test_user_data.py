"""User data rights over real HTTP (uvicorn on loopback) with the real routes, on both working-memory
stores (SQLite, a real redis-server) and both long-term stores (SQLite, the OpenSearch test node): export
one user's data and delete it, leaving the other user, the same user id in another tenant and, for a
namespace-limited call, the user's other namespaces untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_memory.domain.models import MemoryMessage, MemoryRecord, SessionKey, WorkingMemory
from agent_memory.domain.summary_views import SummaryViewPartitionResult, Task
from agent_memory.domain.tasks import ExtractionTask, decode_task
from agent_memory.services.extraction_scheduler import session_task_id
from agent_memory.services.summary_views import PARTITIONS
from agent_memory.services.task_records import TaskRecords
from tests.fixtures.app import WITH_OPENSEARCH, LiveServer, make_container, serve_in_thread
from tests.fixtures.redis_process import free_port

OTHER_TENANT = "other"
ALICE_RECORDS = {"a-wm", "a-n2", "a-none"}
MODES = ("semantic", "keyword", "hybrid")


@pytest.fixture(params=WITH_OPENSEARCH)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        yield client


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _record(record_id: str, text: str, **scope: str) -> dict[str, Any]:
    return {"id": record_id, "text": text, "memory_type": "semantic", "discrete_memory_extracted": "t", **scope}


def _task_record_id(key: SessionKey) -> str:
    return session_task_id(ExtractionTask.for_session(key, generation="g"))


@pytest.fixture
def seeded(http: httpx.Client, live_server: LiveServer) -> LiveServer:
    """alice in namespaces n1 and n2 (and a record with no namespace), bob in n1 with the same session id,
    and alice again, same ids, in another tenant."""
    _ok(http.put("/v1/working-memory/s1", json={
        "namespace": "n1", "user_id": "alice", "context": "Alice is planning a trip",
        "data": {"seat": "window"}, "messages": [{"role": "user", "content": "Book me a flight to Lisbon"}],
        "memories": [_record("a-wm", "Alice prefers window seats")],
    }))
    _ok(http.put("/v1/working-memory/s2", json={
        "namespace": "n2", "user_id": "alice", "messages": [{"role": "user", "content": "Remind me about cello"}],
    }))
    _ok(http.put("/v1/working-memory/s1", json={
        "namespace": "n1", "user_id": "bob", "messages": [{"role": "user", "content": "Bob wants an aisle seat"}],
    }))
    _ok(http.post("/v1/long-term-memory/", json={"memories": [
        _record("a-n2", "Alice plays the cello on Sundays", namespace="n2", user_id="alice"),
        _record("a-none", "Alice is allergic to peanuts", user_id="alice"),
        _record("b-1", "Bob prefers window seats", namespace="n1", user_id="bob"),
        _record("b-2", "Bob plays the cello badly", namespace="n1", user_id="bob"),
    ]}))
    container = live_server.container
    # The same user, namespace, session and record ids in another tenant (through the services: the
    # caller's tenant comes from the credential, never from the request).
    other_key = SessionKey(tenant=OTHER_TENANT, namespace="n1", user_id="alice", session_id="s1")
    container.working_memory_store.put(other_key, WorkingMemory(
        session_id="s1", namespace="n1", user_id="alice", messages=[MemoryMessage(role="user", content="other")]))
    container.long_term_service.create(OTHER_TENANT, [MemoryRecord(
        id="a-wm", text="Alice prefers window seats", namespace="n1", user_id="alice")])
    # Extraction history: each session's task record, and summary-view results per user.
    records = TaskRecords(container.document_store)
    for user, namespace, session in (("alice", "n1", "s1"), ("alice", "n2", "s2"), ("bob", "n1", "s1")):
        key = SessionKey(tenant="default", namespace=namespace, user_id=user, session_id=session)
        records.put("default", Task(id=_task_record_id(key), type="extract_session", status="success"))
    records.put(OTHER_TENANT, Task(id=_task_record_id(other_key), type="extract_session"))
    for user in ("alice", "bob"):
        result = SummaryViewPartitionResult(view_id="v1", group={"user_id": user}, summary=f"{user} summary")
        container.document_store.put("default", PARTITIONS, result.key, result.model_dump_json())
    return live_server


def _search_ids(http: httpx.Client, text: str, mode: str) -> set[str]:
    body = _ok(http.post("/v1/long-term-memory/search", json={"text": text, "search_mode": mode, "limit": 50}))
    return {m["id"] for m in body["memories"]}


def _other_tenant_intact(server: LiveServer) -> None:
    container = server.container
    key = SessionKey(tenant=OTHER_TENANT, namespace="n1", user_id="alice", session_id="s1")
    assert container.working_memory_store.get(key) is not None
    assert [r.id for r in container.long_term_service.get_many(OTHER_TENANT, ["a-wm"])] == ["a-wm"]
    assert TaskRecords(container.document_store).get(OTHER_TENANT, _task_record_id(key)) is not None


def test_export_holds_everything_of_the_user_and_nothing_of_anyone_else(
    http: httpx.Client, seeded: LiveServer
) -> None:
    # When alice's data is exported
    response = http.get("/v1/users/alice/export")

    # Then it is JSON with every session (whole), every record (no vectors), her task records and results
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    export = response.json()
    assert (export["tenant"], export["user_id"], export["namespace"]) == ("default", "alice", None)
    assert export["exported_at"].endswith("Z")
    sessions = {(s["namespace"], s["session_id"]): s for s in export["working_memory"]}
    assert set(sessions) == {("n1", "s1"), ("n2", "s2")}
    trip = sessions[("n1", "s1")]
    assert trip["context"] == "Alice is planning a trip" and trip["data"] == {"seat": "window"}
    assert [m["content"] for m in trip["messages"]] == ["Book me a flight to Lisbon"]
    assert [m["id"] for m in trip["memories"]] == ["a-wm"]
    records = {r["id"]: r for r in export["long_term_memories"]}
    assert set(records) == ALICE_RECORDS
    assert all(r["user_id"] == "alice" and "vector" not in r for r in records.values())
    assert records["a-wm"]["session_id"] == "s1" and records["a-n2"]["text"] == "Alice plays the cello on Sundays"
    assert len(export["task_records"]) == 2 and all(t["type"] == "extract_session" for t in export["task_records"])
    assert [r["summary"] for r in export["summary_view_results"]] == ["alice summary"]
    assert export["counts"] == {"working_memory": 2, "long_term_memories": 3, "task_records": 2,
                                "summary_view_results": 1}
    # and nothing of bob or of the other tenant
    assert "Bob" not in response.text and "bob" not in response.text and '"other"' not in response.text


def test_export_of_one_namespace_and_of_a_user_with_nothing(http: httpx.Client, seeded: LiveServer) -> None:
    export = _ok(http.get("/v1/users/alice/export", params={"namespace": "n1"}))
    assert [(s["namespace"], s["session_id"]) for s in export["working_memory"]] == [("n1", "s1")]
    assert [r["id"] for r in export["long_term_memories"]] == ["a-wm"]
    assert export["counts"]["task_records"] == 1

    nobody = _ok(http.get("/v1/users/nobody/export"))
    assert nobody["counts"] == {"working_memory": 0, "long_term_memories": 0, "task_records": 0,
                                "summary_view_results": 0}
    assert nobody["working_memory"] == [] and nobody["long_term_memories"] == []


def test_delete_removes_the_user_from_every_store_and_every_search_mode(
    http: httpx.Client, seeded: LiveServer
) -> None:
    container = seeded.container
    queue: Any = container.task_queue  # the embedded queue on every backend here
    alice_key = SessionKey(tenant="default", namespace="n1", user_id="alice", session_id="s1")
    bob_key = SessionKey(tenant="default", namespace="n1", user_id="bob", session_id="s1")
    queue.enqueue(ExtractionTask.for_session(alice_key, generation="g1"))  # no worker runs in this server
    queue.enqueue(ExtractionTask.for_session(bob_key, generation="g1"))
    # Given every search mode has served alice's records (SQLite's caches are warm and must catch up)
    for mode in MODES:
        assert "a-wm" in _search_ids(http, "window seats", mode)

    # When alice is deleted
    deletion = _ok(http.delete("/v1/users/alice"))

    # Then the answer counts what went from each store
    assert {k: deletion[k] for k in ("working_memory_sessions", "long_term_memories", "pending_tasks",
                                     "task_records", "summary_view_results")} == {
        "working_memory_sessions": 2, "long_term_memories": 3, "pending_tasks": 1, "task_records": 2,
        "summary_view_results": 1}
    assert deletion["user_id"] == "alice" and deletion["namespace"] is None
    # her sessions are gone from get and list
    for namespace, session in (("n1", "s1"), ("n2", "s2")):
        got = http.get(f"/v1/working-memory/{session}", params={"namespace": namespace, "user_id": "alice"})
        assert got.status_code == 404
    assert _ok(http.get("/v1/working-memory/", params={"user_id": "alice"}))["sessions"] == []
    # her records from get and from every search mode
    for record_id in ALICE_RECORDS:
        assert http.get(f"/v1/long-term-memory/{record_id}").status_code == 404
    for mode in MODES:
        for text in ("window seats", "cello", "peanuts", "Alice"):
            assert not _search_ids(http, text, mode) & ALICE_RECORDS, (mode, text)
        assert "b-1" in _search_ids(http, "window seats", mode)
    listed = _ok(http.post("/v1/long-term-memory/search", json={"text": "", "user_id": {"eq": "alice"}}))
    assert listed["total"] == 0
    # from the prompt
    prompt = _ok(http.post("/v1/memory/prompt", json={"query": "window seats cello peanuts",
                                                       "long_term_search": {"limit": 20}}))
    assert {m["id"] for m in prompt["long_term_memories"]} == {"b-1", "b-2"}
    # her task records and her pending task
    for key in (alice_key, alice_key.model_copy(update={"namespace": "n2", "session_id": "s2"})):
        assert http.get(f"/v1/tasks/{_task_record_id(key)}").status_code == 404
    assert queue.counts() == {"pending": 1, "dead": 0}
    remaining = queue.claim(60)
    assert decode_task(remaining.body).user_id == "bob"

    # and bob and the other tenant's alice are untouched
    assert _ok(http.get("/v1/working-memory/s1", params={"namespace": "n1", "user_id": "bob"}))["messages"]
    assert http.get(f"/v1/tasks/{_task_record_id(bob_key)}").status_code == 200
    assert _ok(http.get("/v1/users/bob/export"))["counts"] == {
        "working_memory": 1, "long_term_memories": 2, "task_records": 1, "summary_view_results": 1}
    _other_tenant_intact(seeded)

    # A second delete finds nothing: zeros
    again = _ok(http.delete("/v1/users/alice"))
    assert [again[k] for k in ("working_memory_sessions", "long_term_memories", "pending_tasks", "task_records",
                               "summary_view_results")] == [0, 0, 0, 0, 0]


def test_delete_of_one_namespace_keeps_the_users_other_namespaces(http: httpx.Client, seeded: LiveServer) -> None:
    deletion = _ok(http.delete("/v1/users/alice", params={"namespace": "n1"}))
    assert (deletion["working_memory_sessions"], deletion["long_term_memories"]) == (1, 1)
    assert http.get("/v1/working-memory/s1", params={"namespace": "n1", "user_id": "alice"}).status_code == 404
    assert http.get("/v1/working-memory/s2", params={"namespace": "n2", "user_id": "alice"}).status_code == 200
    assert {r["id"] for r in _ok(http.get("/v1/users/alice/export"))["long_term_memories"]} == {"a-n2", "a-none"}
    for mode in MODES:
        assert "a-wm" not in _search_ids(http, "window seats", mode)
    _other_tenant_intact(seeded)


def test_bad_input_is_a_4xx(http: httpx.Client, seeded: LiveServer) -> None:
    assert http.get("/v1/users/alice/export", params={"namespace": ""}).status_code == 422
    assert http.delete("/v1/users/al%01ice").status_code == 422
    assert http.get("/v1/users/" + "x" * 300 + "/export").status_code == 422
    assert http.post("/v1/users/alice").status_code == 405
    # nothing was deleted by any of them
    assert json.loads(http.get("/v1/users/alice/export").text)["counts"]["long_term_memories"] == 3


def test_a_store_that_is_down_is_a_503_before_anything_is_sent(tmp_path: Path) -> None:
    # Redis (working memory and documents) on a port nothing listens on
    container = make_container(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    container.long_term_service.create("default", [MemoryRecord(id="m1", text="Alice likes tea", user_id="alice")])
    for server in serve_in_thread(container):
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            exported = client.get("/v1/users/alice/export")
            assert exported.status_code == 503 and exported.headers["Retry-After"] == "1"
            assert "redis" in exported.json()["detail"]
            # The deletion writes its tombstone first: it fails there, and nothing is deleted
            assert client.delete("/v1/users/alice").status_code == 503
    assert [r.id for r in container.long_term_store.user_records("default", "alice")] == ["m1"]
