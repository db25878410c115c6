"""boto3 clients as every AWS adapter here builds them, and AWS errors as domain errors.

boto3 is imported when the first client is built, never at import time (cold start). Each client has
connect and read timeouts and at most one retry, so a slow AWS call fails inside the request's budget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from agent_memory.domain.errors import DependencyUnavailableError

T = TypeVar("T")


def aws_client(
    service: str, *, region: str, timeout_seconds: float, endpoint_url: str | None = None, max_attempts: int = 2
) -> Any:
    """A boto3 client for `service` with connect/read timeouts of `timeout_seconds` and `max_attempts`."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url, config=config)


class LazyAwsClient:
    """One client per adapter instance, built on first use (thread-safe), or the one a test passes."""

    def __init__(
        self, service: str, *, region: str, timeout_seconds: float, endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:  # fmt: skip
        self._service = service
        self._region = region
        self._timeout_seconds = timeout_seconds
        self._endpoint_url = endpoint_url
        self._client = client
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = aws_client(
                        self._service, region=self._region, timeout_seconds=self._timeout_seconds,
                        endpoint_url=self._endpoint_url,
                    )  # fmt: skip
        return self._client


def error_code(exc: Exception) -> str:
    """The service's error code of a botocore ClientError ("ConditionalCheckFailedException")."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", "unknown"))


def call_aws(
    dependency: str, label: str, call: Callable[[], T], *, on_client_error: Callable[[str], None] | None = None
) -> T:
    """Run one AWS call; a ClientError or BotoCoreError becomes DependencyUnavailableError(`dependency`,
    "`label` failed: <code>"). `on_client_error(code)` may raise a more specific domain error first."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        code = error_code(exc)
        if on_client_error is not None:
            on_client_error(code)
        raise DependencyUnavailableError(dependency, f"{label} failed: {code}") from exc
    except BotoCoreError as exc:
        raise DependencyUnavailableError(dependency, f"{label} failed: {type(exc).__name__}") from exc
