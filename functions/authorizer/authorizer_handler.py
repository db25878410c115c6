"""ApiKeyAuthorizer: the HTTP API's Lambda authorizer for AuthMode=api_key (REQUEST type, payload 2.0,
simple responses).

A first gate, so a call without a valid key never reaches ApiFunction: it verifies the key with the same
`services/auth.Authenticator` and `ApiKeyService` over the same DynamoDB table (`API_KEYS_TABLE`) as the
API, one implementation. API Gateway caches an allow per identity source for `AuthorizerCacheSeconds`
(template.yaml), so a key revoked a moment ago may still pass *this* gate until the cache expires;
ApiFunction reads the key again on every request and refuses it at once (401 "Token has been revoked").
Outcomes, as API Gateway turns them into responses:
- no credential, malformed, unknown, wrong secret, expired, revoked: `raise Exception("Unauthorized")`
  → 401 from the gateway, nothing cached, ApiFunction not invoked;
- a valid key: `{"isAuthorized": true, "context": {tenant, subject, key_id, scopes}}` (scopes space-separated);
- the key table cannot be read (DependencyUnavailableError): allowed through, logged and counted
  (`AuthorizerDependencyFailOpen`), because ApiFunction checks the key itself and answers the caller a
  proper 503 with Retry-After, where a failing authorizer could only give an opaque 500. It costs
  nothing in safety: nothing reaches a store without the function's own check.
`x-tenant-id` is not looked at here: it is not part of the cache key, so a cached answer could not
honour it; the function checks it.

Importing this module costs Powertools only; the Container (boto3 and the table client) is built on the
first invocation and kept for the life of the execution environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_memory import cold_start

# No cyclic collection from here to the end of the first invocation (agent_memory/cold_start.py).
cold_start.pause()

from aws_lambda_powertools import Logger, Metrics  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="agent-memory")
metrics = Metrics(namespace="AgentMemory", service="agent-memory")

# The one message API Gateway turns into a 401 (any other exception is a 500).
UNAUTHORIZED = "Unauthorized"


class UnauthorizedError(Exception):
    """Raised with the message API Gateway maps to 401 Unauthorized."""

    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


def _headers(event: dict[str, Any]) -> dict[str, str]:
    # Payload 2.0 sends header names lower-cased already; lower them again for hand-written events.
    return {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return _authorize(event)
    finally:
        cold_start.resume()  # after the first invocation; a no-op after that


def _authorize(event: dict[str, Any]) -> dict[str, Any]:
    from agent_memory.bootstrap import get_container
    from agent_memory.domain.errors import AuthenticationError, ConfigurationError, DependencyUnavailableError

    authenticator = get_container().authenticator
    if authenticator.mode != "api_key":
        # A wiring mistake, not a caller's: a 500 at the gateway and an error in the log.
        raise ConfigurationError(f"the API-key authorizer needs AUTH_MODE=api_key, not {authenticator.mode}")
    try:
        principal = authenticator.verify(authenticator.credential(_headers(event)), None)
    except AuthenticationError as exc:
        metrics.add_metric(name="AuthorizerDenied", unit=MetricUnit.Count, value=1)
        logger.info("denied", reason=exc.detail, route=event.get("routeKey"))
        raise UnauthorizedError from None
    except DependencyUnavailableError as exc:
        metrics.add_metric(name="AuthorizerDependencyFailOpen", unit=MetricUnit.Count, value=1)
        logger.warning("key store unavailable; the API function decides", dependency=exc.dependency,
                       error=exc.detail)
        return {"isAuthorized": True, "context": {"unverified": "true"}}
    metrics.add_metric(name="AuthorizerAllowed", unit=MetricUnit.Count, value=1)
    return {
        "isAuthorized": True,
        "context": {
            "tenant": principal.tenant,
            "subject": principal.subject,
            "key_id": principal.key_id or "",
            "scopes": " ".join(sorted(principal.scopes)),
        },
    }
