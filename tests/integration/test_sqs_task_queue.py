"""SqsTaskQueue against moto's SQS server over real HTTP (`endpoint_url`), through both of its clients: the
standard library's JSON client (chosen when the credentials are in the environment, as on Lambda, so a
first PUT that queues extraction does not wait for boto3) and boto3's. The same messages, the same errors."""

from __future__ import annotations

from typing import Any

import pytest

from agent_memory.adapters._aws import boto3_client
from agent_memory.adapters._aws_json import AwsJsonClient
from agent_memory.adapters.sqs_task_queue import SqsTaskQueue
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.models import SessionKey
from agent_memory.domain.tasks import ExtractionTask, decode_task
from tests.fixtures.aws_sdk import aws_sdk_imported_by
from tests.fixtures.moto_sqs import REGION, SqsQueues
from tests.fixtures.redis_process import free_port

TASK = ExtractionTask.for_session(
    SessionKey(tenant="acme", session_id="s-1", namespace="travel", user_id="alice"), generation="g-1"
)


def _queue(kind: str, url: str, endpoint: str) -> SqsTaskQueue:
    client = boto3_client("sqs", region=REGION, timeout_seconds=2.0, endpoint_url=endpoint) if kind == "boto3" else None
    queue = SqsTaskQueue(url, region=REGION, endpoint_url=endpoint, timeout_seconds=2.0, client=client)
    assert isinstance(queue._sqs.get(), AwsJsonClient if kind == "json" else type(client))
    return queue


@pytest.fixture(params=["json", "boto3"])
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def test_an_enqueued_task_arrives_whole_with_its_attributes(kind: str, sqs_queues: SqsQueues) -> None:
    _queue(kind, sqs_queues.queue_url, sqs_queues.endpoint).enqueue(TASK)
    [message] = sqs_queues.receive()
    assert decode_task(message["Body"]) == TASK
    assert {name: a["StringValue"] for name, a in message["MessageAttributes"].items()} == {
        "type": "extract_session", "schema_version": "1"
    }  # fmt: skip


def test_a_delayed_task_is_not_delivered_before_its_delay(kind: str, sqs_queues: SqsQueues) -> None:
    queue = _queue(kind, sqs_queues.queue_url, sqs_queues.endpoint)
    queue.enqueue(TASK, delay_seconds=60)
    queue.enqueue(TASK, delay_seconds=10**6)  # clamped to SQS's 900 s, not refused
    assert sqs_queues.receive() == []
    attributes = sqs_queues.client.get_queue_attributes(
        QueueUrl=sqs_queues.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "2"


def test_ping_answers_and_a_missing_queue_is_a_503_naming_sqs_code(kind: str, sqs_queues: SqsQueues) -> None:
    _queue(kind, sqs_queues.queue_url, sqs_queues.endpoint).ping()
    missing = _queue(kind, sqs_queues.queue_url + "-gone", sqs_queues.endpoint)
    # The query-protocol code boto3 reports (x-amzn-query-error), from both clients
    expected = r"queue unavailable: SQS send_message failed: AWS\.SimpleQueueService\.NonExistentQueue"
    with pytest.raises(DependencyUnavailableError, match=expected):
        missing.enqueue(TASK)
    with pytest.raises(DependencyUnavailableError, match="SQS get_queue_attributes failed"):
        missing.ping()


def test_no_answer_is_a_503(kind: str, sqs_queues: SqsQueues) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DependencyUnavailableError, match="queue unavailable: SQS send_message failed"):
        _queue(kind, sqs_queues.queue_url, dead).enqueue(TASK)


def test_an_enqueue_with_environment_credentials_imports_no_aws_sdk(sqs_queues: SqsQueues) -> None:
    # Given credentials in the environment, as on Lambda, when a fresh process queues a task (boto3 and
    # botocore are installed here), then it never imported them, and the message arrived
    code = (
        "from agent_memory.adapters.sqs_task_queue import SqsTaskQueue\n"
        "from agent_memory.domain.models import SessionKey\n"
        "from agent_memory.domain.tasks import ExtractionTask\n"
        "key = SessionKey(tenant='acme', session_id='s-2')\n"
        f"SqsTaskQueue({sqs_queues.queue_url!r}, region={REGION!r}, endpoint_url={sqs_queues.endpoint!r})"
        ".enqueue(ExtractionTask.for_session(key, generation='g-2'))"
    )
    assert aws_sdk_imported_by(code, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}) == []
    [message] = sqs_queues.receive()
    received: Any = decode_task(message["Body"])
    assert received.session_id == "s-2"
