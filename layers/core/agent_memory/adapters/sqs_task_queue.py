"""The task queue on AWS: an SQS standard queue, consumed by ExtractionFunction through Lambda's poller.

The client is built on the first call, never at import time: with the credentials in the environment
(Lambda) the standard library's JSON client (adapters/_aws_json.py), so a cold start's first PUT that
queues extraction does not wait ~0.2 s for boto3; else boto3's. Every call has connect and read timeouts
and at most one retry (botocore's standard mode), so a PUT that enqueues waits at most about twice
`timeout_seconds` for an SQS outage before answering without it. `endpoint_url` lets moto or LocalStack
stand in for SQS.

Debounce uses `DelaySeconds` (at most 900 s): the consumer skips a task superseded by a newer write,
since SQS cannot replace a message already sent.
"""

from __future__ import annotations

from typing import Any

from agent_memory.adapters._aws import LazyAwsClient, call_aws
from agent_memory.domain.tasks import AnyTask, encode_task

MAX_DELAY_SECONDS = 900


class SqsTaskQueue:
    """`TaskQueue` on one SQS queue.

    Example::

        queue = SqsTaskQueue("https://sqs.us-east-1.amazonaws.com/123456789012/extraction", region="us-east-1")
        queue.enqueue(task, delay_seconds=5)
    """

    def __init__(
        self,
        queue_url: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        timeout_seconds: float = 2.0,
        client: Any = None,
    ) -> None:
        self.queue_url = queue_url
        self._sqs = LazyAwsClient(
            "sqs", region=region, timeout_seconds=timeout_seconds, endpoint_url=endpoint_url, client=client
        )

    def enqueue(self, task: AnyTask, *, delay_seconds: int = 0) -> None:
        body = encode_task(task)
        self._call(
            "send_message",
            QueueUrl=self.queue_url,
            MessageBody=body,
            DelaySeconds=min(max(0, delay_seconds), MAX_DELAY_SECONDS),
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": task.type},
                "schema_version": {"DataType": "Number", "StringValue": str(task.schema_version)},
            },
        )

    def drop_user_tasks(self, tenant: str, user_id: str, *, namespace: str | None = None) -> int | None:
        """None: SQS deletes a message only by the receipt handle of a delivery, never by content. The
        consumer drops a deleted user's tasks by the deletion tombstone instead (services/user_data.py)."""
        return None

    def ping(self) -> None:
        self._call("get_queue_attributes", QueueUrl=self.queue_url, AttributeNames=["QueueArn"])

    def _call(self, operation: str, **arguments: Any) -> Any:
        return call_aws("queue", f"SQS {operation}", lambda: getattr(self._sqs.get(), operation)(**arguments))


__all__ = ["SqsTaskQueue"]
