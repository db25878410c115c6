"""The exception tree. Adapters translate vendor errors into these; `http/errors.py` maps them to HTTP.

    AgentMemoryError
    ├── InvalidInputError        400  the request is well-formed but its content is not acceptable
    │   └── UnprocessableError   422  a value is out of its allowed range (where AMS answers 422)
    ├── NotFoundError            404  no such session / memory / task
    ├── ConflictError            409  the write lost a race it cannot retry
    ├── PayloadTooLargeError     413  over a documented size or count limit
    │   └── MessageLimitError    413  an append past MAX_MESSAGES_PER_SESSION, refused by the store
    ├── FeatureDisabledError     400  the feature needs configuration that is absent (e.g. no LLM)
    ├── AuthenticationError      401  no credential, or one that is unknown, expired or revoked
    ├── PermissionDeniedError    403  a valid credential that may not do this (scope, another tenant)
    ├── RateLimitedError         429  over a rate limit; `limit` names it, `retry_after` says when to retry
    └── DependencyUnavailableError  503  Redis, OpenSearch, the embedder or the LLM failed or timed out
        ├── ConfigurationError      503  a dependency is misconfigured (e.g. embedding dimension mismatch)
        └── StructuredOutputError   503  the LLM answered, but never with valid structured output
"""

from __future__ import annotations


class AgentMemoryError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInputError(AgentMemoryError):
    pass


class UnprocessableError(InvalidInputError):
    pass


class NotFoundError(AgentMemoryError):
    pass


class ConflictError(AgentMemoryError):
    pass


class PayloadTooLargeError(AgentMemoryError):
    pass


class MessageLimitError(PayloadTooLargeError):
    """An append a store refused, with nothing written, because the session would then hold `count`
    messages, over `limit` (MAX_MESSAGES_PER_SESSION; `WorkingMemoryStore.append_messages(max_total=)`)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"{count} messages in one session; the limit is {limit} (MAX_MESSAGES_PER_SESSION); "
            "messages are dropped only once they are extracted"
        )
        self.count = count
        self.limit = limit


class FeatureDisabledError(AgentMemoryError):
    pass


class AuthenticationError(AgentMemoryError):
    pass


class PermissionDeniedError(AgentMemoryError):
    pass


class RateLimitedError(AgentMemoryError):
    """Over the rate limit named `limit`; a retry after `retry_after` seconds can succeed."""

    def __init__(self, limit: str, retry_after: float, detail: str | None = None) -> None:
        super().__init__(detail or f"rate limit exceeded: {limit}; retry after {retry_after:.3g} s")
        self.limit = limit
        self.retry_after = retry_after


class DependencyUnavailableError(AgentMemoryError):
    """A backing service failed, timed out or refused. `dependency` names it (redis, sqlite, embedder...)."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency


class ConfigurationError(DependencyUnavailableError):
    def __init__(self, detail: str, dependency: str = "configuration") -> None:
        AgentMemoryError.__init__(self, detail)
        self.dependency = dependency


class StructuredOutputError(DependencyUnavailableError):
    """The LLM kept answering with JSON that failed validation; `attempts` were made."""

    def __init__(self, detail: str, attempts: int) -> None:
        super().__init__("llm", detail)
        self.attempts = attempts
