"""Embeddings from an OpenAI-compatible `/embeddings` endpoint (OpenAI, Azure-style gateways, vLLM...).

Also home of `post_openai_json`, the one place that talks HTTP to OpenAI-compatible servers (the
chat adapter in `openai_llm.py` uses it too): a deadline per call, one retry on 429/5xx, and every
failure translated into `DependencyUnavailableError`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError

# OpenAI accepts at most 2048 inputs and ~300k tokens per request; the character cap keeps a batch
# under the token cap even for scripts that take about one token per character.
_MAX_INPUTS_PER_REQUEST = 2048
_MAX_CHARS_PER_REQUEST = 250_000
_DEFAULT_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
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
    try:
        return max(_RETRY_BACKOFF_SECONDS, float(response.headers.get("retry-after", 0)))
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


class OpenAIEmbedder:
    """Embeds through `POST {base_url}/embeddings`.

    >>> embedder = OpenAIEmbedder(api_key="sk-...", dimensions=512)
    >>> embedder.dimensions
    512
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.openai.com/v1",
        model: str = "text-embedding-3-small",
        dimensions: int | None = None,
        timeout_seconds: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        known = _DEFAULT_DIMENSIONS.get(model)
        if dimensions is None and known is None:
            raise ConfigurationError(
                f"EMBEDDING_DIMENSIONS is required for embedding model {model!r}", dependency="embedder"
            )
        self.model = model
        self.dimensions = dimensions or known or 0
        # Sent only when configured: older models and many compatible servers reject the field.
        self._requested_dimensions = dimensions
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/embeddings"
        self._timeout_seconds = timeout_seconds
        self._client = client or build_http_client(timeout_seconds)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for batch in _batches(texts):
            vectors.extend(self._embed_batch(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._embed_batch([text])[0]

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        payload: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self._requested_dimensions is not None:
            payload["dimensions"] = self._requested_dimensions
        body = post_openai_json(
            self._client,
            self._url,
            payload,
            api_key=self._api_key,
            timeout_seconds=self._timeout_seconds,
            dependency="embedder",
        )
        try:
            # The API documents `index` on every item; order by it rather than trusting list order.
            items = sorted(body["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in items]
        except (KeyError, TypeError, ValueError) as exc:
            raise DependencyUnavailableError("embedder", f"malformed embeddings response: {exc!r}") from exc
        indexes = [item["index"] for item in items]
        if indexes != list(range(len(texts))):
            detail = f"expected {len(texts)} embeddings, got indexes {indexes[:10]}"
            raise DependencyUnavailableError("embedder", detail)
        wrong = next((len(vector) for vector in vectors if len(vector) != self.dimensions), None)
        if wrong is not None:
            detail = f"model {self.model!r} returned {wrong}-dimensional vectors, not {self.dimensions}"
            raise ConfigurationError(detail, dependency="embedder")
        return vectors


def _batches(texts: Sequence[str]) -> list[list[str]]:
    batches: list[list[str]] = []
    current: list[str] = []
    chars = 0
    for text in texts:
        full = len(current) == _MAX_INPUTS_PER_REQUEST or chars + len(text) > _MAX_CHARS_PER_REQUEST
        if current and full:
            batches.append(current)
            current, chars = [], 0
        current.append(text)
        chars += len(text)
    if current:
        batches.append(current)
    return batches
