"""A user's deletion as deployed on AWS: SQS (moto's server, through boto3's endpoint_url) cannot delete the
user's queued tasks, so the deletion records a tombstone, and ExtractionFunction's handler, fed the
delivered messages as an SQS event, drops the deleted user's task (no LLM call, nothing written) while the
other user's task runs. The API is served over real HTTP; the LLM is the scripted OpenAI-compatible stub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_memory import bootstrap
from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.cli import FakeLambdaContext, load_module
from agent_memory.domain.tasks import decode_task
from tests.fixtures.app import make_settings, serve_in_thread
from tests.fixtures.moto_sqs import SqsQueues
from tests.fixtures.openai_stub import OpenAIStub

HANDLER_FILE = Path(__file__).resolve().parents[2] / "functions" / "extraction" / "extraction_handler.py"
FACTS = {"memories": [{"type": "semantic", "text": "User is vegetarian", "topics": ["diet"], "entities": [],
                       "event_date": None}]}


def _conversation(user: str) -> dict[str, Any]:
    return {"namespace": "n1", "user_id": user, "messages": [
        {"id": "m1", "role": "user", "content": "I am vegetarian", "created_at": "2024-05-03T09:00:00Z"}]}


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    return load_module(HANDLER_FILE).handler


@pytest.fixture(params=["sqlite", "redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqs_queues: SqsQueues,
    openai_stub: OpenAIStub,
) -> Iterator[tuple[httpx.Client, Container]]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = make_settings(
        tmp_path, redis_url=redis_url, openai_api_key="test", openai_base_url=openai_stub.base_url,
        sqs_queue_url=sqs_queues.queue_url, sqs_endpoint_url=sqs_queues.endpoint, extraction_debounce_seconds=0,
        knowledge_updates=False,
    )
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    monkeypatch.setattr(bootstrap, "_container", container)  # the handler's process-wide container
    for server in serve_in_thread(container):
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            yield client, container


def _records_of(client: httpx.Client, user: str) -> list[dict[str, Any]]:
    response = client.post("/v1/long-term-memory/search", json={"text": "", "user_id": {"eq": user}, "limit": 50})
    assert response.status_code == 200, response.text
    memories: list[dict[str, Any]] = response.json()["memories"]
    return memories


def _chat_calls(stub: OpenAIStub) -> int:
    return sum(1 for path in stub.paths() if path.endswith("/chat/completions"))


def test_an_sqs_task_of_a_deleted_user_is_dropped_by_extraction_function(
    stack: tuple[httpx.Client, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    # Given alice's and bob's conversations, each with its extraction task on SQS
    for user in ("alice", "bob"):
        put = client.put(f"/v1/working-memory/{user}-chat", json=_conversation(user))
        assert put.status_code == 200 and put.headers["X-Agent-Memory-Extraction"].startswith("queued")

    # When alice is deleted before the tasks are delivered
    deletion = client.delete("/v1/users/alice")
    assert deletion.status_code == 200, deletion.text
    assert deletion.json()["pending_tasks"] is None  # SQS cannot delete chosen messages
    assert deletion.json()["working_memory_sessions"] == 1

    # Then ExtractionFunction drops alice's task (no LLM call, nothing stored) and runs bob's
    openai_stub.script_chat(json.dumps(FACTS))
    polled = sqs_queues.poll_into(handler, FakeLambdaContext(function_name="ExtractionFunction",
                                                             timeout_seconds=120))
    assert sorted(decode_task(m["Body"]).user_id or "" for m in polled["received"]) == ["alice", "bob"]
    assert polled["batchItemFailures"] == []  # dropped is done: it never comes back, never dead-letters
    assert _chat_calls(openai_stub) == 1
    assert _records_of(client, "alice") == []
    assert [m["text"] for m in _records_of(client, "bob")] == ["User is vegetarian"]
    assert sqs_queues.receive() == [] and sqs_queues.receive(sqs_queues.dlq_url) == []

    # And when alice comes back and writes again, her new task runs: the tombstone drops older work only
    assert client.put("/v1/working-memory/alice-chat", json=_conversation("alice")).status_code == 200
    openai_stub.script_chat(json.dumps(FACTS))
    again = sqs_queues.poll_into(handler, FakeLambdaContext(function_name="ExtractionFunction", timeout_seconds=120))
    assert again["batchItemFailures"] == [] and len(again["received"]) == 1
    assert [m["text"] for m in _records_of(client, "alice")] == ["User is vegetarian"]
