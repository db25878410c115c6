"""Secrets from AWS Secrets Manager or SSM Parameter Store, read once and cached per execution environment.

A secret setting (`OPENAI_API_KEY_SECRET`, `EMBEDDING_API_KEY_SECRET`, `REDIS_AUTH_TOKEN_SECRET`) names
where the value lives:

    arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-key-AbCdEf   Secrets Manager, by ARN
    openai-key                                                               Secrets Manager, by name
    ssm:/agent-memory/openai-key                                             SSM, decrypted (SecureString)

The value is the secret's whole SecretString (or the parameter's value), stripped of edge whitespace.

`SecretReader` holds one client per service, built on first use (`_aws.aws_client`: with the credentials
in the environment, as on Lambda, the standard library's JSON client, else boto3's; connect/read timeouts
and retries bounded either way), and caches each value for `max_age_seconds` per execution environment,
so a rotated secret is picked up within that time. A dependency that refuses the cached value (OpenAI 401,
Redis WRONGPASS) calls `RotatingSecret.refresh`: one fetch that skips the cache. Nothing is fetched or
imported until a value is asked for.

Why not Powertools' parameter providers, which this module used before: importing them imports boto3 and
botocore, and a provider wants a boto3 client, ~150–200 ms of CPU on the first request
of every stack whose Redis AUTH token (the created stack's) or LLM key is a secret. The cache they gave is
the dozen lines below.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_memory.adapters._aws import aws_client, is_aws_failure
from agent_memory.domain.errors import ConfigurationError

SSM_PREFIX = "ssm:"


@dataclass(frozen=True, slots=True)
class SecretLocation:
    """Where one secret setting points: `service` is "secretsmanager" or "ssm"."""

    setting: str  # the setting that names it, e.g. OPENAI_API_KEY_SECRET (for error messages)
    service: str
    name: str

    @classmethod
    def parse(cls, setting: str, reference: str) -> SecretLocation:
        """`ssm:/path` → SSM; anything else → Secrets Manager (an ARN or a name).

        >>> SecretLocation.parse("OPENAI_API_KEY_SECRET", "ssm:/am/openai")
        SecretLocation(setting='OPENAI_API_KEY_SECRET', service='ssm', name='/am/openai')
        """
        reference = reference.strip()
        if reference.startswith(SSM_PREFIX):
            name = reference.removeprefix(SSM_PREFIX)
            service = "ssm"
        else:
            name, service = reference, "secretsmanager"
        if not name:
            raise ConfigurationError(f"{setting} is empty: name a Secrets Manager secret or ssm:<parameter>", "secrets")
        return cls(setting=setting, service=service, name=name)

    def describe(self) -> str:
        where = "SSM parameter" if self.service == "ssm" else "Secrets Manager secret"
        return f"{self.setting} ({where} {self.name!r})"


class SecretReader:
    """Reads secrets, cached `max_age_seconds` per process. One per Container.

    >>> reader = SecretReader(region="us-east-1", max_age_seconds=300, timeout_seconds=2.0)
    >>> reader.read(SecretLocation.parse("OPENAI_API_KEY_SECRET", "openai-key"))
    'sk-...'
    """

    def __init__(
        self,
        *,
        region: str,
        max_age_seconds: int,
        timeout_seconds: float,
        clients: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._region = region
        self._max_age = max_age_seconds
        self._timeout = timeout_seconds
        self._clients = dict(clients or {})  # service -> client (tests may pass their own)
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}  # (service, name) -> (value, read at)
        self._lock = threading.Lock()

    def read(self, location: SecretLocation, *, force: bool = False) -> str:
        """The secret's value; `force` skips the cache (after the dependency refused the cached one).

        Raises:
            ConfigurationError: the secret is missing, empty, or could not be read (named in the detail).
        """
        key = (location.service, location.name)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and not force and self._clock() - cached[1] < self._max_age:
            return cached[0]
        value = self._fetch(location).strip()
        if not value:
            raise ConfigurationError(f"{location.describe()} is empty", "secrets")
        with self._lock:
            self._cache[key] = (value, self._clock())
        return value

    def _fetch(self, location: SecretLocation) -> str:
        client = self._client(location.service)
        try:
            if location.service == "ssm":
                parameter: str = client.get_parameter(Name=location.name, WithDecryption=True)["Parameter"]["Value"]
                return parameter
            answer: dict[str, Any] = client.get_secret_value(SecretId=location.name)
        except Exception as exc:
            if not is_aws_failure(exc):
                raise
            raise ConfigurationError(
                f"{location.describe()} could not be read: {_cause(exc)}"[:400], "secrets"
            ) from exc
        if "SecretString" not in answer:  # a SecretBinary
            raise ConfigurationError(f"{location.describe()} holds binary data, not a string", "secrets")
        secret: str = answer["SecretString"]
        return secret

    def _client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._clients[service] = aws_client(
                    service, region=self._region, timeout_seconds=self._timeout
                )
            return client


class RotatingSecret:
    """One secret setting's current value, for adapters that authenticate with it.

    `get()` is cheap (the reader's cache) and is what a client asks for each request or connection;
    `refresh()` fetches past the cache, once, when the dependency refused the value `get()` gave.
    """

    def __init__(self, reader: SecretReader, location: SecretLocation) -> None:
        self._reader = reader
        self.location = location

    def get(self) -> str:
        return self._reader.read(self.location)

    def refresh(self) -> str:
        return self._reader.read(self.location, force=True)


def _cause(exc: BaseException) -> str:
    """The AWS error code and message (ResourceNotFoundException, AccessDeniedException...), or what kept
    the call from an answer."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


__all__ = ["SSM_PREFIX", "RotatingSecret", "SecretLocation", "SecretReader"]
