"""Session API appends and extraction (embedded queue, the scripted LLM on loopback), on SQLite and on a real
redis-server: an append queues extraction as a PUT does, and the item limit drops a message only once
extraction has stored what it said in long-term memory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings
from tests.fixtures.openai_stub import OpenAIStub

SESSIONS = "/api/v1/working-memory/sessions"


def facts(*texts: str) -> str:
    return json.dumps({"memories": [{"type": "semantic", "text": t} for t in texts]})


@pytest.fixture(params=["sqlite", "redis"])
def container(request: pytest.FixtureRequest, tmp_path: Path, openai_stub: OpenAIStub) -> Iterator[Container]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = make_settings(tmp_path, openai_api_key="test", openai_base_url=openai_stub.base_url,
                             extraction_debounce_seconds=0, redis_url=redis_url,
                             knowledge_updates=False)  # one scripted LLM answer per extraction
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    yield container
    container.close()


def run_queue(container: Container) -> int:
    worker = container.task_worker()
    assert worker is not None
    ran = 0
    while worker.run_once():
        ran += 1
    return ran


def long_term_texts(api: TestClient) -> list[str]:
    return sorted(r["text"] for r in api.post("/v1/long-term-memory/search", json={"limit": 100}).json()["memories"])


def test_an_append_queues_extraction_like_a_put(container: Container, openai_stub: OpenAIStub) -> None:
    with TestClient(create_app(container)) as api:
        # When a message is appended through the session API
        response = api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": "I collect vinyl records"})
        # Then extraction is queued, with a task id to poll, as after a PUT
        header = response.headers["X-Agent-Memory-Extraction"]
        assert header.startswith("queued; task_id=extract_")
        openai_stub.script_chat(facts("User collects vinyl records"))
        assert run_queue(container) == 1
        assert long_term_texts(api) == ["User collects vinyl records"]
        task = api.get(f"/v1/tasks/{header.split('task_id=')[1]}").json()
        assert task["status"] == "success"
        assert [i["extracted"] for i in api.get(f"{SESSIONS}/s1").json()["items"]] == [True]
    prompt = openai_stub.requests[0][1]["messages"][0]["content"]
    assert "I collect vinyl records" in prompt


def test_the_limit_drops_messages_only_after_extraction_stored_them(container: Container,
                                                                    openai_stub: OpenAIStub) -> None:
    with TestClient(create_app(container)) as api:
        # Given a session of three items, appended five messages before any extraction ran
        api.post(SESSIONS, json={"session_id": "s1", "max_items": 3})
        for n in range(5):
            api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": f"fact number {n}", "id": f"m{n}"})
        # Then nothing was dropped: none of them is in long-term memory yet
        assert [i["id"] for i in api.get(f"{SESSIONS}/s1").json()["items"]] == ["m0", "m1", "m2", "m3", "m4"]

        # When extraction runs (the debounce left one task for the newest state) and stores what they said
        openai_stub.script_chat(facts(*(f"User said fact {n}" for n in range(5))))
        assert run_queue(container) == 1
        assert long_term_texts(api) == [f"User said fact {n}" for n in range(5)]
        assert all(i["extracted"] for i in api.get(f"{SESSIONS}/s1").json()["items"])

        # Then the next append trims the session to its limit, oldest first
        body = api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": "fact number 5", "id": "m5"}).json()
        assert [i["id"] for i in body["items"]] == ["m3", "m4", "m5"]
        assert body["item_count"] == 3 and body["max_items"] == 3
        # And the unextracted newest message is kept until its own extraction
        openai_stub.script_chat(facts("User said fact 5"))
        run_queue(container)
        assert "User said fact 5" in long_term_texts(api)
    chat_prompts = [body["messages"][0]["content"] for _, body in openai_stub.requests if "messages" in body]
    assert all(f"fact number {n}" in chat_prompts[0] for n in range(5))  # every dropped message was extracted


@pytest.fixture(params=["sqlite", "redis"])
def without_llm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Container]]:
    """Build a container with no LLM (so no extraction) on either working-memory store."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    built: list[Container] = []

    def build(**overrides: object) -> Container:
        settings = make_settings(tmp_path, redis_url=redis_url, **overrides)
        built.append(Container(settings, embedder=FakeEmbedder(dimensions=64)))
        return built[-1]

    yield build
    for container in built:
        container.close()


def test_without_an_llm_the_overflow_is_handed_to_long_term_memory_first(
    without_llm: Callable[..., Container],
) -> None:
    # Given no LLM (no extraction) but long-term memory, and a session of two items
    container = without_llm()
    with TestClient(create_app(container)) as api:
        api.post(SESSIONS, json={"session_id": "s1", "subject": "u1", "max_items": 2})
        for n in range(4):
            response = api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": f"turn {n}", "id": f"m{n}"})
            assert "X-Agent-Memory-Extraction" not in response.headers
        # Then the session keeps the newest two, and the two it dropped are long-term `message` records
        assert [i["id"] for i in api.get(f"{SESSIONS}/s1").json()["items"]] == ["m2", "m3"]
        found = api.post("/v1/long-term-memory/search", json={"limit": 10, "memory_type": {"eq": "message"}}).json()
        assert sorted((r["text"], r["session_id"], r["user_id"], r["extracted_from"]) for r in found["memories"]) == [
            ("turn 0", "s1", "u1", ["m0"]), ("turn 1", "s1", "u1", ["m1"])]


def test_without_an_llm_or_long_term_memory_nothing_is_ever_dropped(without_llm: Callable[..., Container]) -> None:
    container = without_llm(long_term_memory=False)
    with TestClient(create_app(container)) as api:
        api.post(SESSIONS, json={"session_id": "s1", "max_items": 2})
        for n in range(4):
            assert api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": f"m{n}"}).status_code == 200
        assert api.get(f"{SESSIONS}/s1").json()["item_count"] == 4


def test_a_failed_hand_over_keeps_the_messages_and_the_next_append_retries(tmp_path: Path) -> None:
    # Given a long-term record text limit the overflow is over: the hand-over fails (413 inside), the append stands
    container = Container(make_settings(tmp_path, max_memory_text_chars=5), embedder=FakeEmbedder(dimensions=64))
    with TestClient(create_app(container)) as api:
        api.post(SESSIONS, json={"session_id": "s1", "max_items": 1})
        assert api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": "far too long", "id": "a"}
                        ).status_code == 200
        assert api.post(f"{SESSIONS}/s1/messages", json={"role": "user", "content": "short", "id": "b"}
                        ).status_code == 200
        # Then nothing was dropped: "a" could not reach long-term memory
        assert [i["id"] for i in api.get(f"{SESSIONS}/s1").json()["items"]] == ["a", "b"]
    container.close()
