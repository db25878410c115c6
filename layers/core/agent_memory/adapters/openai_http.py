"""HTTP to OpenAI-compatible servers, shared by the embedding and chat adapters.

`post_openai_json` is the one place that talks to them: a deadline per call, one jittered retry on 429/5xx, and
every failure translated into `DependencyUnavailableError`.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx

from agent_memory.domain.errors import DependencyUnavailableError

_RETRY_BACKOFF_SECONDS = 0.25
# The statuses the official OpenAI SDK retries: rate limits, lock timeouts and server faults.
_RETRYABLE = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def build_http_client(timeout_seconds: float) -> httpx.Client:
    """One pooled client per adapter instance; adapters are built once per execution environment."""
    return httpx.Client(timeout=timeout_seconds, limits=httpx.Limits(max_keepalive_connections=10))


def post_openai_json(
    client: httpx.Client,
    url: str,
    payload: dict[str, Any],
    *,
    api_key: str,
    timeout_seconds: float,
    dependency: str,
) -> dict[str, Any]:
    """POST `payload` and return the decoded JSON object, within `timeout_seconds` overall.

    A 408/409/429/5xx answer is retried once after a short pause, but only if the pause and a useful part of
    the budget still fit before the deadline, so the caller's own timeout is never overrun by much.
    """
    deadline = time.monotonic() + timeout_seconds
    headers = {"Authorization": f"Bearer {api_key}"}
    for attempt in (1, 2):
        remaining = deadline - time.monotonic()
        try:
            response = client.post(url, json=payload, headers=headers, timeout=max(remaining, 0.001))
        except httpx.TimeoutException as exc:
            raise DependencyUnavailableError(dependency, f"timed out after {timeout_seconds:g}s") from exc
        except httpx.HTTPError as exc:
            raise DependencyUnavailableError(dependency, f"request failed: {type(exc).__name__}") from exc
        if response.status_code < 300:
            return _json_object(response, dependency)
        pause = _retry_pause(response)
        if attempt == 1 and response.status_code in _RETRYABLE and pause < (deadline - time.monotonic()) / 2:
            time.sleep(pause)
            continue
        detail = f"HTTP {response.status_code}: {_error_message(response)}"
        raise DependencyUnavailableError(dependency, detail)
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_pause(response: httpx.Response) -> float:
    """Retry-After when the server names one, else 0.25–0.5 s: jittered, so the clients a rate limit hit
    together (Lambda instances, extraction workers) do not all come back at the same moment."""
    jittered = _RETRY_BACKOFF_SECONDS * (1 + random.random())
    try:
        return max(jittered, float(response.headers.get("retry-after", 0)))
    except ValueError:  # an HTTP-date Retry-After: too far away to be worth waiting for
        return float("inf")


def _json_object(response: httpx.Response, dependency: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise DependencyUnavailableError(dependency, "answered with a body that is not JSON") from exc
    if not isinstance(body, dict):
        raise DependencyUnavailableError(dependency, "answered with JSON that is not an object")
    return body


def _error_message(response: httpx.Response) -> str:
    """OpenAI's `error.message` when present, else the start of the body; never the request."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or response.text or response.reason_phrase)[:300]


