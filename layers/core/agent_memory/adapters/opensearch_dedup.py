"""Atomic content dedup on an OpenSearch domain: one claim document per (tenant, memory_hash).

OpenSearch has no multi-document transaction and a search sees a write only after a refresh, so "look
for the hash, then write" lets N concurrent creates of the same text all pass the look. The claim is
the lock: a document in the side index `<index>-hash-claims` whose `_id` is the tenant and the hash,
written with `op_type=create`. Creating one `_id` is atomic on its primary shard, so exactly one writer
gets 201 and every other one 409; a GET by `_id` is realtime (it sees the claim before any refresh).

A claim names its owner, the id of the record that holds the content. A writer that loses the create
reads the claim and returns the owner instead of writing, once the owner's record is really there with
that hash (realtime GET of the record). A claim is stale, and is taken over with optimistic concurrency
(`if_seq_no`/`if_primary_term`, so two writers cannot both take it), when:
  * its owner's record now holds other content (it was replaced under the same id), or
  * its owner's record is missing and the claim is older than `grace_seconds`: a writer between its
    claim and its write finishes within two request timeouts, a crashed one never does.
The store releases a claim when it deletes the owner or when the owner's write fails, so a deleted
memory's text can be stored again at once.

Claims hold no searchable data (no tenant term, no vector, `dynamic: false`); they live in their own
index so no search, count or k-NN query of the records index ever sees them. OpenSearch Serverless has
no custom `_id`, so no claims there: see `OpenSearchLongTermStore.upsert_unique`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import Any

from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.models import MemoryRecord

CLAIMS_SUFFIX = "-hash-claims"
POLL_SECONDS = 0.02


def claims_index_body() -> dict[str, Any]:
    return {
        "settings": {"index": {"number_of_shards": 1}},
        "mappings": {"dynamic": False, "properties": {"owner": {"type": "keyword"}}},
    }


def claim_id(tenant: str, memory_hash: str) -> str:
    # The tenant's length first: no (tenant, hash) pair can spell another pair's id.
    return f"{len(tenant)}:{tenant}:{memory_hash}"


@dataclass(frozen=True)
class Claim:
    """The outcome for one record: `owner` is the id that keeps the content (the caller's own id when
    it won and must write); `token` lets the winner release its claim if its write fails."""

    owner: str
    won: bool
    token: tuple[int, int] | None = None  # (seq_no, primary_term) of the claim the caller wrote


class HashClaims:
    def __init__(
        self,
        client: Any,
        records_index: str,
        calling: Callable[[str], AbstractContextManager[None]],
        *,
        grace_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.index = records_index + CLAIMS_SUFFIX
        self._calling = calling
        self._grace = grace_seconds
        self._clock = clock
        self._sleep = sleep

    def claim(
        self,
        tenant: str,
        memory_hash: str,
        record_id: str,
        *,
        record: Callable[[str], MemoryRecord | None],
        stored: Callable[[], list[MemoryRecord]],
    ) -> Claim:
        """Claim `memory_hash` for `record_id`, or learn which record already holds it.

        `record(id)` reads one record realtime (None when missing); `stored()` is every record of the
        tenant with this hash, oldest first (a search: it sees writes that have finished).

        Raises:
            DependencyUnavailableError: OpenSearch failed, or the claim stayed contested past the grace.
        """
        _id = claim_id(tenant, memory_hash)
        deadline = self._clock() + 2 * self._grace + 1.0
        while True:
            token = self._write(_id, record_id, op_type="create")
            if token is None:
                current = self._read(_id)
                if current is None:
                    continue  # released between our create and our read: try again
                owner = current["_source"]["owner"]
                if owner == record_id:
                    token = (int(current["_seq_no"]), int(current["_primary_term"]))
                else:
                    held = record(owner)
                    if held is not None and held.memory_hash == memory_hash:
                        return Claim(owner=self._oldest(record_id, held, stored()), won=False)
                    age = self._clock() - float(current["_source"].get("claimed_at", 0))
                    if held is not None or age > self._grace:  # stale: take it over, unless someone else does
                        token = self._write(
                            _id,
                            record_id,
                            if_seq_no=int(current["_seq_no"]),
                            if_primary_term=int(current["_primary_term"]),
                        )
                        if token is None:
                            continue
                    elif self._clock() > deadline:
                        raise DependencyUnavailableError(
                            "opensearch", f"a concurrent write of the same content (record {owner}) did not finish"
                        )
                    else:
                        self._sleep(POLL_SECONDS)  # its owner is between its claim and its write
                        continue
            # Ours. Content stored before claims existed (or by plain upsert) still counts.
            others = [r for r in stored() if r.id != record_id]
            if others:
                self.point(tenant, memory_hash, others[0].id, token)
                return Claim(owner=others[0].id, won=False)
            return Claim(owner=record_id, won=True, token=token)

    def point(self, tenant: str, memory_hash: str, owner: str, token: tuple[int, int]) -> None:
        """Hand a claim we hold to `owner` (a claim that moved on since is someone else's: left alone)."""
        self._write(claim_id(tenant, memory_hash), owner, if_seq_no=token[0], if_primary_term=token[1])

    def release(self, tenant: str, memory_hash: str, token: tuple[int, int]) -> None:
        """Delete a claim we wrote, unless it changed since (compensation for a failed write)."""
        from opensearchpy.exceptions import ConflictError, NotFoundError

        with self._calling("hash claim release"), suppress(ConflictError, NotFoundError):
            self._client.delete(
                index=self.index, id=claim_id(tenant, memory_hash), if_seq_no=token[0], if_primary_term=token[1]
            )

    def release_owned(self, tenant: str, owned: dict[str, str]) -> None:
        """Delete the claims of `owned` (hash -> id) that still name that id (their records were deleted)."""
        from opensearchpy.exceptions import NotFoundError

        if not owned:
            return
        ids = {claim_id(tenant, digest): owner for digest, owner in owned.items()}
        with self._calling("hash claim read"):
            try:
                docs = self._client.mget(index=self.index, body={"ids": list(ids)})["docs"]
            except NotFoundError:  # no claims index: nothing to release
                return
        lines = [
            {"delete": {"_index": self.index, "_id": doc["_id"], "if_seq_no": doc["_seq_no"],
                        "if_primary_term": doc["_primary_term"]}}
            for doc in docs
            if doc.get("found") and doc["_source"].get("owner") == ids[doc["_id"]]
        ]  # fmt: skip
        if lines:
            with self._calling("hash claim release"):
                self._client.bulk(body=lines)  # a 409 item lost to a newer claim: nothing to do

    def _write(self, _id: str, owner: str, **conditions: Any) -> tuple[int, int] | None:
        """Write the claim; its (seq_no, primary_term), or None when it exists (create) or moved on (if_seq_no)."""
        from opensearchpy.exceptions import ConflictError

        body = {"owner": owner, "claimed_at": self._clock()}
        with self._calling("hash claim"):
            try:
                response = self._client.index(index=self.index, id=_id, body=body, **conditions)
            except ConflictError:
                return None
        return int(response["_seq_no"]), int(response["_primary_term"])

    def _read(self, _id: str) -> dict[str, Any] | None:
        from opensearchpy.exceptions import NotFoundError

        with self._calling("hash claim read"):
            try:
                return dict(self._client.get(index=self.index, id=_id))
            except NotFoundError:
                return None

    @staticmethod
    def _oldest(record_id: str, held: MemoryRecord, stored: list[MemoryRecord]) -> str:
        candidates = [r for r in stored if r.id != record_id] + [held]
        return min(candidates, key=lambda r: (r.created_at, r.id)).id
