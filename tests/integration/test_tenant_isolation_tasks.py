"""Background work keeps tenants apart: a task carries the tenant of the call that enqueued it, and an
extraction run for one tenant reads and writes only that tenant's data.

Given tenants A and B with the same session, namespace and user ids, each PUT through the API
When their extraction tasks are taken from the queue (the embedded SQLite queue on both working-memory
stores, and SQS on moto's server handed to ExtractionFunction as on AWS) and only A's is run, with the
scripted LLM on loopback
Then A's task names A, the LLM saw only A's conversation, A got the memory, and B's long-term memory
and session are untouched (B's own run then gives B its own memory, and leaves A's alone).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory import bootstrap
from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.cli import FakeLambdaContext, load_module
from agent_memory.domain.tasks import ExtractionTask, decode_task
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings
from tests.fixtures.moto_sqs import SqsQueues
from tests.fixtures.openai_stub import OpenAIStub
from tests.integration.tenancy import NS, SCOPE, SESSION, TENANT_A, TENANT_B

REPO = Path(__file__).resolve().parents[2]
EXTRACTION_HANDLER = REPO / "functions" / "extraction" / "extraction_handler.py"
CONVERSATION = {TENANT_A: "I collect vinyl records, mostly jazz", TENANT_B: "I grow tomatoes on my balcony"}
FACT = {TENANT_A: "User collects jazz vinyl records", TENANT_B: "User grows tomatoes"}


def _facts(tenant: str) -> str:
    return json.dumps({"memories": [{"type": "semantic", "text": FACT[tenant]}]})


class Api:
    """The app with auth disabled, each call naming its tenant in x-tenant-id."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def put_session(self, tenant: str) -> str:
        body = {**SCOPE, "messages": [{"id": "m1", "role": "user", "content": CONVERSATION[tenant]}]}
        response = self.client.put(f"/v1/working-memory/{SESSION}", json=body, headers={"x-tenant-id": tenant})
        assert response.status_code == 200, response.text
        return response.headers["X-Agent-Memory-Extraction"]

    def memories(self, tenant: str) -> list[dict[str, Any]]:
        response = self.client.post("/v1/long-term-memory/search", json={"limit": 100},
                                    headers={"x-tenant-id": tenant})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["memories"]
        return found

    def session(self, tenant: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/working-memory/{SESSION}", params=SCOPE, headers={"x-tenant-id": tenant})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _prompts(stub: OpenAIStub) -> list[str]:
    return [json.dumps(body) for path, body in stub.requests if path.endswith("/chat/completions")]


def _check_only_a_ran(api: Api, stub: OpenAIStub, b_before: list[dict[str, Any]]) -> None:
    [prompt] = _prompts(stub)
    assert "vinyl" in prompt and "tomatoes" not in prompt  # the LLM saw A's conversation alone
    assert [m["text"] for m in api.memories(TENANT_A)] == [FACT[TENANT_A]]
    assert api.memories(TENANT_B) == b_before == []
    assert [m["discrete_memory_extracted"] for m in api.session(TENANT_A)["messages"]] == ["t"]
    assert [m["discrete_memory_extracted"] for m in api.session(TENANT_B)["messages"]] == ["f"]


@pytest.fixture(params=["sqlite", "redis"])
def embedded(
    request: pytest.FixtureRequest, tmp_path: Path, openai_stub: OpenAIStub
) -> Iterator[tuple[Api, Container]]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = make_settings(tmp_path, redis_url=redis_url, openai_api_key="test",
                             openai_base_url=openai_stub.base_url, extraction_debounce_seconds=0)
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    with TestClient(create_app(container)) as client:
        yield Api(client), container
    container.close()


def test_embedded_queue_tasks_carry_their_tenant_and_runs_stay_in_it(
    embedded: tuple[Api, Container], openai_stub: OpenAIStub
) -> None:
    api, container = embedded
    # Given the same session written by both tenants (each PUT queues its own task)
    for tenant in (TENANT_A, TENANT_B):
        assert api.put_session(tenant).startswith("queued; task_id=extract_")
    queue: Any = container.task_queue
    claimed = [queue.claim(60), queue.claim(60)]
    assert queue.claim(60) is None
    tasks = {decode_task(c.body).tenant: (c, decode_task(c.body)) for c in claimed}
    # Then each task names its own tenant, with the same scope
    assert set(tasks) == {TENANT_A, TENANT_B}
    for tenant, (_, task) in tasks.items():
        assert isinstance(task, ExtractionTask)
        assert (task.tenant, task.namespace, task.user_id, task.session_id) == (tenant, NS, SCOPE["user_id"], SESSION)
    b_before = api.memories(TENANT_B)

    # When only A's task runs
    openai_stub.script_chat(_facts(TENANT_A))
    claimed_a, task_a = tasks[TENANT_A]
    container.run_task(task_a)
    queue.complete(claimed_a)

    # Then A alone has the memory; B's memories and session are as they were
    _check_only_a_ran(api, openai_stub, b_before)

    # And B's own run gives B its memory and leaves A's alone
    openai_stub.script_chat(_facts(TENANT_B))
    claimed_b, task_b = tasks[TENANT_B]
    container.run_task(task_b)
    queue.complete(claimed_b)
    assert [m["text"] for m in api.memories(TENANT_B)] == [FACT[TENANT_B]]
    assert [m["text"] for m in api.memories(TENANT_A)] == [FACT[TENANT_A]]
    assert "vinyl" not in _prompts(openai_stub)[1]


def test_sqs_messages_carry_their_tenant_and_extraction_function_stays_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqs_queues: SqsQueues, openai_stub: OpenAIStub
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    settings = make_settings(tmp_path, openai_api_key="test", openai_base_url=openai_stub.base_url,
                             sqs_queue_url=sqs_queues.queue_url, sqs_endpoint_url=sqs_queues.endpoint,
                             extraction_debounce_seconds=0)
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    monkeypatch.setattr(bootstrap, "_container", container)  # ExtractionFunction's process-wide container
    handler = load_module(EXTRACTION_HANDLER).handler
    with TestClient(create_app(container)) as client:
        api = Api(client)
        # Given the same session written by both tenants: two messages on the queue
        for tenant in (TENANT_A, TENANT_B):
            api.put_session(tenant)
        messages = sqs_queues.receive()
        by_tenant = {decode_task(m["Body"]).tenant: m for m in messages}
        assert len(messages) == 2 and set(by_tenant) == {TENANT_A, TENANT_B}
        b_before = api.memories(TENANT_B)

        # When ExtractionFunction gets only A's message
        openai_stub.script_chat(_facts(TENANT_A))
        context = FakeLambdaContext(function_name="ExtractionFunction", timeout_seconds=120)
        assert handler(sqs_queues.event([by_tenant[TENANT_A]]), context) == {"batchItemFailures": []}

        # Then A alone has the memory
        _check_only_a_ran(api, openai_stub, b_before)
    container.close()
