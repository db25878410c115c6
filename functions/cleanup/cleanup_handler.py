"""CleanupFunction: the scheduled sweep (an EventBridge schedule, every CLEANUP_INTERVAL_MINUTES).

Wiring only: one `CleanupService.run` per invocation with the invocation's remaining time, so the run
stops (and leaves its cursor) before Lambda's timeout cuts it off; the next scheduled run resumes.
The event's content is not used (any schedule event starts one pass). Metrics, in PascalCase:
SessionsSwept, FinalExtractionsQueued, RecordsForgotten, TenantsCleaned, TenantsFailed,
CleanupResumed (1 when the run continued a cut-short one) and CleanupUnfinished (1 when it ran out of
time). Importing this module costs Powertools only; the Container is built on the first run.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="agent-memory")
metrics = Metrics(namespace="AgentMemory", service="agent-memory")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from agent_memory.bootstrap import get_container

    report = get_container().cleanup_service.run(remaining_ms=context.get_remaining_time_in_millis)
    counts = {
        "SessionsSwept": report.sessions_swept,
        "FinalExtractionsQueued": report.final_extractions_queued,
        "RecordsForgotten": report.records_forgotten,
        "TenantsCleaned": report.tenants,
        "TenantsFailed": len(report.failed_tenants),
        "CleanupResumed": int(report.resumed),
        "CleanupUnfinished": int(not report.finished),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    result = asdict(report)
    logger.info("cleanup done", **result)
    return result
