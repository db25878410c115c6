"""Small JSON documents in Redis: one string key per document (with its TTL when it has one) and a set
of ids per tenant and kind, both under the tenant's hash tag (one slot in cluster mode). Names in
`domain/keys.py`. A document that expired leaves its id in the set; `list_documents` drops such ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis
from redis.exceptions import RedisError

from agent_memory.adapters._redis import redis_client
from agent_memory.domain import keys
from agent_memory.domain.errors import DependencyUnavailableError


class RedisDocumentStore:
    """`DocumentStore` on the working-memory Redis server (its client, timeouts and retry)."""

    def __init__(self, client: redis.Redis, *, key_prefix: str = keys.DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = keys.check_prefix(key_prefix)

    @classmethod
    def from_url(
        cls, url: str, *, timeout_seconds: float = 1.0, key_prefix: str = keys.DEFAULT_PREFIX
    ) -> RedisDocumentStore:
        """A client configured as the working-memory store's (timeouts, one retry, health checks)."""
        client = redis_client(url, timeout_seconds=timeout_seconds)
        return cls(client, key_prefix=key_prefix)

    def close(self) -> None:
        self._client.close()

    def put(self, tenant: str, kind: str, doc_id: str, body: str, *, ttl_seconds: int | None = None) -> None:
        with self._errors("put"):
            pipe = self._client.pipeline(transaction=True)
            pipe.set(keys.document_key(self._prefix, tenant, kind, doc_id), body, ex=ttl_seconds)
            pipe.sadd(keys.document_index_key(self._prefix, tenant, kind), doc_id)
            pipe.execute()

    def get(self, tenant: str, kind: str, doc_id: str) -> str | None:
        with self._errors("get"):
            value = self._client.get(keys.document_key(self._prefix, tenant, kind, doc_id))
        return None if value is None else _text(value)

    def list_documents(self, tenant: str, kind: str) -> list[str]:
        index = keys.document_index_key(self._prefix, tenant, kind)
        with self._errors("list"):
            ids = sorted(_text(i) for i in self._client.smembers(index))
            if not ids:
                return []
            values = self._client.mget([keys.document_key(self._prefix, tenant, kind, i) for i in ids])
            gone = [i for i, v in zip(ids, values, strict=True) if v is None]
            if gone:
                self._client.srem(index, *gone)
        return [_text(v) for v in values if v is not None]

    def delete(self, tenant: str, kind: str, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        with self._errors("delete"):
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(*(keys.document_key(self._prefix, tenant, kind, i) for i in doc_ids))
            pipe.srem(keys.document_index_key(self._prefix, tenant, kind), *doc_ids)
            removed, _ = pipe.execute()
        return int(removed)

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise DependencyUnavailableError("redis", f"documents {operation} failed: {exc}"[:300]) from exc


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["RedisDocumentStore"]
