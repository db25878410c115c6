"""Secrets from AWS Secrets Manager or SSM Parameter Store, through Powertools parameters.

A secret setting (`OPENAI_API_KEY_SECRET`, `EMBEDDING_API_KEY_SECRET`, `REDIS_AUTH_TOKEN_SECRET`) names
where the value lives:

    arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-key-AbCdEf   Secrets Manager, by ARN
    openai-key                                                               Secrets Manager, by name
    ssm:/agent-memory/openai-key                                             SSM, decrypted (SecureString)

The value is the secret's whole SecretString (or the parameter's value), stripped of edge whitespace.

`SecretReader` holds one Powertools provider per service, built on first use with a boto3 client whose
connect/read timeouts and retries are bounded, and caches each value for `max_age_seconds` per execution
environment (Powertools' own cache), so a rotated secret is picked up within that time. A dependency
that refuses the cached value (OpenAI 401, Redis WRONGPASS) calls `RotatingSecret.refresh`: one fetch
that skips the cache. Nothing is fetched or imported (boto3) until a value is asked for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from agent_memory.adapters._aws import aws_client
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
    ) -> None:
        self._region = region
        self._max_age = max_age_seconds
        self._timeout = timeout_seconds
        self._clients = dict(clients or {})  # service -> boto3 client (tests pass their own)
        self._providers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def read(self, location: SecretLocation, *, force: bool = False) -> str:
        """The secret's value; `force` skips the cache (after the dependency refused the cached one).

        Raises:
            ConfigurationError: the secret is missing, empty, or could not be read (named in the detail).
        """
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        provider = self._provider(location.service)
        options: dict[str, Any] = {"max_age": self._max_age, "force_fetch": force}
        if location.service == "ssm":
            options["decrypt"] = True
        try:
            value = provider.get(location.name, **options)
        except GetParameterError as exc:
            raise ConfigurationError(
                f"{location.describe()} could not be read: {_cause(exc)}"[:400], "secrets"
            ) from exc
        if isinstance(value, bytes):
            raise ConfigurationError(f"{location.describe()} holds binary data, not a string", "secrets")
        value = str(value).strip()
        if not value:
            raise ConfigurationError(f"{location.describe()} is empty", "secrets")
        return value

    def _provider(self, service: str) -> Any:
        with self._lock:
            provider = self._providers.get(service)
            if provider is None:
                from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

                client = self._clients.get(service) or self._client(service)
                factory = SSMProvider if service == "ssm" else SecretsProvider
                provider = self._providers[service] = factory(boto3_client=client)
            return provider

    def _client(self, service: str) -> Any:
        return aws_client(service, region=self._region, timeout_seconds=self._timeout)


class RotatingSecret:
    """One secret setting's current value, for adapters that authenticate with it.

    `get()` is cheap (Powertools' cache) and is what a client asks for each request or connection;
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
    """The AWS error code and message (ResourceNotFoundException, AccessDeniedException...)."""
    cause = exc.__cause__ or exc.__context__ or exc
    response = getattr(cause, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message')}"
    return f"{type(cause).__name__}: {cause}"


__all__ = ["SSM_PREFIX", "RotatingSecret", "SecretLocation", "SecretReader"]
