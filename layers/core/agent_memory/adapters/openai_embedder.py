"""Embeddings through the official `openai` SDK: OpenAI, any OpenAI-compatible server (vLLM, Ollama...), or Azure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent_memory.adapters.openai_client import AzureOpenAITarget, LazyOpenAIClient, openai_errors
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError

if TYPE_CHECKING:
    from agent_memory.adapters.secrets import RotatingSecret

# OpenAI accepts at most 2048 inputs and ~300k tokens per request; the character cap keeps a batch
# under the token cap even for scripts that take about one token per character.
_MAX_INPUTS_PER_REQUEST = 2048
_MAX_CHARS_PER_REQUEST = 250_000
_DEFAULT_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """Embeds through `POST {base_url}/embeddings` (with `azure`, the deployment named `model`).

    >>> embedder = OpenAIEmbedder(api_key="sk-...", dimensions=512)
    >>> embedder.dimensions
    512
    """

    def __init__(
        self,
        api_key: str | RotatingSecret,
        base_url: str = "https://api.openai.com/v1",
        model: str = "text-embedding-3-small",
        dimensions: int | None = None,
        timeout_seconds: float = 10.0,
        azure: AzureOpenAITarget | None = None,
        http_client: Any = None,
    ) -> None:
        known = _DEFAULT_DIMENSIONS.get(model)
        if dimensions is None and known is None:
            raise ConfigurationError(
                f"EMBEDDING_DIMENSIONS is required for embedding model {model!r}", dependency="embedder"
            )
        self.model = model
        self.dimensions = dimensions or known or 0
        # OpenAI documents `dimensions` for text-embedding-3 models only; older models and many
        # compatible servers (serving other models) reject it. Elsewhere the configured size is only
        # what the answer is checked against.
        self._requested_dimensions = dimensions if model.startswith("text-embedding-3") else None
        self._timeout_seconds = timeout_seconds
        self._client = LazyOpenAIClient(
            api_key=api_key,
            base_url=base_url,
            timeout_seconds=timeout_seconds,
            azure=azure,
            http_client=http_client,
            dependency="embedder",
        )

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for batch in _batches(texts):
            vectors.extend(self._embed_batch(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._embed_batch([text])[0]

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        options: dict[str, Any] = {}
        if self._requested_dimensions is not None:
            options["dimensions"] = self._requested_dimensions
        with openai_errors("embedder", self._timeout_seconds):
            # "float": without it the SDK asks for base64 and decodes it, which compatible servers vary on.
            response = self._client.call(
                lambda client: client.embeddings.create(
                    model=self.model, input=texts, encoding_format="float", **options
                )
            )
        try:
            # The API documents `index` on every item; order by it rather than trusting list order.
            items = sorted(response.data, key=lambda item: item.index)
            vectors = [[float(x) for x in item.embedding] for item in items]
        except (AttributeError, TypeError, ValueError) as exc:
            raise DependencyUnavailableError("embedder", f"malformed embeddings response: {exc!r}") from exc
        indexes = [item.index for item in items]
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
