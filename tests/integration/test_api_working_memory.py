"""Working memory through the HTTP API, in-process, against SQLite and a real redis-server (§2 rows 1–5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.openai_llm import OpenAILanguageModel
from agent_memory.domain.errors import InvalidInputError
from agent_memory.http.app import create_app
from tests.fixtures.app import make_container


def _messages(n: int, words: int = 5) -> list[dict[str, str]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " + "word " * words}
        for i in range(n)
    ]


def test_health_reports_time_and_features(api: TestClient) -> None:
    body = api.get("/v1/health").json()
    assert body["now"] > 1_700_000_000_000
    assert body["features"]["llm"] is False


def test_missing_session_is_404_with_detail(api: TestClient) -> None:
    response = api.get("/v1/working-memory/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Session nope not found"}


def test_put_then_get_round_trips_the_session(api: TestClient) -> None:
    # Given a session written with PUT
    body = {
        "messages": [{"role": "user", "content": "hi", "created_at": "2025-01-01T00:00:00Z"}],
        "memories": [],
        "context": "earlier",
        "data": None,
        "namespace": "ns",
        "user_id": "u1",
        "session_id": "ignored-body-id",
        "unknown_field": {"is": "ignored"},
    }
    put = api.put("/v1/working-memory/s1", json=body)
    assert put.status_code == 200, put.text
    # When it is read back with its scope
    got = api.get("/v1/working-memory/s1", params={"namespace": "ns", "user_id": "u1"}).json()
    # Then the path id wins, data defaults to {}, datetimes use Z and no percentages are given
    assert got["session_id"] == "s1"
    assert got["messages"][0]["content"] == "hi"
    assert got["messages"][0]["created_at"] == "2025-01-01T00:00:00Z"
    assert got["messages"][0]["id"]
    assert got["data"] == {} and got["context"] == "earlier"
    assert got["context_percentage_total_used"] is None


def test_get_without_scope_resolves_the_unique_session(api: TestClient) -> None:
    # AMS #235: PUT carries namespace and user in the body; later GET/DELETE omit them
    api.put("/v1/working-memory/s1", json={"messages": _messages(1), "namespace": "ns", "user_id": "u1"})
    assert api.get("/v1/working-memory/s1").json()["user_id"] == "u1"
    assert api.get("/v1/working-memory/s1", params={"user_id": "u1"}).status_code == 200
    assert api.get("/v1/working-memory/s1", params={"user_id": "other"}).status_code == 404
    api.delete("/v1/working-memory/s1")
    assert api.get("/v1/working-memory/s1", params={"namespace": "ns", "user_id": "u1"}).status_code == 404


def test_ambiguous_session_id_is_not_guessed(api: TestClient) -> None:
    api.put("/v1/working-memory/s1", json={"messages": _messages(1), "user_id": "a"})
    api.put("/v1/working-memory/s1", json={"messages": _messages(1), "user_id": "b"})
    assert api.get("/v1/working-memory/s1").status_code == 404
    assert api.get("/v1/working-memory/s1", params={"user_id": "b"}).json()["user_id"] == "b"


def test_list_sessions_filters_and_counts_truly(api: TestClient) -> None:
    for i in range(5):
        api.put(f"/v1/working-memory/s{i}", json={"namespace": "ns" if i < 3 else "other", "user_id": "u"})
    page = api.get("/v1/working-memory/", params={"namespace": "ns", "limit": 2}).json()
    assert page["total"] == 3 and len(page["sessions"]) == 2
    rest = api.get("/v1/working-memory/", params={"namespace": "ns", "limit": 2, "offset": 2}).json()
    assert set(page["sessions"] + rest["sessions"]) == {"s0", "s1", "s2"}
    assert api.get("/v1/working-memory/", params={"user_id": "u"}).json()["total"] == 5
    assert api.get("/v1/working-memory/", params={"limit": 101}).status_code == 422
    assert api.get("/v1/working-memory/", params={"limit": 0}).status_code == 422
    assert api.get("/v1/working-memory/", params={"offset": -1}).status_code == 422


def test_the_service_rejects_a_page_the_stores_cannot_serve(tmp_path: Path) -> None:
    service = make_container(tmp_path).working_memory_service
    for limit, offset in ((0, 0), (10, -1)):
        with pytest.raises(InvalidInputError, match="limit must be >= 1 and offset >= 0"):
            service.list_sessions("t1", namespace=None, user_id=None, limit=limit, offset=offset)


def test_context_percentages_and_lax_numbers(api: TestClient) -> None:
    api.put("/v1/working-memory/s1", json={"messages": _messages(4)})
    got = api.get("/v1/working-memory/s1", params={"context_window_max": "1000"}).json()
    assert 0 < got["context_percentage_total_used"] < got["context_percentage_until_summarization"] <= 100
    by_model = api.get("/v1/working-memory/s1", params={"model_name": "gpt-4o-mini"}).json()
    assert by_model["context_percentage_total_used"] < got["context_percentage_total_used"]


def test_get_truncates_to_the_window_without_changing_storage(api: TestClient) -> None:
    api.put("/v1/working-memory/s1", json={"messages": _messages(10, words=20)})
    small = api.get("/v1/working-memory/s1", params={"context_window_max": 60}).json()
    assert 1 <= len(small["messages"]) < 10
    assert small["messages"][-1]["content"].startswith("message 9")
    assert len(api.get("/v1/working-memory/s1").json()["messages"]) == 10


def test_recent_messages_limit_keeps_newest_in_order(api: TestClient) -> None:
    api.put("/v1/working-memory/s1", json={"messages": _messages(6)})
    got = api.get("/v1/working-memory/s1", params={"recent_messages_limit": 2}).json()
    assert [m["content"].split()[1] for m in got["messages"]] == ["4", "5"]


def test_delete_is_idempotent(api: TestClient) -> None:
    api.put("/v1/working-memory/s1", json={})
    assert api.delete("/v1/working-memory/s1").json() == {"status": "ok"}
    assert api.delete("/v1/working-memory/s1").json() == {"status": "ok"}
    assert api.get("/v1/working-memory/s1").status_code == 404


# --- bad input ------------------------------------------------------------------------------------


def test_blank_message_content_is_400_and_nothing_is_written(api: TestClient) -> None:
    response = api.put("/v1/working-memory/s1", json={"messages": [{"role": "user", "content": "  ", "id": "m1"}]})
    assert response.status_code == 400
    assert response.json()["detail"] == "Message content cannot be empty (message ID: m1)"
    assert api.get("/v1/working-memory/s1").status_code == 404


def test_wrong_types_are_422_naming_the_field(api: TestClient) -> None:
    response = api.put("/v1/working-memory/s1", json={"messages": "not a list"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "messages"]
    response = api.get("/v1/working-memory/s1", params={"context_window_max": "lots"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "context_window_max"]


@pytest.mark.parametrize("ttl", [-5, 0])
def test_non_positive_ttl_is_422(api: TestClient, ttl: int) -> None:
    response = api.put("/v1/working-memory/s1", json={"ttl_seconds": ttl})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "ttl_seconds"]


def test_future_timestamps_are_422(api: TestClient) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = api.put(
        "/v1/working-memory/s1", json={"messages": [{"role": "user", "content": "x", "created_at": future}]}
    )
    assert response.status_code == 422
    assert "in the future" in response.json()["detail"][0]["msg"]  # every 422 has the list shape


def test_blank_memory_text_is_422(api: TestClient) -> None:
    response = api.put("/v1/working-memory/s1", json={"memories": [{"text": " "}]})
    assert response.status_code == 422


def test_oversized_body_is_413_with_the_limit(tmp_path: Path) -> None:
    container = make_container(tmp_path, max_request_bytes=2000)
    with TestClient(create_app(container)) as client:
        response = client.put("/v1/working-memory/s1", json={"messages": _messages(50, words=10)})
    assert response.status_code == 413
    assert "MAX_REQUEST_BYTES" in response.json()["detail"]


def test_too_many_messages_is_413_with_the_limit(tmp_path: Path) -> None:
    container = make_container(tmp_path, max_messages_per_session=3)
    with TestClient(create_app(container)) as client:
        response = client.put("/v1/working-memory/s1", json={"messages": _messages(4)})
        assert response.status_code == 413
        assert "MAX_MESSAGES_PER_SESSION" in response.json()["detail"]
        assert client.get("/v1/working-memory/s1").status_code == 404


# --- faults ---------------------------------------------------------------------------------------


def test_redis_down_is_a_clear_503(tmp_path: Path) -> None:
    from tests.fixtures.app import free_port

    container = make_container(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_seconds=0.5)
    with TestClient(create_app(container)) as client:
        for response in (
            client.get("/v1/working-memory/s1"),
            client.put("/v1/working-memory/s1", json={"messages": _messages(1)}),
            client.get("/v1/working-memory/"),
        ):
            assert response.status_code == 503
            assert response.json()["detail"].startswith("redis unavailable")
            assert response.headers["retry-after"] == "1"
        assert client.get("/v1/health").status_code == 200  # health does not depend on Redis


# --- summarization --------------------------------------------------------------------------------


def test_put_over_threshold_summarizes_with_the_llm(tmp_path: Path, openai_stub) -> None:  # type: ignore[no-untyped-def]
    # Given an LLM and a conversation far over 70% of a 200-token window
    openai_stub.script_chat("The user counted words.")
    llm = OpenAILanguageModel(api_key="test", base_url=openai_stub.base_url, model="gpt-4o-mini")
    with TestClient(create_app(make_container(tmp_path, llm=llm))) as client:
        response = client.put(
            "/v1/working-memory/s1",
            params={"context_window_max": 200},
            json={"messages": _messages(12, words=10), "context": "Earlier: greetings."},
        )
        # Then older messages are folded into context and the newest are kept
        assert response.status_code == 200
        body = response.json()
        assert response.headers["x-agent-memory-summarization"] == "summarized"
        assert body["context"] == "The user counted words."
        assert 1 <= len(body["messages"]) < 12
        assert body["messages"][-1]["content"].startswith("message 11")
        assert body["tokens"] > 0
        assert body["context_percentage_until_summarization"] <= 100
        # and the prompt carried the previous summary and the folded messages
        prompt = openai_stub.requests[-1][1]["messages"][0]["content"]
        assert "Earlier: greetings." in prompt and "message 0" in prompt
        assert client.get("/v1/working-memory/s1").json()["context"] == "The user counted words."


def test_put_over_threshold_without_llm_keeps_everything_and_says_so(api: TestClient) -> None:
    response = api.put(
        "/v1/working-memory/s1", params={"context_window_max": 200}, json={"messages": _messages(12, words=10)}
    )
    assert response.status_code == 200
    assert response.headers["x-agent-memory-summarization"] == "skipped; reason=no-llm-configured"
    assert len(response.json()["messages"]) == 12


def test_llm_failure_during_summarization_keeps_everything(tmp_path: Path, openai_stub) -> None:  # type: ignore[no-untyped-def]
    openai_stub.script_chat({"status": 500}, {"status": 500}, {"status": 500})
    llm = OpenAILanguageModel(api_key="test", base_url=openai_stub.base_url, model="gpt-4o-mini")
    with TestClient(create_app(make_container(tmp_path, llm=llm))) as client:
        response = client.put(
            "/v1/working-memory/s1", params={"context_window_max": 200}, json={"messages": _messages(12, words=10)}
        )
    assert response.status_code == 200
    assert response.headers["x-agent-memory-summarization"] == "skipped; reason=llm-unavailable"
    assert len(response.json()["messages"]) == 12


def test_oversized_chunked_body_without_length_is_413(tmp_path: Path) -> None:
    # A chunked upload declares no Content-Length: the limit must hold on what actually arrives
    container = make_container(tmp_path, max_request_bytes=2000)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b" " * 500

    with TestClient(create_app(container)) as client:
        response = client.put(
            "/v1/working-memory/s1", content=chunks(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json()["detail"] == (
            "request body is more than 2000 bytes; the limit is 2000 bytes (MAX_REQUEST_BYTES)"
        )


@pytest.mark.parametrize("route", ["/v1/working-memory/s1", "/v1/long-term-memory/", "/v1/health"])
async def test_a_chunked_body_over_the_limit_is_read_no_further_than_one_chunk_past_it(
    tmp_path: Path, route: str
) -> None:
    # Given the app with a 10 KB limit, and a client that would send 1,000 chunks of 1 KiB (no length)
    limit, chunk = 10_000, 1024
    app = create_app(make_container(tmp_path, max_request_bytes=limit))
    consumed = 0

    async def receive() -> dict[str, object]:
        nonlocal consumed
        consumed += chunk
        return {"type": "http.request", "body": b" " * chunk, "more_body": consumed < 1000 * chunk}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "PUT" if "working" in route
        else "POST", "scheme": "http", "path": route, "raw_path": route.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "app": app,
    }  # fmt: skip
    # When it posts to any route
    await app(scope, receive, send)
    # Then the app took at most one chunk past the limit, and answered one JSON 413
    assert consumed <= limit + chunk
    starts = [m for m in sent if m["type"] == "http.response.start"]
    if route == "/v1/health":  # a route that reads no body answers as usual: nothing was read
        assert consumed == 0 and starts[0]["status"] == 405
        return
    assert [m["status"] for m in starts] == [413]
    assert (b"content-type", b"application/json") in starts[0]["headers"]  # type: ignore[operator]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]
    assert b"MAX_REQUEST_BYTES" in body


def test_a_declared_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    container = make_container(tmp_path, max_request_bytes=2000)
    with TestClient(create_app(container)) as client:
        response = client.post(
            "/v1/long-term-memory/", content=b"{" * 3000, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["detail"] == "request body is 3000 bytes; the limit is 2000 bytes (MAX_REQUEST_BYTES)"


def test_delete_of_an_ambiguous_id_deletes_nothing(api: TestClient) -> None:
    api.put("/v1/working-memory/s1", json={"user_id": "a"})
    api.put("/v1/working-memory/s1", json={"user_id": "b"})
    assert api.delete("/v1/working-memory/s1").json() == {"status": "ok"}
    assert api.get("/v1/working-memory/s1", params={"user_id": "a"}).status_code == 200
    assert api.get("/v1/working-memory/s1", params={"user_id": "b"}).status_code == 200
