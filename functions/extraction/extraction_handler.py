"""ExtractionFunction: SQS ExtractionQueue → long-term memories, one record per extraction task.

Wiring only: Powertools' `BatchProcessor` calls `record_handler` per record and `process_partial_response`
answers `batchItemFailures`, so only the failed records return to the queue (the event source mapping
has `FunctionResponseTypes: [ReportBatchItemFailures]`). Outcomes:
- a body that is not a valid task is a failure: SQS redelivers it until `maxReceiveCount`, then moves
  it to the dead-letter queue, where the alarm sees it;
- a transient failure (LLM down, slow, malformed output after its retries, a store timeout) is a
  failure too, logged with the task id: the record comes back after the visibility timeout;
- a duplicate delivery or a replay changes nothing (`ExtractionService.run` skips what is extracted
  or superseded, and derived ids come from the task's idempotency key);
- with less than `_RESERVE_MS` of the invocation left, remaining records are failed unprocessed,
  so none is cut off half-way by the timeout.
The Container (clients for Redis, OpenSearch, the LLM) is built on the first record and kept for the
life of the execution environment; importing this module costs Powertools only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="agent-memory")
metrics = Metrics(namespace="AgentMemory", service="agent-memory")
# raise_on_entire_batch_failure=False: a batch of only poison messages is reported record by record,
# like any other, instead of failing the invocation (which would hide which records failed).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Time kept back for one more extraction: an LLM call (LLM_TIMEOUT_SECONDS, 20 s by default) and the
# store writes after it. The function's timeout is 120 s (template.yaml).
_RESERVE_MS = 25_000


class OutOfTimeError(Exception):
    """Not started: too little of the invocation was left. The record returns to the queue as it was."""


def _run(record: SQSRecord, context: LambdaContext) -> None:
    from agent_memory.bootstrap import get_container
    from agent_memory.domain.errors import AgentMemoryError
    from agent_memory.domain.tasks import InvalidTaskError, decode_task

    if context.get_remaining_time_in_millis() < _RESERVE_MS:
        metrics.add_metric(name="ExtractionDeferred", unit=MetricUnit.Count, value=1)
        raise OutOfTimeError(record.message_id)
    try:
        task = decode_task(record.body)
    except InvalidTaskError as exc:
        metrics.add_metric(name="ExtractionInvalidMessage", unit=MetricUnit.Count, value=1)
        logger.error("invalid task message", message_id=record.message_id, error=exc.detail,
                     receive_count=record.attributes.approximate_receive_count)
        raise
    try:
        result = get_container().run_task(task)
    except AgentMemoryError as exc:
        metrics.add_metric(name="ExtractionFailed", unit=MetricUnit.Count, value=1)
        logger.error("extraction failed", task_id=task.task_id, message_id=record.message_id, error=exc.detail,
                     error_type=type(exc).__name__, receive_count=record.attributes.approximate_receive_count)
        raise
    kind = "SummaryViewRun" if task.type == "summary_view_run" else "Extraction"
    metrics.add_metric(name=f"{kind}{result.status.title().replace('-', '')}", unit=MetricUnit.Count, value=1)
    counts = {name: len(value) if isinstance(value, list) else value
              for name, value in vars(result).items() if name != "status"}
    logger.info("task done", task_id=task.task_id, type=task.type, status=result.status, **counts)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = process_partial_response(
        event=event,
        record_handler=lambda record: _run(record, context),
        processor=processor,
        context=context,
    )
    return response
