"""Every limit says which limit, over real HTTP (uvicorn on a free port), on both working-memory stores.

The rule (docs/architecture.md, error table): over a size or count that a setting configures → 413
whose detail names the setting and its value ("...; the limit is 3 (MAX_MESSAGES_PER_SESSION)");
a parameter outside the range the API itself documents (`limit` caps, `offset + limit`) → 422 whose
`loc` names the parameter and whose `msg` names the bound; over the rate limit → 429 (test_rate_limit_http.py).
Nothing is stored by a refused request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_memory.bootstrap import Container
from tests.fixtures.app import LiveServer, make_container

LIMITS: dict[str, Any] = {
    "max_request_bytes": 4000,
    "max_messages_per_session": 3,
    "max_message_chars": 50,
    "max_memory_text_chars": 40,
    "max_memories_per_request": 2,
}
WHEN = "2026-01-01T00:00:00Z"


@pytest.fixture
def container(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Container:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    return make_container(tmp_path, redis_url=redis_url, **LIMITS)


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=10) as client:
        yield client


def message(i: int, chars: int = 5) -> dict[str, Any]:
    return {"id": f"m{i}", "role": "user", "content": "x" * chars, "created_at": WHEN}


def memory(i: int, chars: int = 5) -> dict[str, Any]:
    return {"id": f"r{i}", "text": "y" * chars}


def assert_413(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": detail}


def assert_422(response: httpx.Response, loc: list[str], msg: str) -> None:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["loc"], error["msg"]) == (loc, msg)


def assert_nothing_stored(http: httpx.Client) -> None:
    assert http.get("/v1/working-memory/").json()["total"] == 0
    assert http.post("/v1/long-term-memory/search", json={"text": ""}).json()["total"] == 0


def test_a_body_over_max_request_bytes_is_413_naming_it(http: httpx.Client) -> None:
    body = {"messages": [message(0)], "data": {"blob": "z" * 4000}}

    response = http.put("/v1/working-memory/s1", json=body)

    assert response.status_code == 413
    assert response.json()["detail"].endswith("bytes; the limit is 4000 bytes (MAX_REQUEST_BYTES)")
    assert_nothing_stored(http)


def test_a_chunked_body_over_max_request_bytes_is_413_naming_it(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"q" * 500

    response = http.post("/v1/long-term-memory/search", content=chunks(), headers={"content-type": "application/json"})

    assert_413(response, "request body is more than 4000 bytes; the limit is 4000 bytes (MAX_REQUEST_BYTES)")


def test_more_messages_than_max_messages_per_session_is_413_naming_it(http: httpx.Client) -> None:
    response = http.put("/v1/working-memory/s1", json={"messages": [message(i) for i in range(4)]})

    assert_413(response, "4 messages in one session; the limit is 3 (MAX_MESSAGES_PER_SESSION)")
    assert_nothing_stored(http)


def test_exactly_max_messages_per_session_is_accepted(http: httpx.Client) -> None:
    response = http.put("/v1/working-memory/s1", json={"messages": [message(i) for i in range(3)]})

    assert response.status_code == 200, response.text


def test_a_message_longer_than_max_message_chars_is_413_naming_it(http: httpx.Client) -> None:
    response = http.put("/v1/working-memory/s1", json={"messages": [message(0), message(1, chars=51)]})

    assert_413(response, "message m1 has 51 characters; the limit is 50 (MAX_MESSAGE_CHARS)")
    assert_nothing_stored(http)


def test_a_long_term_memory_longer_than_max_memory_text_chars_is_413_naming_it(http: httpx.Client) -> None:
    response = http.post("/v1/long-term-memory/", json={"memories": [memory(0), memory(1, chars=41)]})

    assert_413(response, "memory r1 has 41 characters; the limit is 40 (MAX_MEMORY_TEXT_CHARS)")
    assert_nothing_stored(http)


def test_an_edit_longer_than_max_memory_text_chars_is_413_naming_it(http: httpx.Client) -> None:
    assert http.post("/v1/long-term-memory/", json={"memories": [memory(0)]}).status_code == 200

    response = http.patch("/v1/long-term-memory/r0", json={"text": "y" * 41})

    assert_413(response, "memory r0 has 41 characters; the limit is 40 (MAX_MEMORY_TEXT_CHARS)")
    assert http.get("/v1/long-term-memory/r0").json()["text"] == "y" * 5


def test_working_memory_memories_obey_the_long_term_limits(http: httpx.Client) -> None:
    too_long = {"messages": [message(0)], "memories": [memory(0, chars=41)]}
    too_many = {"messages": [message(0)], "memories": [memory(i) for i in range(3)]}

    assert_413(http.put("/v1/working-memory/s1", json=too_long),
               "memory r0 has 41 characters; the limit is 40 (MAX_MEMORY_TEXT_CHARS)")  # fmt: skip
    assert_413(http.put("/v1/working-memory/s1", json=too_many),
               "3 memories in one request; the limit is 2 (MAX_MEMORIES_PER_REQUEST)")  # fmt: skip
    assert_nothing_stored(http)


def test_more_memories_than_max_memories_per_request_is_413_naming_it(http: httpx.Client) -> None:
    response = http.post("/v1/long-term-memory/", json={"memories": [memory(i) for i in range(3)]})

    assert_413(response, "3 memories in one request; the limit is 2 (MAX_MEMORIES_PER_REQUEST)")
    assert_nothing_stored(http)


@pytest.mark.parametrize(
    ("method", "path", "body", "loc", "msg"),
    [
        ("GET", "/v1/working-memory/?limit=101", None, ["query", "limit"], "Input should be less than or equal to 100"),
        ("POST", "/v1/long-term-memory/search", {"text": "x", "limit": 101}, ["body", "limit"],
         "Input should be less than or equal to 100"),
        ("POST", "/v1/long-term-memory/search", {"text": "x", "limit": 100, "offset": 9901}, ["body", "offset"],
         "Value error, offset + limit must be at most 10000, the deepest page a store serves"),
        ("POST", "/v1/long-term-memory/forget?limit=10001", {"policy": {}}, ["query", "limit"],
         "Input should be less than or equal to 10000"),
    ],
    ids=["session-list-limit", "search-limit", "search-window", "forget-limit"],
)  # fmt: skip
def test_a_limit_parameter_past_its_documented_cap_is_422_naming_the_cap(
    http: httpx.Client, method: str, path: str, body: Any, loc: list[str], msg: str
) -> None:
    assert_422(http.request(method, path, json=body), loc, msg)
