"""Knowledge updates through the embedded extraction path (API → SQLite queue → worker → scripted LLM on
loopback → SQLite long-term store): a new fact updates or retires the stored one it changes, keeping
its history, instead of being stored beside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings
from tests.fixtures.openai_stub import OpenAIStub

SCOPE = {"namespace": "life", "user_id": "alice"}


@pytest.fixture
def app(tmp_path: Path, openai_stub: OpenAIStub) -> Iterator[tuple[TestClient, Container]]:
    settings = make_settings(
        tmp_path, openai_api_key="test", openai_base_url=openai_stub.base_url, extraction_debounce_seconds=0,
        knowledge_update_distance=2.0,  # every stored fact of the scope is a neighbour (the fake embedder)
    )
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    with TestClient(create_app(container)) as client:
        yield client, container


def remember(client: TestClient, memory_id: str, text: str, **scope: str) -> None:
    # "t": a stored fact, not queued for the second pass (whose LLM answers these tests do not script)
    memory = {"id": memory_id, "text": text, "memory_type": "semantic", "discrete_memory_extracted": "t",
              **(scope or SCOPE)}
    assert client.post("/v1/long-term-memory/", json={"memories": [memory]}).status_code == 200


def say(client: TestClient, container: Container, content: str, new_facts: list[str], decisions: Any,
        stub: OpenAIStub) -> None:
    """PUT one user message, script the extraction and decision answers, run the queued task."""
    message = {"id": "m1", "role": "user", "content": content, "created_at": "2024-05-03T09:00:00Z"}
    assert client.put("/v1/working-memory/s1", json={**SCOPE, "messages": [message]}).status_code == 200
    facts = {"memories": [{"type": "semantic", "text": text} for text in new_facts]}
    stub.script_chat(json.dumps(facts), *[json.dumps(d) for d in decisions])
    worker = container.task_worker()
    assert worker is not None and worker.run_once()
    assert container.task_queue.counts() == {"pending": 0, "dead": 0}  # type: ignore[attr-defined]


def stored(client: TestClient) -> list[dict[str, Any]]:
    body = {"text": "", "limit": 50, "namespace": {"eq": "life"}}
    memories: list[dict[str, Any]] = client.post("/v1/long-term-memory/search", json=body).json()["memories"]
    return memories


def decision_prompts(stub: OpenAIStub) -> list[str]:
    return [body["messages"][0]["content"] for path, body in stub.requests
            if path.endswith("/chat/completions") and "stored already" in body["messages"][0]["content"]]


def test_a_fact_that_changes_a_stored_one_updates_it_in_place_with_history(
    app: tuple[TestClient, Container], openai_stub: OpenAIStub
) -> None:
    client, container = app
    remember(client, "home", "User lives in Paris")

    say(client, container, "I moved to Berlin yesterday", ["User lives in Berlin since 2024-05-02"],
        [{"decisions": [{"fact": "N1", "action": "UPDATE", "target": "E1",
                         "text": "User lives in Berlin since 2024-05-02"}]}], openai_stub)

    [record] = stored(client)
    assert record["id"] == "home" and record["text"] == "User lives in Berlin since 2024-05-02"
    [past] = record["metadata"]["history"]
    assert past["text"] == "User lives in Paris" and past["source_messages"] == ["m1"]
    [prompt] = decision_prompts(openai_stub)
    assert "- E1: User lives in Paris" in prompt and "- N1: User lives in Berlin since 2024-05-02" in prompt
    # the search finds the current fact by its new words
    found = client.post("/v1/long-term-memory/search", json={"text": "Berlin", "search_mode": "keyword"}).json()
    assert [m["id"] for m in found["memories"]] == ["home"]


def test_a_fact_that_makes_a_stored_one_false_retires_it(
    app: tuple[TestClient, Container], openai_stub: OpenAIStub
) -> None:
    client, container = app
    remember(client, "car", "User owns a red car")

    say(client, container, "I sold my car last week", ["User sold their car"],
        [{"decisions": [{"fact": "N1", "action": "DELETE", "target": "E1"}]}], openai_stub)

    [record] = stored(client)
    assert record["text"] == "User sold their car"
    [retired] = record["metadata"]["supersedes"]
    assert retired["id"] == "car" and retired["text"] == "User owns a red car"
    assert client.get("/v1/long-term-memory/car").status_code == 404


def test_a_known_fact_stores_nothing_and_a_bad_decision_is_retried(
    app: tuple[TestClient, Container], openai_stub: OpenAIStub
) -> None:
    client, container = app
    remember(client, "diet", "User is vegetarian")

    say(client, container, "I don't eat meat", ["User does not eat meat"], [
        {"decisions": [{"fact": "N1", "action": "UPDATE", "target": "E7"}]},  # no such target, no text
        {"decisions": [{"fact": "N1", "action": "NONE"}]},
    ], openai_stub)

    assert [m["id"] for m in stored(client)] == ["diet"]
    retry = [body for path, body in openai_stub.requests if path.endswith("/chat/completions")][-1]
    assert "needs a target among E1" in retry["messages"][-1]["content"]


def test_facts_of_other_users_are_never_shown_or_changed(
    app: tuple[TestClient, Container], openai_stub: OpenAIStub
) -> None:
    client, container = app
    remember(client, "bob-home", "User lives in Paris", namespace="life", user_id="bob")

    say(client, container, "I moved to Berlin", ["User lives in Berlin"], [], openai_stub)

    assert decision_prompts(openai_stub) == []  # nothing in alice's scope: plain ADD, no decision asked
    texts = sorted(m["text"] for m in stored(client))
    assert texts == ["User lives in Berlin", "User lives in Paris"]
