"""Long-term memory use cases: create, get, patch, revise, delete, search, promotion from a session.

Unlike AMS, creation is synchronous: records are embedded and indexed before the request answers, so
the next request reads them (only LLM work — semantic merge — may be skipped, never deferred silently).
Every step that can fail runs before the first write: when the embedder is down, nothing is stored.

Two jobs live beside it and are shared by everything that writes through it (the API, promotion,
extraction, compaction): deduplication and the LLM merge (`services/dedup.py`), and the conversation
context a session message is indexed with (`services/conversation_context.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from agent_memory.domain.errors import (
    DependencyUnavailableError,
    FeatureDisabledError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from agent_memory.domain.filters import SearchFilters, SearchQuery
from agent_memory.domain.models import MemoryRecord, MemoryRecordResult, MemoryTypeEnum, WorkingMemory, utcnow
from agent_memory.domain.search import SearchRequest, rerank_by_recency
from agent_memory.domain.temporal import time_reference
from agent_memory.ports import ChatMessage
from agent_memory.services.conversation_context import ConversationContext, unit
from agent_memory.services.dedup import CreateOutcome, Deduplicator
from agent_memory.services.working_memory import Promotion

if TYPE_CHECKING:
    from agent_memory.ports import Embedder, LanguageModel, LongTermStore

logger = logging.getLogger(__name__)

# A revised record keeps at most this many earlier versions in metadata["history"].
HISTORY_LIMIT = 20
# last_accessed is refreshed by a search at most this often per record (AMS: 15 minutes).
TOUCH_INTERVAL = timedelta(minutes=15)
EDITABLE_FIELDS = (
    "text", "topics", "entities", "memory_type", "namespace", "user_id", "session_id", "event_date", "pinned",
)

OPTIMIZE_PROMPT = """Rewrite this question as a short search query for a memory store of facts about a
user and their conversations. Keep names, dates and key nouns; drop filler words. Answer with the
query only.

