"""Embeddings from Amazon Titan Text Embeddings V2 on Bedrock.

Titan V2 embeds one text per `InvokeModel` call, so documents are embedded by a few concurrent calls
(boto3 clients are thread-safe) and the results kept in input order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent_memory.adapters.bedrock_runtime import describe_bedrock_error, make_bedrock_runtime_client
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError

_ALLOWED_DIMENSIONS = (256, 512, 1024)
_MAX_CONCURRENT_CALLS = 4


class BedrockEmbedder:
    """Embeds with `amazon.titan-embed-text-v2:0` (normalised vectors).

    >>> embedder = BedrockEmbedder(dimensions=512, region="eu-west-1")
    >>> len(embedder.embed_query("hello"))
    512
    """

    def __init__(
        self,
        model: str = "amazon.titan-embed-text-v2:0",
        dimensions: int = 1024,
        region: str = "us-east-1",
        timeout_seconds: float = 10.0,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        if dimensions not in _ALLOWED_DIMENSIONS:
            raise ConfigurationError(
                f"Titan V2 supports {_ALLOWED_DIMENSIONS} dimensions, not {dimensions}", dependency="embedder"
            )
        self.model = model
        self.dimensions = dimensions
        self._client = client or make_bedrock_runtime_client(
            region, timeout_seconds, endpoint_url=endpoint_url, max_pool_connections=_MAX_CONCURRENT_CALLS * 2
        )
        from botocore.exceptions import BotoCoreError, ClientError  # present: boto3 needs botocore

        self._vendor_errors = (BotoCoreError, ClientError)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if len(texts) <= 1:
            return [self._embed_one(text) for text in texts]
        with ThreadPoolExecutor(max_workers=min(_MAX_CONCURRENT_CALLS, len(texts))) as pool:
            return list(pool.map(self._embed_one, texts))

    def embed_query(self, text: str) -> list[float]:
        return self._embed_one(text)

    def _embed_one(self, text: str) -> list[float]:
        body = json.dumps({"inputText": text, "dimensions": self.dimensions, "normalize": True})
        try:
            response = self._client.invoke_model(
                modelId=self.model, body=body, contentType="application/json", accept="application/json"
            )
            vector = json.loads(response["body"].read())["embedding"]
        except self._vendor_errors as exc:
            raise DependencyUnavailableError("embedder", f"bedrock {describe_bedrock_error(exc)}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise DependencyUnavailableError("embedder", f"malformed bedrock response: {exc!r}") from exc
        if not isinstance(vector, list) or len(vector) != self.dimensions:
            raise DependencyUnavailableError("embedder", "bedrock returned a vector of the wrong size")
        return [float(x) for x in vector]

