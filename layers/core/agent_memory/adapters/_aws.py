"""AWS clients as every AWS adapter here builds them, and AWS errors as domain errors.

boto3 is imported when the first client is built, never at import time (cold start). Each client has
connect and read timeouts and at most one retry, so a slow AWS call fails inside the request's budget.
DynamoDB, read on every cold start's first request in AUTH_MODE=api_key, gets the standard library's
JSON client (`_aws_json.py`: no botocore import, no model loading) wherever that behaves as boto3 would.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from agent_memory.domain.errors import DependencyUnavailableError

T = TypeVar("T")


def aws_client(
    service: str, *, region: str, timeout_seconds: float, endpoint_url: str | None = None, max_attempts: int = 2
) -> Any:
    """A client for `service` with connect/read timeouts of `timeout_seconds` and `max_attempts`: boto3's,
    or for DynamoDB, SQS, Secrets Manager and SSM with credentials in the environment,
    `_aws_json.AwsJsonClient` (the same calls). `endpoint_url` wins over an endpoint the environment names
    (AWS_ENDPOINT_URL[_<SERVICE ID>]), as it does for boto3."""
    from agent_memory.adapters import _aws_json

    credentials = _aws_json.environment_credentials()
    if (
        service in _aws_json.JSON_TARGETS
        and credentials is not None
        and not _aws_json.proxy_in_environment()
        and (endpoint_url or _aws_json.configured_endpoint(service) or _aws_json.regional_endpoint(service, region))
    ):
        return _aws_json.AwsJsonClient(
            service, region=region, timeout_seconds=timeout_seconds, credentials=credentials,
            endpoint_url=endpoint_url, max_attempts=max_attempts,
        )  # fmt: skip
    return boto3_client(
        service, region=region, timeout_seconds=timeout_seconds, endpoint_url=endpoint_url, max_attempts=max_attempts
    )


def boto3_client(
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
    """The service's error code of a botocore ClientError or an AwsServiceError ("ConditionalCheckFailedException")."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", "unknown"))


def is_aws_failure(exc: BaseException) -> bool:
    """Whether `exc` is an AWS call's failure, from either client: the service's error (botocore's
    ClientError, AwsServiceError) or no answer (BotoCoreError, AwsTransportError)."""
    from agent_memory.adapters._aws_json import AwsServiceError, AwsTransportError

    if isinstance(exc, AwsServiceError | AwsTransportError):
        return True
    if "botocore" not in sys.modules:  # then it cannot be botocore's (and importing botocore costs ~0.1 s)
        return False
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError)


def call_aws(
    dependency: str, label: str, call: Callable[[], T], *, on_client_error: Callable[[str], None] | None = None
) -> T:
    """Run one AWS call; the service's error (botocore's ClientError, AwsServiceError) or no answer
    (BotoCoreError, AwsTransportError) becomes DependencyUnavailableError(`dependency`, "`label` failed:
    <code>"). `on_client_error(code)` may raise a more specific domain error first."""
    from agent_memory.adapters._aws_json import AwsServiceError, AwsTransportError

    try:
        return call()
    except AwsServiceError as exc:
        _client_error(dependency, label, exc, on_client_error)
    except AwsTransportError as exc:
        raise DependencyUnavailableError(dependency, f"{label} failed: {exc}") from exc
    except Exception as exc:
        if "botocore" not in sys.modules:  # then it cannot be botocore's (and importing botocore costs ~0.1 s)
            raise
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            _client_error(dependency, label, exc, on_client_error)
        if isinstance(exc, BotoCoreError):
            raise DependencyUnavailableError(dependency, f"{label} failed: {type(exc).__name__}") from exc
        raise


def _client_error(
    dependency: str, label: str, exc: Exception, on_client_error: Callable[[str], None] | None
) -> NoReturn:
    code = error_code(exc)
    if on_client_error is not None:
        on_client_error(code)
    raise DependencyUnavailableError(dependency, f"{label} failed: {code}") from exc