Question: {query}"""


class SecondPass(Protocol):
    """Where records stored with `discrete_memory_extracted="f"` go for extraction
    (`services.extraction.ExtractionScheduler` is one)."""

    def schedule_records(self, tenant: str, records: Sequence[MemoryRecord]) -> str | None: ...


@dataclass(frozen=True)
class LongTermLimits:
    max_text_chars: int = 20_000
    max_memories_per_request: int = 200


@dataclass(frozen=True)
class SearchResults:
    memories: list[MemoryRecordResult]
    total: int
    next_offset: int | None


class LongTermService:
    def __init__(
        self,
        store: LongTermStore,
        embedder: Embedder,
        *,
        llm: LanguageModel | None = None,
        dedup_distance: float = 0.35,
        limits: LongTermLimits | None = None,
        enabled: bool = True,
        context_window: int = 2,
        time_match: bool = True,
        clock: Callable[[], datetime] = utcnow,
        second_pass: SecondPass | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._llm = llm
        self._dedup_distance = dedup_distance
        self._limits = limits or LongTermLimits()
        self._enabled = enabled
        self._time_match = time_match
        self._clock = clock
        self._second_pass = second_pass
        self._ready = False
        self._context = ConversationContext(store, embedder, context_window)
        self._dedup = Deduplicator(store, embedder, llm=llm, clock=clock)

    # --- plumbing ---------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """Create the index if missing; ConfigurationError when its dimension is not the embedder's."""
        self._ready_store()

    def _ready_store(self) -> LongTermStore:
        if not self._enabled:
            raise FeatureDisabledError("Long-term memory is disabled")
        if not self._ready:
            self._store.ensure_ready(self._embedder.dimensions)
            self._ready = True
        return self._store

    def _check_sizes(self, records: Sequence[MemoryRecord]) -> None:
        limits = self._limits
        if len(records) > limits.max_memories_per_request:
            raise PayloadTooLargeError(
                f"{len(records)} memories in one request; the limit is {limits.max_memories_per_request} "
                "(MAX_MEMORIES_PER_REQUEST)"
            )
        for record in records:
            if not record.text.strip():
                raise InvalidInputError(f"memory {record.id} has empty text")
            if len(record.text) > limits.max_text_chars:
                raise PayloadTooLargeError(
                    f"memory {record.id} has {len(record.text)} characters; the limit is "
                    f"{limits.max_text_chars} (MAX_MEMORY_TEXT_CHARS)"
                )

    # --- create -----------------------------------------------------------------------------------
    def create(
        self,
        tenant: str,
        records: Sequence[MemoryRecord],
        *,
        deduplicate: bool = True,
        merge: bool = True,
        second_pass: bool = True,
    ) -> CreateOutcome:
        """Embed and index `records`; with `deduplicate`, drop exact duplicates and (with `merge` and an
        LLM) merge near ones. With `second_pass` (and extraction on), stored records whose
        `discrete_memory_extracted` is "f" are queued for extraction (`CreateOutcome.extraction`)."""
        self._check_sizes(records)
        self._ready_store()
        now = self._clock()
        prepared = [
            r.model_copy(update={"persisted_at": now, "memory_hash": r.content_hash(), "updated_at": now})
            for r in records
        ]
        outcome = CreateOutcome()
        if deduplicate:
            prepared = self._dedup.drop_hash_duplicates(tenant, prepared, outcome, now)
        if not prepared:
            return outcome
        contexts = self._context.contexts(tenant, prepared)
        vectors = self._context.embed(prepared, contexts)  # before any write
        written = self._dedup.write(tenant, prepared, vectors, contexts, deduplicate, outcome, now)
        outcome.stored.extend(prepared[i].id for i in written)
        if second_pass and self._second_pass is not None:
            outcome.extraction = self._second_pass.schedule_records(tenant, [prepared[i] for i in written])
        if deduplicate and merge and self._dedup.can_merge:
            for i in written:
                if prepared[i].extraction_strategy != "summary":
                    self._dedup.merge_near_duplicates(tenant, prepared[i], vectors[i], self._dedup_distance, outcome)
        return outcome

    def merge_near_duplicates(self, tenant: str, records: Sequence[MemoryRecord], threshold: float) -> int:
        """Compaction's semantic step: merge each record with its neighbours. Returns merges made."""
        return self._dedup.merge_all(tenant, records, threshold)

    # --- read / edit / delete ---------------------------------------------------------------------
    def get(self, tenant: str, memory_id: str) -> MemoryRecord:
        found = self._ready_store().get(tenant, [memory_id])
        if not found:
            raise NotFoundError(f"Memory with ID {memory_id} not found")
        return found[0]

    def get_many(self, tenant: str, memory_ids: Sequence[str]) -> list[MemoryRecord]:
        """The records of these ids that exist (a missing one is left out, not an error)."""
        return self._ready_store().get(tenant, list(memory_ids))

    def listing(
        self, tenant: str, filters: SearchFilters, *, limit: int, offset: int = 0
    ) -> tuple[list[MemoryRecordResult], int]:
        """One page of the records matching `filters`, newest first, and how many match in all."""
        query = SearchQuery(tenant=tenant, mode="list", filters=filters, limit=limit, offset=offset)
        return self._ready_store().search(query)

    def patch(self, tenant: str, memory_id: str, updates: dict[str, Any]) -> MemoryRecord:
        changes = {k: v for k, v in updates.items() if k in EDITABLE_FIELDS and v is not None}
        if not changes:
            raise InvalidInputError("No fields provided for update")
        current = self.get(tenant, memory_id)
        try:
            updated = MemoryRecord.model_validate({**current.model_dump(), **changes, "updated_at": self._clock()})
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        self._check_sizes([updated])
        updated = updated.model_copy(update={"memory_hash": updated.content_hash()})
        contexts = self._context.contexts(tenant, [updated])
        self._store.upsert(tenant, [updated], self._context.embed([updated], contexts), contexts)
        return updated

    def revise(
        self,
        tenant: str,
        memory_id: str,
        text: str,
        *,
        history: dict[str, Any],
        event_date: datetime | None = None,
        topics: Sequence[str] = (),
        entities: Sequence[str] = (),
    ) -> MemoryRecord:
        """Replace a record's text in place (a knowledge update), keeping what it said before: `history`
        (JSON-compatible, e.g. the old text and which messages changed it) is appended to
        `metadata["history"]`, newest last, at most `HISTORY_LIMIT` entries. Topics and entities are merged."""
        current = self.get(tenant, memory_id)
        past = [*list(current.metadata.get("history") or [])[-(HISTORY_LIMIT - 1):], history]
        changes: dict[str, Any] = {
            "text": text,
            "metadata": {**current.metadata, "history": past},
            "topics": _union(current.topics, topics),
            "entities": _union(current.entities, entities),
            "event_date": event_date or current.event_date,
            "updated_at": self._clock(),
        }
        updated = current.model_copy(update=changes)
        self._check_sizes([updated])
        updated = MemoryRecord.model_validate(updated.model_dump())  # re-check tags, dates and JSON limits
        updated = updated.model_copy(update={"memory_hash": updated.content_hash()})
        contexts = self._context.contexts(tenant, [updated])
        self._store.upsert(tenant, [updated], self._context.embed([updated], contexts), contexts)
        return updated

    def neighbours(
        self, tenant: str, text: str, *, namespace: str | None, user_id: str | None, threshold: float, limit: int = 5
    ) -> list[MemoryRecordResult]:
        """The facts stored for this namespace and user (any session) nearest to `text`, within cosine
        distance `threshold`, nearest first; messages and summaries are not facts and are left out."""
        vector = self._embedder.embed_documents([text])[0]
        query = SearchQuery(
            tenant=tenant,
            mode="semantic",
            vector=unit(vector),
            distance_threshold=threshold,
            filters=SearchFilters.for_scope(namespace=namespace, user_id=user_id),
            limit=limit + 5,
        )
        found, _ = self._ready_store().search(query)
        return [
            r for r in found
            if r.namespace == namespace and r.user_id == user_id
            and r.memory_type != MemoryTypeEnum.MESSAGE and r.extraction_strategy != "summary"
        ][:limit]

    def delete(self, tenant: str, memory_ids: Sequence[str]) -> int:
        if not memory_ids:
            return 0
        return self._ready_store().delete(tenant, list(memory_ids))

    # --- search -----------------------------------------------------------------------------------
    def search(self, tenant: str, request: SearchRequest, *, optimize_query: bool = False) -> SearchResults:
        store = self._ready_store()
        mode = request.store_mode
        if request.distance_threshold is not None and mode == "keyword":
            raise InvalidInputError("distance_threshold is not supported for keyword search mode")
        text = (request.text or "").strip()
        if optimize_query and mode in ("semantic", "hybrid"):
            text = self.optimize_query(text)
        query = SearchQuery(
            tenant=tenant,
            mode=mode,
            filters=request.filters(),
            text=text if mode in ("keyword", "hybrid") else None,
            vector=self._embedder.embed_query(text) if mode in ("semantic", "hybrid") else None,
            alpha=request.hybrid_alpha,
            time_window=time_reference(text) if mode == "hybrid" and self._time_match else None,
            distance_threshold=request.distance_threshold if mode != "list" else None,
            limit=request.limit,
            offset=request.offset,
        )
        page, total = store.search(query)
        now = self._clock()
        weights = request.recency()
        if weights is not None and mode != "list":
            page = rerank_by_recency(page, weights, now)
        self._touch_stale(tenant, page, now)
        end = request.offset + len(page)
        return SearchResults(page, total, end if end < total else None)

    def optimize_query(self, text: str) -> str:
        """Rewrite a question into a search query with the LLM; the original text on any failure."""
        if self._llm is None or not text:
            return text
        try:
            rewritten = self._llm.complete([ChatMessage(role="user", content=OPTIMIZE_PROMPT.format(query=text))])
        except DependencyUnavailableError:
            return text
        candidate = rewritten.text.strip().strip('"')
        return candidate if len(candidate) >= 2 else text

    def _touch_stale(self, tenant: str, page: Sequence[MemoryRecordResult], now: datetime) -> None:
        stale = [r.id for r in page if now - r.last_accessed > TOUCH_INTERVAL]
        if stale:
            self._store.touch(tenant, stale, now)

    # --- promotion from working memory -------------------------------------------------------------
    def promote(self, tenant: str, memory: WorkingMemory) -> Promotion:
        """Index the session's unpersisted `memories` (AMS §5.5 step 2) and mark them persisted.

        Runs inside the PUT, before the session is stored, so one write records both (see `Promoter`
        for the ordering rule); only hash dedup runs here, because it can be undone by `retract`. The
        records keep the session's scope and take its extraction strategy.
        """
        pending = [m for m in memory.memories if m.persisted_at is None]
        if not pending or not self._enabled:
            return Promotion(memory, [])
        strategy = memory.long_term_memory_strategy
        scoped = [
            m.model_copy(
                update={
                    "session_id": m.session_id or memory.session_id,
                    "namespace": m.namespace or memory.namespace,
                    "user_id": m.user_id or memory.user_id,
                    "extraction_strategy": strategy.strategy,
                    "extraction_strategy_config": strategy.config,
                }
            )
            for m in pending
        ]
        # No second pass yet: the session is not stored, and this promotion may be retracted (settle queues it).
        outcome = self.create(tenant, scoped, deduplicate=True, merge=False, second_pass=False)
        now = self._clock()
        promoted = {m.id for m in pending}
        memories = [
            m.model_copy(update={"persisted_at": now}) if m.id in promoted else m for m in memory.memories
        ]
        return Promotion(memory.model_copy(update={"memories": memories}), outcome.stored)

    def retract(self, tenant: str, memory_ids: Sequence[str]) -> None:
        """Undo a promotion whose session could not be stored."""
        self._ready_store().delete(tenant, memory_ids)

    def settle(self, tenant: str, memory_ids: Sequence[str]) -> None:
        """The LLM merge and the second pass a create would have run, for promoted records, once their
        session is stored."""
        if self._llm is None or not memory_ids:
            return
        try:
            records = self._store.get(tenant, list(memory_ids))
            if self._second_pass is not None:
                self._second_pass.schedule_records(tenant, records)
            self.merge_near_duplicates(tenant, records, self._dedup_distance)
        except DependencyUnavailableError as exc:
            logger.warning("semantic merge of promoted memories skipped: %s", exc.detail)

    def mark_extracted(self, tenant: str, memory_ids: Sequence[str]) -> int:
        """Set `discrete_memory_extracted="t"` on these records (the second pass is done with them);
        returns how many were still "f". Re-embeds them, as any upsert does; a concurrent edit of the
        same record between the read and the write may be lost (the window is one embedding call)."""
        pending = [r for r in self._ready_store().get(tenant, list(memory_ids)) if r.discrete_memory_extracted == "f"]
        if not pending:
            return 0
        marked = [r.model_copy(update={"discrete_memory_extracted": "t"}) for r in pending]
        contexts = self._context.contexts(tenant, marked)
        self._store.upsert(tenant, marked, self._context.embed(marked, contexts), contexts)
        return len(marked)


def _union(first: Sequence[str] | None, second: Sequence[str]) -> list[str] | None:
    values = list(first or [])
    values += [v for v in second if v not in values]
    return values or None


__all__ = ["HISTORY_LIMIT", "CreateOutcome", "LongTermLimits", "LongTermService", "SearchResults"]
