"""Conversation context: how a session message is indexed with the messages before it.

A message is often meaningless alone ("It's a mix of drama and romance!" answers "What genre is your
screenplay?"). So a record of type `message` with a session id is indexed together with the messages
before it in that session (`window` of them): the keyword index holds them in a second, lower-weighted
field, and the stored vector is the mean of the message's own embedding and the embedding of the message
read after its context. The record itself is unchanged; only ranking sees the context. On LoCoMo this
lifts hybrid recall@10 by about ten points (bench/locomo.py).

Used by `LongTermService` for every write that (re-)embeds a record: create, which promotion and
extraction go through, patch, revise and marking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent_memory.domain.filters import DateTimeFilter, EnumFilter, SearchFilters, SearchQuery
from agent_memory.domain.models import MemoryRecord, MemoryTypeEnum

if TYPE_CHECKING:
    from agent_memory.ports import Embedder, LongTermStore


class ConversationContext:
    """Contexts and index vectors for records of the long-term store it reads (the service's own)."""

    def __init__(self, store: LongTermStore, embedder: Embedder, window: int = 2) -> None:
        self._store = store
        self._embedder = embedder
        self._window = window

    def contexts(self, tenant: str, records: Sequence[MemoryRecord]) -> list[str | None]:
        """For each record, the text of the messages before it in its session (oldest first), or None.

        Only `message` records with a session id get one. Order within a session is created_at, then
        the order of the batch; the messages before a batch are read from the store (one listing per
        session). A message written later does not change the context of earlier ones.
        """
        contexts: list[str | None] = [None] * len(records)
        if self._window <= 0:
            return contexts
        sessions: dict[tuple[str | None, str | None, str], list[int]] = {}
        for i, record in enumerate(records):
            if record.memory_type == MemoryTypeEnum.MESSAGE and record.session_id:
                sessions.setdefault((record.namespace, record.user_id, record.session_id), []).append(i)
        batch_ids = {r.id for r in records}
        for positions in sessions.values():
            positions.sort(key=lambda i: records[i].created_at)  # stable: ties keep batch order
            history = self._messages_before(tenant, records[positions[0]], batch_ids)
            for i in positions:
                window = history[-self._window :]
                contexts[i] = "\n".join(window) if window else None
                history.append(records[i].text)
        return contexts

    def _messages_before(self, tenant: str, first: MemoryRecord, exclude: set[str]) -> list[str]:
        """Texts of the stored messages of `first`'s session up to its created_at, oldest first."""
        query = SearchQuery(
            tenant=tenant,
            mode="list",
            filters=SearchFilters.for_scope(
                namespace=first.namespace, user_id=first.user_id, session_id=first.session_id
            ).model_copy(
                update={
                    "memory_type": EnumFilter(eq=MemoryTypeEnum.MESSAGE.value),
                    "created_at": DateTimeFilter(lte=first.created_at),
                }
            ),
            limit=self._window + len(exclude),
        )
        page, _ = self._store.search(query)  # newest first
        same_scope = [
            r for r in page
            if r.id not in exclude and r.namespace == first.namespace and r.user_id == first.user_id
        ]
        return [r.text for r in reversed(same_scope[: self._window])]

    def embed(self, records: Sequence[MemoryRecord], contexts: Sequence[str | None]) -> list[list[float]]:
        """One vector per record: its own embedding, or with a context the mean of own and in-context.

        Both halves are unit length, so a query's inner product with the mean is the mean of its two
        cosine similarities. One embed_documents call covers both halves of every record.
        """
        texts = [r.text for r in records]
        with_context = [i for i, c in enumerate(contexts) if c]
        texts += [f"{contexts[i]}\n{records[i].text}" for i in with_context]
        embedded = self._embedder.embed_documents(texts)
        vectors = [unit(v) for v in embedded[: len(records)]]
        for j, i in enumerate(with_context):
            in_context = unit(embedded[len(records) + j])
            vectors[i] = [(a + b) / 2 for a, b in zip(vectors[i], in_context, strict=True)]
        return vectors


def unit(vector: Sequence[float]) -> list[float]:
    """`vector` scaled to length 1 (a zero vector as it is)."""
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else list(vector)


__all__ = ["ConversationContext", "unit"]
