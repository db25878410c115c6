"""The bedrock-runtime client, configured once for the Bedrock adapters (bedrock_embedder, bedrock_llm)."""

from __future__ import annotations

from typing import Any

from agent_memory.domain.errors import ConfigurationError

# botocore's standard retry mode waits rand(0, 1) s before its first retry of a throttled call (50 ms
# scale for other faults); a retry needs room for that in the budget.
_FIRST_RETRY_PAUSE = 1.0
_PAUSE_SHARE = 0.1
_MIN_SECONDS_FOR_A_RETRY = 3.0


def make_bedrock_runtime_client(
    region: str,
    timeout_seconds: float,
    *,
    endpoint_url: str | None = None,
    dependency: str = "embedder",
    max_pool_connections: int = 10,
) -> Any:
    """A bedrock-runtime client whose worst case, both attempts and the pause between them, stays
    within `timeout_seconds`: each attempt (connect + read) gets (timeout - pause) / 2, the pause 10% of
    it (at least botocore's 1 s). Under 3 s there is room for one attempt only. (botocore stretches a
    pause to an `x-amz-retry-after` header, by 5 s at most; Bedrock Runtime does not send one.)

    `endpoint_url` replaces the region's endpoint: a VPC endpoint, or a test server on loopback.
    boto3 is imported here, not at module import, to keep it off the cold start of functions that do
    not call Bedrock.

    Raises:
        ConfigurationError: boto3 is not installed.
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise ConfigurationError("Bedrock needs boto3 (the `aws` extra)", dependency=dependency) from exc

    if timeout_seconds < _MIN_SECONDS_FOR_A_RETRY:
        attempts, per_attempt = 1, timeout_seconds
    else:
        pause = max(_FIRST_RETRY_PAUSE, timeout_seconds * _PAUSE_SHARE)
        attempts, per_attempt = 2, (timeout_seconds - pause) / 2
    connect = min(2.0, per_attempt / 4)
    config = Config(
        connect_timeout=connect,
        read_timeout=per_attempt - connect,
        retries={"mode": "standard", "total_max_attempts": attempts},
        max_pool_connections=max_pool_connections,
    )
    return boto3.client("bedrock-runtime", region_name=region, endpoint_url=endpoint_url, config=config)


def describe_bedrock_error(exc: Exception) -> str:
    """`ValidationException: <message>` for service errors; the class name and text otherwise."""
    error = getattr(exc, "response", {}).get("Error", {})
    if error:
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
