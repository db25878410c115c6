"""A deterministic, dependency-free embedder for unit tests and `EMBEDDING_PROVIDER=fake`.

Feature hashing of lower-cased word tokens and their character trigrams into `dimensions` buckets,
L2-normalised. Texts that share words land close together, so similarity tests behave like a real
model on easy cases, and the same text always yields the same vector in every process.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    def __init__(self, dimensions: int = 64, model: str = "fake-hash-v1") -> None:
        self.dimensions = dimensions
        self.model = model

    def _bucket(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimensions, (1.0 if (value >> 63) & 1 else -1.0)

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            index, sign = self._bucket("w:" + word)
            vector[index] += 2.0 * sign
            padded = f"#{word}#"
            for i in range(len(padded) - 2):
                index, sign = self._bucket("t:" + padded[i : i + 3])
                vector[index] += 0.5 * sign
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0:
            vector[0] = 1.0
            return vector
        return [v / norm for v in vector]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)
