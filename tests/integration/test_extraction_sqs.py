"""Background extraction as deployed on AWS, end to end on real parts: the API writes a session, the
task goes to SQS (moto's server, through boto3's endpoint_url), a stand-in for Lambda's poller hands the
received messages to ExtractionFunction's handler as an SQS event, and the handler extracts with the
scripted OpenAI-compatible LLM on loopback into the real long-term store."""

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
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.tasks import decode_task
from agent_memory.http.app import create_app
from agent_memory.services.extraction import summary_id
from tests.fixtures.app import make_settings
from tests.fixtures.moto_sqs import SqsQueues
from tests.fixtures.openai_stub import OpenAIStub
from tests.fixtures.redis_process import free_port

REPO = Path(__file__).resolve().parents[2]
HANDLER_FILE = REPO / "functions" / "extraction" / "extraction_handler.py"

CONVERSATION = {
    "namespace": "travel",
    "user_id": "alice",
    "messages": [
        {"id": "m1", "role": "user", "content": "I flew to Lisbon yesterday with my sister Ana",
         "created_at": "2024-05-03T09:00:00Z"},
        {"id": "m2", "role": "assistant", "content": "Nice! How long will she stay?",
         "created_at": "2024-05-03T09:00:30Z"},
        {"id": "m3", "role": "user", "content": "She stays a week. I am vegetarian, by the way.",
         "created_at": "2024-05-03T09:01:00Z"},
    ],
}
EXTRACTED = {"memories": [
    {"type": "episodic", "text": "User flew to Lisbon with their sister Ana on 2024-05-02",
     "topics": ["travel", "family"], "entities": ["Lisbon", "Ana"], "event_date": "2024-05-02T00:00:00Z"},
    {"type": "semantic", "text": "User is vegetarian", "topics": ["diet"], "entities": [], "event_date": None},
]}


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    return load_module(HANDLER_FILE).handler


def lambda_context(seconds: float = 120.0) -> FakeLambdaContext:
    return FakeLambdaContext(function_name="ExtractionFunction", timeout_seconds=seconds)


def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: object) -> Container:
    """A container as the API and ExtractionFunction build it from their environment; the handler's
    process-wide container is this one."""
    container = Container(make_settings(tmp_path, **overrides), embedder=FakeEmbedder(dimensions=64))
    monkeypatch.setattr(bootstrap, "_container", container)
    return container


