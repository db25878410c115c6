"""ApiFunction: API Gateway HTTP API (payload v2.0) → the FastAPI app, through Mangum.

Wiring only. Importing this module costs Powertools and nothing else: FastAPI, the app and the
Container (and through it redis/opensearch/boto3 clients) are built on the first invocation and kept
for the life of the execution environment, so a cold start pays only for what a request needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mangum import Mangum

logger = Logger(service="agent-memory")
metrics = Metrics(namespace="AgentMemory", service="agent-memory")

_asgi: Mangum | None = None


def asgi_adapter() -> Mangum:
    """The Mangum adapter around the app; built once per execution environment, on first use."""
    global _asgi
    if _asgi is None:
        from mangum import Mangum

        from agent_memory.http.app import create_app

        # lifespan="off": the app has no startup work; the Container builds its clients lazily, and
        # each router is included on the first request under its paths (http/on_demand.py).
        _asgi = Mangum(create_app(inline_blocking_calls=True, routers_on_demand=True), lifespan="off")
    return _asgi


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Mangum declares its own LambdaContext protocol; the runtime's object satisfies both.
    response: dict[str, Any] = asgi_adapter()(event, cast(Any, context))
    status = int(response.get("statusCode", 500))
    # One metric per status class, so every invocation publishes something (no empty-EMF warnings)
    # and 5xx can be alarmed on without parsing logs.
    metrics.add_metric(name=f"Http{status // 100}xx", unit=MetricUnit.Count, value=1)
    http = event.get("requestContext", {}).get("http", {})
    # Method, path and status only: bodies carry user conversations and stay out of INFO logs.
    logger.info("request", method=http.get("method"), path=event.get("rawPath"), status=status)
    return response
