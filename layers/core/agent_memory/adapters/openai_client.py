"""The official `openai` SDK, configured once for the chat and embedding adapters.

`make_openai_client` builds an `OpenAI` client (any OpenAI-compatible base URL: OpenAI, vLLM, Ollama, a
LiteLLM proxy) or an `AzureOpenAI` one, whose own retries stay inside the call's timeout
(`RetryBudget`); `openai_errors` turns every SDK failure into `DependencyUnavailableError`. `openai` is
imported inside these functions, never at module import, and `LazyOpenAIClient` defers even that to the
first call: importing the SDK takes about half a second, which a request that never calls the LLM (the
adapter is built with the working-memory service) should not pay on a cold start.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError

if TYPE_CHECKING:
    from agent_memory.adapters.secrets import RotatingSecret

T = TypeVar("T")

# The SDK waits 0.375-0.5 s (0.5 s less up to 25% jitter) before its first retry, unless the server's
# Retry-After names a pause. A retry needs at least that much room in the budget.
_SDK_FIRST_RETRY_PAUSE = 0.5
_PAUSE_SHARE = 0.1
_MIN_SECONDS_FOR_A_RETRY = 2.0
# The statuses the SDK retries (its `_should_retry`): request and lock timeouts, rate limits, server faults.
_RETRYABLE = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class AzureOpenAITarget:
    """Where `AzureOpenAI` sends requests: `{endpoint}/openai/deployments/{model}/...?api-version=...`."""

    endpoint: str
    api_version: str


@dataclass(frozen=True)
class RetryBudget:
    """How one call's `timeout_seconds` is shared between two attempts and the pause between them.

    The SDK's timeout applies to each attempt, so the total stays bounded only if attempts and pause
    are sized together: each attempt gets (timeout - pause) / 2, and the pause is 10% of the timeout
    (at least the SDK's own 0.5 s). A Retry-After longer than that pause makes the failure final at
    once (`refuse_unaffordable_retry`); a timeout too short for two attempts gets one.

    >>> RetryBudget.within(20.0)
    RetryBudget(attempt_timeout=9.0, max_retries=1, max_pause=2.0)
    >>> RetryBudget.within(1.0)
    RetryBudget(attempt_timeout=1.0, max_retries=0, max_pause=0.0)
    """

    attempt_timeout: float
    max_retries: int
    max_pause: float

    @classmethod
    def within(cls, timeout_seconds: float) -> RetryBudget:
        if timeout_seconds < _MIN_SECONDS_FOR_A_RETRY:
            return cls(attempt_timeout=timeout_seconds, max_retries=0, max_pause=0.0)
        pause = max(_SDK_FIRST_RETRY_PAUSE, timeout_seconds * _PAUSE_SHARE)
        return cls(attempt_timeout=(timeout_seconds - pause) / 2, max_retries=1, max_pause=pause)


def make_openai_client(
    *,
    api_key: str | Callable[[], str],
    base_url: str,
    timeout_seconds: float,
    azure: AzureOpenAITarget | None = None,
    http_client: Any = None,
    dependency: str,
) -> Any:
    """An `openai.OpenAI` (or `openai.AzureOpenAI`) client whose retries fit in `timeout_seconds`.

    `http_client` (an `openai.DefaultHttpxClient`) is for tests that script the transport; the budget's
    hook is added to it. A callable `api_key` is asked for the key before each request (a secret's
    cached value: see `adapters/secrets.RotatingSecret`).

    Raises:
        ConfigurationError: the `openai` package is not installed.
    """
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - a core dependency; absent only in a broken install
        raise ConfigurationError("the OpenAI-compatible adapters need the `openai` package", dependency) from exc

    budget = RetryBudget.within(timeout_seconds)
    timeout = openai.Timeout(budget.attempt_timeout, connect=min(2.0, budget.attempt_timeout))
    if http_client is None:
        http_client = openai.DefaultHttpxClient(timeout=timeout)
    if budget.max_retries:
        http_client.event_hooks["response"].append(refuse_unaffordable_retry(budget.max_pause))
    common: dict[str, Any] = {
        "api_key": api_key,
        "timeout": timeout,
        "max_retries": budget.max_retries,
        "http_client": http_client,
    }
    if azure is not None:
        return openai.AzureOpenAI(azure_endpoint=azure.endpoint, api_version=azure.api_version, **common)
    return openai.OpenAI(base_url=base_url, **common)


class LazyOpenAIClient:
    """`make_openai_client(**options)`, built on the first `get()` (once, whichever thread asks first).

    `api_key` is a string, or a `RotatingSecret` whose cached value is read before each request; with
    one, `call` answers a 401 by fetching the key past the cache and trying once more (it was rotated).
    """

    def __init__(self, *, api_key: str | RotatingSecret, **options: Any) -> None:
        self._secret = None if isinstance(api_key, str) else api_key
        self._options = {**options, "api_key": api_key if isinstance(api_key, str) else api_key.get}
        self._client: Any = None
        self._lock = threading.Lock()

    def call(self, request: Callable[[Any], T]) -> T:
        """`request(client)`, repeated once after a key refresh when a rotating key got a 401."""
        import openai

        client = self.get()
        try:
            return request(client)
        except openai.AuthenticationError:
            if self._secret is None:
                raise
            self._secret.refresh()
            return request(client)

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_openai_client(**self._options)
        return self._client


def refuse_unaffordable_retry(max_pause: float) -> Callable[[Any], None]:
    """A response hook: a retryable answer whose Retry-After exceeds `max_pause` is marked
    `x-should-retry: false` (the SDK obeys that header), so the caller hears of the rate limit now
    instead of after a wait its own timeout cannot afford. Shorter Retry-Afters the SDK honours."""

    def hook(response: Any) -> None:
        if response.status_code in _RETRYABLE and _retry_after_seconds(response.headers) > max_pause:
            response.headers["x-should-retry"] = "false"

    return hook


def _retry_after_seconds(headers: Any) -> float:
    """The server's pause in seconds (0 when it names none); an HTTP date counts as too far to wait."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            return math.inf
        return seconds if math.isfinite(seconds) else math.inf
    return 0.0


@contextmanager
def openai_errors(dependency: str, timeout_seconds: float) -> Iterator[None]:
    """Translate what the SDK raises inside the block into `DependencyUnavailableError(dependency, ...)`.

    Keep only the SDK call inside: a 200 whose body is not JSON surfaces from the SDK as a ValueError.
    """
    import openai

    try:
        yield
    except openai.APITimeoutError as exc:
        raise DependencyUnavailableError(dependency, f"timed out after {timeout_seconds:g}s") from exc
    except openai.APIStatusError as exc:
        raise DependencyUnavailableError(dependency, f"HTTP {exc.status_code}: {_error_message(exc)}") from exc
    except openai.APIConnectionError as exc:
        cause = type(exc.__cause__ or exc).__name__
        raise DependencyUnavailableError(dependency, f"request failed: {cause}") from exc
    except openai.OpenAIError as exc:
        raise DependencyUnavailableError(dependency, f"{type(exc).__name__}: {exc}"[:300]) from exc
    except ValueError as exc:
        raise DependencyUnavailableError(dependency, "answered with a body that is not JSON") from exc


def _error_message(exc: Any) -> str:
    """OpenAI's `error.message` when present, else the start of the body; never the request."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else body
    if not message:
        try:
            message = exc.response.text
        except Exception:  # a streamed body that was never read
            message = None
    return str(message or exc.response.reason_phrase or exc.status_code)[:300]
