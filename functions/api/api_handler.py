"""ApiFunction: API Gateway HTTP API (payload v2.0) → the FastAPI app, through Mangum.

Wiring only. Importing this module costs Powertools and nothing else: FastAPI, the app and the
Container (and through it redis/opensearch/boto3 clients) are built on the first invocation and kept
for the life of the execution environment, so a cold start pays only for what a request needs.

Under SnapStart or provisioned concurrency INIT is not on any request's path (it runs before the
snapshot, or before traffic), so there the module does the first requests' work at import instead:
the app with every router, the token counter, the Redis adapter's modules. Nothing in it opens a
connection, reads a secret or draws randomness (every client, secret and key set is fetched on first
use), so a snapshot restored into many environments shares no connection, credential or random state.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from agent_memory import cold_start

# No cyclic collection from here to the end of the first invocation (agent_memory/cold_start.py).
cold_start.pause()

from aws_lambda_powertools import Logger, Metrics  # noqa: E402
from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mangum import Mangum

logger = Logger(service="agent-memory")
metrics = Metrics(namespace="AgentMemory", service="agent-memory")

_asgi: Mangum | None = None


# AWS_LAMBDA_INITIALIZATION_TYPE: on-demand (a request waits for INIT), snap-start, provisioned-concurrency.
INIT_AHEAD_OF_REQUESTS = ("snap-start", "provisioned-concurrency")


def asgi_adapter(*, routers_on_demand: bool = True) -> Mangum:
    """The Mangum adapter around the app; built once per execution environment, on first use."""
    global _asgi
    if _asgi is None:
        from mangum import Mangum

        from agent_memory.http.app import create_app

        # lifespan="off": the app has no startup work; the Container builds its clients lazily, and
        # each router is included on the first request under its paths (http/on_demand.py).
        app = create_app(inline_blocking_calls=True, routers_on_demand=routers_on_demand)
        _asgi = Mangum(app, lifespan="off")
    return _asgi


def prepare_ahead_of_requests() -> None:
    """The first requests' one-off work, for an INIT that no request waits for (see the module doc)."""
    asgi_adapter(routers_on_demand=False)
    import agent_memory.adapters.redis_working_memory  # noqa: F401  (redis-py and hiredis; connects on use)
    from agent_memory.services.tokens import prepare_counting

    prepare_counting()  # the cl100k ranks and tiktoken's tables, which a GET with model_name counts with
    cold_start.resume(collect=True)


if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in INIT_AHEAD_OF_REQUESTS:
    prepare_ahead_of_requests()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Mangum declares its own LambdaContext protocol; the runtime's object satisfies both.
    try:
        response: dict[str, Any] = asgi_adapter()(event, cast(Any, context))
    finally:
        cold_start.resume()  # after the first invocation; a no-op after that
    status = int(response.get("statusCode", 500))
    # One metric per status class, so every invocation publishes something (no empty-EMF warnings)
    # and 5xx can be alarmed on without parsing logs.
    metrics.add_metric(name=f"Http{status // 100}xx", unit=MetricUnit.Count, value=1)
    http = event.get("requestContext", {}).get("http", {})
    # Method, path and status only: bodies carry user conversations and stay out of INFO logs.
    logger.info("request", method=http.get("method"), path=event.get("rawPath"), status=status)
    return response