@pytest.fixture(params=["sqlite", "redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqs_queues: SqsQueues,
    openai_stub: OpenAIStub,
) -> Iterator[tuple[TestClient, Container]]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    container = build(
        tmp_path, monkeypatch, redis_url=redis_url, openai_api_key="test", openai_base_url=openai_stub.base_url,
        sqs_queue_url=sqs_queues.queue_url, sqs_endpoint_url=sqs_queues.endpoint, extraction_debounce_seconds=0,
    )
    with TestClient(create_app(container)) as client:
        yield client, container


def search(client: TestClient, **filters: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"text": "", "limit": 50, **{k: {"eq": v} for k, v in filters.items()}}
    response = client.post("/v1/long-term-memory/search", json=body)
    assert response.status_code == 200, response.text
    memories: list[dict[str, Any]] = response.json()["memories"]
    return memories


def chat_calls(stub: OpenAIStub) -> int:
    return sum(1 for path in stub.paths() if path.endswith("/chat/completions"))


def test_a_put_conversation_becomes_scoped_long_term_memories(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    # Given a conversation written to working memory
    put = client.put("/v1/working-memory/trip", json=CONVERSATION)
    assert put.status_code == 200, put.text
    assert put.headers["X-Agent-Memory-Extraction"].startswith("queued; task_id=extract_")

    # Then one versioned task naming the session is on the queue
    [message] = sqs_queues.receive()
    task = decode_task(message["Body"])
    assert (task.tenant, task.namespace, task.user_id, task.session_id) == ("default", "travel", "alice", "trip")
    assert message["MessageAttributes"]["type"]["StringValue"] == "extract_session"

    # When ExtractionFunction gets it as an SQS event
    openai_stub.script_chat(json.dumps(EXTRACTED))
    response = handler(sqs_queues.event([message]), lambda_context())

    # Then the memories are in long-term memory with the session's scope, types, dates and topics
    assert response == {"batchItemFailures": []}
    memories = {m["text"]: m for m in search(client, namespace="travel")}
    assert set(memories) == {"User flew to Lisbon with their sister Ana on 2024-05-02", "User is vegetarian"}
    trip = memories["User flew to Lisbon with their sister Ana on 2024-05-02"]
    assert (trip["namespace"], trip["user_id"], trip["session_id"]) == ("travel", "alice", "trip")
    assert trip["memory_type"] == "episodic" and trip["event_date"] == "2024-05-02T00:00:00Z"
    assert trip["topics"] == ["travel", "family"] and trip["entities"] == ["Lisbon", "Ana"]
    assert trip["extracted_from"] == ["m1", "m2", "m3"] and trip["extraction_strategy"] == "discrete"
    assert memories["User is vegetarian"]["memory_type"] == "semantic"
    # the LLM saw each message with its own timestamp, to make "yesterday" absolute
    [(_, request)] = [r for r in openai_stub.requests if r[0].endswith("/chat/completions")]
    assert "[2024-05-03T09:00:00Z] USER: I flew to Lisbon yesterday" in request["messages"][0]["content"]
    assert request["response_format"] == {"type": "json_object"}
    # and the session's messages are marked extracted
    session = client.get("/v1/working-memory/trip", params={"namespace": "travel", "user_id": "alice"}).json()
    assert [m["discrete_memory_extracted"] for m in session["messages"]] == ["t", "t", "t"]

    # When the same message is delivered again, nothing changes
    again = handler(sqs_queues.event([message]), lambda_context())
    assert again == {"batchItemFailures": []}
    assert chat_calls(openai_stub) == 1
    assert len(search(client, namespace="travel")) == 2


def test_a_replay_after_a_crash_between_store_and_mark_creates_no_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    container = build(
        tmp_path, monkeypatch, openai_api_key="test", openai_base_url=openai_stub.base_url,
        sqs_queue_url=sqs_queues.queue_url, sqs_endpoint_url=sqs_queues.endpoint, extraction_debounce_seconds=0,
    )
    with TestClient(create_app(container)) as client:
        assert client.put("/v1/working-memory/trip", json=CONVERSATION).status_code == 200
        store = container.working_memory_store

        # Given a first run that stored its memories, then failed before marking the messages
        def crash(*_: object) -> int:
            raise DependencyUnavailableError("sqlite", "disk I/O error")

        monkeypatch.setattr(store, "mark_extracted", crash)
        openai_stub.script_chat(json.dumps(EXTRACTED))
        first = sqs_queues.poll_into(handler, lambda_context())
        assert [f["itemIdentifier"] for f in first["batchItemFailures"]] == [first["received"][0]["MessageId"]]
        assert len(search(client, namespace="travel")) == 2
        monkeypatch.undo()
        monkeypatch.setattr(bootstrap, "_container", container)
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

        # When SQS delivers it again (the LLM may word things the same or not: same ids either way)
        openai_stub.script_chat(json.dumps(EXTRACTED))
        second = sqs_queues.poll_into(handler, lambda_context())

        # Then the memories are the same records, not a second copy
        assert second["batchItemFailures"] == []
        assert second["received"][0]["Attributes"]["ApproximateReceiveCount"] == "2"
        assert len(search(client, namespace="travel")) == 2


def test_a_poison_message_is_a_batch_item_failure_and_lands_in_the_dead_letter_queue(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, handler: Any
) -> None:
    good = sqs_queues.client.send_message(QueueUrl=sqs_queues.queue_url, MessageBody=json.dumps(
        {"type": "extract_session", "schema_version": 1, "task_id": "t", "tenant": "default",
         "session_id": "nobody", "generation": "g", "idempotency_key": "k", "enqueued_at": "2024-01-01T00:00:00Z"}))
    poison = sqs_queues.client.send_message(QueueUrl=sqs_queues.queue_url, MessageBody='{"type": "drop_tables"}')

    # One batch with both: only the poison is reported, the valid one (a session that is gone) succeeds
    first = sqs_queues.poll_into(handler, lambda_context())
    assert {m["MessageId"] for m in first["received"]} == {good["MessageId"], poison["MessageId"]}
    assert first["batchItemFailures"] == [{"itemIdentifier": poison["MessageId"]}]

    # A batch of only the poison is reported record by record too (the invocation itself succeeds)
    second = sqs_queues.poll_into(handler, lambda_context())
    assert second["batchItemFailures"] == [{"itemIdentifier": poison["MessageId"]}]

    # Past maxReceiveCount (2) SQS moves it to the dead-letter queue
    assert sqs_queues.receive() == []
    [dead] = sqs_queues.receive(sqs_queues.dlq_url)
    assert dead["MessageId"] == poison["MessageId"] and dead["Body"] == '{"type": "drop_tables"}'


def test_a_burst_of_puts_gives_one_run_over_the_newest_state(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    for n in (1, 2, 3):
        body = {**CONVERSATION, "messages": CONVERSATION["messages"][:n]}
        assert client.put("/v1/working-memory/trip", json=body).status_code == 200
    messages = sqs_queues.receive()
    assert len(messages) == 3

    openai_stub.script_chat(json.dumps(EXTRACTED))
    response = handler(sqs_queues.event(messages), lambda_context())

    assert response == {"batchItemFailures": []}
    assert chat_calls(openai_stub) == 1  # the two superseded tasks were skipped
    [(_, request)] = [r for r in openai_stub.requests if r[0].endswith("/chat/completions")]
    assert "I am vegetarian" in request["messages"][0]["content"]  # the newest state: all three messages
    assert len(search(client, namespace="travel")) == 2


def test_malformed_llm_output_is_retried_then_fails_visibly_and_marks_nothing(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, _ = stack
    assert client.put("/v1/working-memory/trip", json=CONVERSATION).status_code == 200
    openai_stub.script_chat("no json here", '{"memories": [{"type": "feeling"}]}', '{"memories": "none"}')

    failed = sqs_queues.poll_into(handler, lambda_context())

    task_id = decode_task(failed["received"][0]["Body"]).task_id
    assert failed["batchItemFailures"] == [{"itemIdentifier": failed["received"][0]["MessageId"]}]
    assert chat_calls(openai_stub) == 3  # the first answer and two retries with the error fed back
    assert search(client, namespace="travel") == []
    session = client.get("/v1/working-memory/trip", params={"namespace": "travel", "user_id": "alice"}).json()
    assert {m["discrete_memory_extracted"] for m in session["messages"]} == {"f"}
    [log] = [r for r in caplog.records if r.getMessage() == "extraction failed"]
    assert log.levelname == "ERROR" and log.__dict__["task_id"] == task_id
    assert log.__dict__["error_type"] == "StructuredOutputError"
    assert "no valid structured answer after 3 attempts" in log.__dict__["error"]

    # The redelivery, with the LLM answering properly, completes the work
    openai_stub.script_chat(json.dumps(EXTRACTED))
    assert sqs_queues.poll_into(handler, lambda_context())["batchItemFailures"] == []
    assert len(search(client, namespace="travel")) == 2


def test_an_llm_outage_returns_the_record_to_the_queue(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    assert client.put("/v1/working-memory/trip", json=CONVERSATION).status_code == 200
    openai_stub.script_chat({"status": 503}, {"status": 503})  # the adapter's one retry fails too

    failed = sqs_queues.poll_into(handler, lambda_context())

    assert len(failed["batchItemFailures"]) == 1
    assert search(client, namespace="travel") == []
    assert len(sqs_queues.receive()) == 1  # back on the queue


def test_with_little_time_left_no_record_is_started(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    assert client.put("/v1/working-memory/trip", json=CONVERSATION).status_code == 200

    response = sqs_queues.poll_into(handler, lambda_context(seconds=10))

    assert len(response["batchItemFailures"]) == 1
    assert chat_calls(openai_stub) == 0


def test_summary_strategy_keeps_one_record_per_scope_and_a_rerun_replaces_it(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    body = {**CONVERSATION, "long_term_memory_strategy": {"strategy": "summary", "config": {"max_summary_length": 50}}}
    for n, summary in ((2, "User flew to Lisbon with Ana."), (3, "User flew to Lisbon with Ana; User is vegetarian.")):
        assert client.put("/v1/working-memory/trip", json={**body, "messages": body["messages"][:n]}).status_code == 200
        openai_stub.script_chat(json.dumps({"summary": summary}))
        assert sqs_queues.poll_into(handler, lambda_context())["batchItemFailures"] == []

    [record] = search(client, namespace="travel")
    assert record["id"] == summary_id("travel", "alice", "trip")
    assert record["text"] == "User flew to Lisbon with Ana; User is vegetarian."
    assert record["extraction_strategy"] == "summary" and "summary" in record["topics"]


def test_an_unavailable_queue_defers_extraction_but_the_put_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_stub: OpenAIStub, sqs_queues: SqsQueues
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    container = build(
        tmp_path, monkeypatch, openai_api_key="test", openai_base_url=openai_stub.base_url,
        sqs_queue_url=sqs_queues.queue_url, sqs_endpoint_url=closed, sqs_timeout_seconds=0.5,
    )
    with TestClient(create_app(container)) as client:
        put = client.put("/v1/working-memory/trip", json=CONVERSATION)

        assert put.status_code == 200
        assert put.headers["X-Agent-Memory-Extraction"] == "deferred; reason=queue-unavailable"
        assert client.get("/v1/working-memory/trip", params={"namespace": "travel"}).status_code == 200


def test_without_an_llm_nothing_is_enqueued_and_health_says_extraction_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqs_queues: SqsQueues
) -> None:
    container = build(tmp_path, monkeypatch, sqs_queue_url=sqs_queues.queue_url, sqs_endpoint_url=sqs_queues.endpoint)
    with TestClient(create_app(container)) as client:
        put = client.put("/v1/working-memory/trip", json=CONVERSATION)
        health = client.get("/v1/health").json()

    assert put.status_code == 200 and "X-Agent-Memory-Extraction" not in put.headers
    assert sqs_queues.receive() == []
    assert health["features"]["extraction"] is False and health["backends"]["task_queue"] == "off"


def test_a_record_created_unextracted_gets_its_second_pass_once(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    # Given a memory created as the Python client sends it: a "message" with discrete_memory_extracted "f"
    note = {"id": "n1", "text": "Alice said she is allergic to peanuts since childhood", "namespace": "travel",
            "user_id": "alice", "session_id": "trip", "memory_type": "message", "discrete_memory_extracted": "f"}
    created = client.post("/v1/long-term-memory/", json={"memories": [note]})
    assert created.status_code == 200 and created.headers["X-Agent-Memory-Extraction"] == "queued"
    [message] = sqs_queues.receive()
    task = decode_task(message["Body"])
    assert task.type == "extract_records" and task.tenant == "default" and task.record_ids == ["n1"]

    # When ExtractionFunction runs it
    openai_stub.script_chat(json.dumps({"memories": [
        {"type": "semantic", "text": "User is allergic to peanuts", "topics": ["health"], "entities": []}]}))
    assert handler(sqs_queues.event([message]), lambda_context()) == {"batchItemFailures": []}

    # Then the derived memory keeps the source's scope and names it, and the source is marked extracted
    by_text = {m["text"]: m for m in search(client, namespace="travel")}
    derived = by_text["User is allergic to peanuts"]
    assert (derived["namespace"], derived["user_id"], derived["session_id"]) == ("travel", "alice", "trip")
    assert derived["extracted_from"] == ["n1"] and derived["memory_type"] == "semantic"
    assert by_text[note["text"]]["discrete_memory_extracted"] == "t"
    # and the derived memory is not queued again, nor does a duplicate delivery do anything
    assert sqs_queues.receive() == []
    assert handler(sqs_queues.event([message]), lambda_context()) == {"batchItemFailures": []}
    assert chat_calls(openai_stub) == 1 and len(search(client, namespace="travel")) == 2


def test_a_summary_view_run_goes_through_sqs_to_the_extraction_function(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    memory = {"id": "v1", "text": "User is vegetarian", "namespace": "travel", "user_id": "alice",
              "memory_type": "semantic", "discrete_memory_extracted": "t"}
    assert client.post("/v1/long-term-memory/", json={"memories": [memory]}).status_code == 200
    view = client.post("/v1/summary-views", json={"source": "long_term", "group_by": ["user_id"]}).json()
    task = client.post(f"/v1/summary-views/{view['id']}/run", json={}).json()

    [message] = sqs_queues.receive()
    assert decode_task(message["Body"]).type == "summary_view_run"
    openai_stub.script_chat("Alice is vegetarian.")
    assert handler(sqs_queues.event([message]), lambda_context()) == {"batchItemFailures": []}

    assert client.get(f"/v1/tasks/{task['id']}").json()["status"] == "success"
    [partition] = client.get(f"/v1/summary-views/{view['id']}/partitions").json()
    assert partition["group"] == {"user_id": "alice"} and partition["summary"] == "Alice is vegetarian."


def test_a_caller_can_wait_for_its_writes_extraction_through_the_task_api(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    first = client.put("/v1/working-memory/trip", json={**CONVERSATION, "messages": CONVERSATION["messages"][:2]})
    task_id = first.headers["X-Agent-Memory-Extraction"].removeprefix("queued; task_id=")
    assert client.get(f"/v1/tasks/{task_id}").json()["status"] == "pending"
    # A second write to the session reports to the same record, which is now about that write
    second = client.put("/v1/working-memory/trip", json=CONVERSATION)
    assert second.headers["X-Agent-Memory-Extraction"] == f"queued; task_id={task_id}"

    messages = sorted(sqs_queues.receive(), key=lambda m: decode_task(m["Body"]).enqueued_at)
    openai_stub.script_chat(json.dumps(EXTRACTED))
    handler(sqs_queues.event(messages[:1]), lambda_context())  # the superseded task: no report
    assert client.get(f"/v1/tasks/{task_id}").json()["status"] == "pending"
    handler(sqs_queues.event(messages[1:]), lambda_context())

    done = client.get(f"/v1/tasks/{task_id}").json()
    assert (done["type"], done["status"]) == ("extract_session", "success")
    assert done["started_at"] and done["completed_at"]
    assert len(search(client, namespace="travel")) == 2


def test_a_failed_extraction_says_why_in_its_task(
    stack: tuple[TestClient, Container], sqs_queues: SqsQueues, openai_stub: OpenAIStub, handler: Any
) -> None:
    client, _ = stack
    put = client.put("/v1/working-memory/trip", json=CONVERSATION)
    task_id = put.headers["X-Agent-Memory-Extraction"].removeprefix("queued; task_id=")
    openai_stub.script_chat("no", "json", "here")

    sqs_queues.poll_into(handler, lambda_context())

    failed = client.get(f"/v1/tasks/{task_id}").json()
    assert failed["status"] == "failed" and "no valid structured answer" in failed["error_message"]
