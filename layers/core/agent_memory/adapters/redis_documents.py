"""Small JSON documents in Redis: one string key per document (with its TTL when it has one) and a set
of ids per tenant and kind, both under the tenant's hash tag (one slot in cluster mode). Names in
`domain/keys.py`. A document that expired leaves its id in the set; `list_documents` drops such ids.

Writes are one Lua script each (the value and its index entry together), which runs the same on a
standalone server and on a Redis Cluster, where both keys share the tenant's slot; a MULTI pipeline
would need a cluster client that supports transactions, which not every redis-py we allow has."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from redis.exceptions import RedisError

from agent_memory.adapters._redis import RedisClient, redis_client
from agent_memory.domain import keys
from agent_memory.domain.errors import DependencyUnavailableError

# KEYS: document, index. ARGV: id, body, ttl in seconds ('' = none).
_PUT = """
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: index, then each document. ARGV: the documents' ids. Returns how many documents existed.
_DELETE = """
-- In chunks: unpack has a stack limit of a few thousand values.
local removed = 0
for i = 2, #KEYS, 1000 do removed = removed + redis.call('DEL', unpack(KEYS, i, math.min(i + 999, #KEYS))) end
for i = 1, #ARGV, 1000 do redis.call('SREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV))) end
return removed
"""


class RedisDocumentStore:
    """`DocumentStore` on the working-memory Redis server (its client, timeouts and retry)."""

    def __init__(self, client: RedisClient, *, key_prefix: str = keys.DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = keys.check_prefix(key_prefix)
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout_seconds: float = 1.0,
        key_prefix: str = keys.DEFAULT_PREFIX,
        cluster: bool | None = False,
    ) -> RedisDocumentStore:
        """A client configured as the working-memory store's (timeouts, one retry, health checks)."""
        client = redis_client(url, timeout_seconds=timeout_seconds, cluster=cluster)
        return cls(client, key_prefix=key_prefix)

    def close(self) -> None:
        self._client.close()

    def put(self, tenant: str, kind: str, doc_id: str, body: str, *, ttl_seconds: int | None = None) -> None:
        document = keys.document_key(self._prefix, tenant, kind, doc_id)
        index = keys.document_index_key(self._prefix, tenant, kind)
        with self._errors("put"):
            self._put(keys=[document, index], args=[doc_id, body, "" if ttl_seconds is None else ttl_seconds])

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
        index = keys.document_index_key(self._prefix, tenant, kind)
        documents = [keys.document_key(self._prefix, tenant, kind, i) for i in doc_ids]
        with self._errors("delete"):
            removed = self._delete(keys=[index, *documents], args=list(doc_ids))
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
