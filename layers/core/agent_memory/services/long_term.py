"""Long-term memory use cases: create (with dedup), get, patch, delete, search, promotion from a session.

Unlike AMS, creation is synchronous: records are embedded and indexed before the request answers, so
the next request reads them (only LLM work — semantic merge — may be skipped, never deferred silently).
Every step that can fail runs before the first write: when the embedder is down, nothing is stored.

Conversation context: a message is often meaningless alone ("It's a mix of drama and romance!" answers
"What genre is your screenplay?"). So a record of type `message` with a session id is indexed together
with the messages before it in that session (`context_window` of them): the keyword index holds them
in a second, lower-weighted field, and the stored vector is the mean of the message's own embedding and
the embedding of the message read after its context. The record itself is unchanged; only ranking
sees the context. On LoCoMo this lifts hybrid recall@10 by about ten points (bench/locomo.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from agent_memory.domain.errors import (
    DependencyUnavailableError,
    FeatureDisabledError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from agent_memory.domain.filters import DateTimeFilter, EnumFilter, SearchFilters, SearchQuery
from agent_memory.domain.models import MemoryRecord, MemoryRecordResult, MemoryTypeEnum, WorkingMemory, utcnow
from agent_memory.domain.search import SearchRequest, rerank_by_recency
from agent_memory.domain.temporal import time_reference
from agent_memory.ports import ChatMessage
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

MERGE_PROMPT = """You merge duplicate memories about the same thing into one memory.
Keep every distinct fact, prefer the newest when they conflict, and write one or two sentences.
Answer as JSON: {{"text": "<merged memory>"}}.

Memories (oldest first):
{memories}"""

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


@dataclass
class CreateOutcome:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    # duplicate id -> id of the stored record with the same content, kept instead
    duplicate_of: dict[str, str] = field(default_factory=dict)
    # the second pass over the stored records: "queued", "deferred; reason=...", or None
    extraction: str | None = None


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
        self._context_window = context_window
        self._time_match = time_match
        self._clock = clock
        self._second_pass = second_pass
        self._ready = False

    # --- plumbing ---------------------------------------------------------------------------------
    @property
    def store(self) -> LongTermStore:
        return self._ready_store()

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
            prepared = self._drop_hash_duplicates(tenant, prepared, outcome, now)
        if not prepared:
            return outcome
        contexts = self._conversation_contexts(tenant, prepared)
        vectors = self._embed(prepared, contexts)  # before any write
        written = self._write(tenant, prepared, vectors, contexts, deduplicate, outcome, now)
        outcome.stored.extend(prepared[i].id for i in written)
        if second_pass and self._second_pass is not None:
            outcome.extraction = self._second_pass.schedule_records(tenant, [prepared[i] for i in written])
        if deduplicate and merge and self._llm is not None:
            for i in written:
                if prepared[i].extraction_strategy != "summary":
                    self._merge_near_duplicates(tenant, prepared[i], vectors[i], self._dedup_distance, outcome)
        return outcome

    def _write(
        self,
        tenant: str,
        records: list[MemoryRecord],
        vectors: list[list[float]],
        contexts: list[str | None],
        deduplicate: bool,
        outcome: CreateOutcome,
        now: datetime,
    ) -> list[int]:
        """Index `records`; with `deduplicate`, through the store's atomic `upsert_unique`, since another
        request may have stored the same content after `_drop_hash_duplicates` looked. Returns the
        positions written. Summaries are never deduplicated (one batch holds either kind in practice: a
        promotion gives every record its session's strategy; a mixed batch is two writes)."""
        unique = [i for i, r in enumerate(records) if deduplicate and r.extraction_strategy != "summary"]
        plain = [i for i in range(len(records)) if i not in set(unique)]
        written = list(plain)
        if plain:
            self._store.upsert(tenant, [records[i] for i in plain], [vectors[i] for i in plain],
                               [contexts[i] for i in plain])
        if unique:
            kept = self._store.upsert_unique(tenant, [records[i] for i in unique], [vectors[i] for i in unique],
                                             [contexts[i] for i in unique])
            for i, kept_id in zip(unique, kept, strict=True):
                if kept_id == records[i].id:
                    written.append(i)
                    continue
                outcome.duplicates.append(records[i].id)
                outcome.duplicate_of[records[i].id] = kept_id
                self._store.touch(tenant, [kept_id], now)
        return sorted(written)

    def _drop_hash_duplicates(
        self, tenant: str, records: list[MemoryRecord], outcome: CreateOutcome, now: datetime
    ) -> list[MemoryRecord]:
        """Drop records whose content is stored already (cheap, before embedding; `_write` makes it hold
        under concurrency)."""
        kept: list[MemoryRecord] = []
        seen: dict[str, str] = {}  # memory_hash -> id kept, in this batch
        for record in records:
            digest = record.memory_hash or record.content_hash()  # set by create(); kept for safety
            if record.extraction_strategy == "summary":
                kept.append(record)
                continue
            existing = [r for r in self._store.find_by_hash(tenant, digest) if r.id != record.id]
            if existing or digest in seen:
                outcome.duplicates.append(record.id)
                if existing:
                    outcome.duplicate_of[record.id] = existing[0].id
                    self._store.touch(tenant, [existing[0].id], now)
                else:
                    outcome.duplicate_of[record.id] = seen[digest]
                continue
            seen[digest] = record.id
            kept.append(record)
        return kept

    def merge_near_duplicates(self, tenant: str, records: Sequence[MemoryRecord], threshold: float) -> int:
        """Compaction's semantic step: merge each record with its neighbours. Returns merges made."""
        if self._llm is None:
            return 0
        outcome = CreateOutcome()
        gone: set[str] = set()
        for record in records:
            if record.id in gone or record.extraction_strategy == "summary":
                continue
            vector = self._embedder.embed_documents([record.text])[0]
            gone.update(self._merge_near_duplicates(tenant, record, vector, threshold, outcome))
        return len(outcome.merged)

    def _merge_near_duplicates(
        self, tenant: str, record: MemoryRecord, vector: Sequence[float], threshold: float, outcome: CreateOutcome
    ) -> list[str]:
        """Merge `record` with its close neighbours in the same namespace and user, through the LLM.

        Only direct neighbours of the new record take part, so merges cannot chain into a
        "mega-memory" (AMS #200). The merged record is indexed before the sources are deleted.
        """
        query = SearchQuery(
            tenant=tenant,
            mode="semantic",
            vector=list(vector),
            distance_threshold=threshold,
            filters=SearchFilters.for_scope(namespace=record.namespace, user_id=record.user_id),
            limit=11,
        )
        neighbours, _ = self._store.search(query)
        # The filters cannot say "no namespace", so an unscoped record's neighbours are checked here.
        group = [
            n
            for n in neighbours
            if n.id != record.id and n.namespace == record.namespace and n.user_id == record.user_id
        ][:10]
        if not group or self._llm is None:
            return []
        sources: list[MemoryRecord] = sorted([record, *group], key=lambda r: r.created_at)
        try:
            from agent_memory.services.structured_output import complete_json

            text = complete_json(
                self._llm,
                [ChatMessage(role="user", content=MERGE_PROMPT.format(
                    memories="\n".join(f"- {s.text}" for s in sources)))],
                _merged_text,
            )
        except DependencyUnavailableError as exc:
            logger.warning("semantic merge skipped: %s", exc.detail)
            return []
        merged = _merge_records(sources, text, self._clock())
        self._store.upsert(tenant, [merged], self._embedder.embed_documents([merged.text]))
        source_ids = [s.id for s in sources]
        self._store.delete(tenant, source_ids)
        outcome.merged.append(merged.id)
        return source_ids

    # --- conversation context ---------------------------------------------------------------------
    def _conversation_contexts(self, tenant: str, records: Sequence[MemoryRecord]) -> list[str | None]:
        """For each record, the text of the messages before it in its session (oldest first), or None.

        Only `message` records with a session id get one. Order within a session is created_at, then
        the order of the batch; the messages before a batch are read from the store (one listing per
        session). A message written later does not change the context of earlier ones.
        """
        contexts: list[str | None] = [None] * len(records)
        if self._context_window <= 0:
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
                window = history[-self._context_window :]
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
            limit=self._context_window + len(exclude),
        )
        page, _ = self._store.search(query)  # newest first
        same_scope = [
            r for r in page
            if r.id not in exclude and r.namespace == first.namespace and r.user_id == first.user_id
        ]
        return [r.text for r in reversed(same_scope[: self._context_window])]

    def _embed(self, records: Sequence[MemoryRecord], contexts: Sequence[str | None]) -> list[list[float]]:
        """One vector per record: its own embedding, or with a context the mean of own and in-context.

        Both halves are unit length, so a query's inner product with the mean is the mean of its two
        cosine similarities. One embed_documents call covers both halves of every record.
        """
        texts = [r.text for r in records]
        with_context = [i for i, c in enumerate(contexts) if c]
        texts += [f"{contexts[i]}\n{records[i].text}" for i in with_context]
        embedded = self._embedder.embed_documents(texts)
        vectors = [_unit(v) for v in embedded[: len(records)]]
        for j, i in enumerate(with_context):
            in_context = _unit(embedded[len(records) + j])
            vectors[i] = [(a + b) / 2 for a, b in zip(vectors[i], in_context, strict=True)]
        return vectors

    # --- read / edit / delete ---------------------------------------------------------------------
    def get(self, tenant: str, memory_id: str) -> MemoryRecord:
        found = self._ready_store().get(tenant, [memory_id])
        if not found:
            raise NotFoundError(f"Memory with ID {memory_id} not found")
        return found[0]

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
        contexts = self._conversation_contexts(tenant, [updated])
        self._store.upsert(tenant, [updated], self._embed([updated], contexts), contexts)
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
        contexts = self._conversation_contexts(tenant, [updated])
        self._store.upsert(tenant, [updated], self._embed([updated], contexts), contexts)
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
            vector=_unit(vector),
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
        contexts = self._conversation_contexts(tenant, marked)
        self._store.upsert(tenant, marked, self._embed(marked, contexts), contexts)
        return len(marked)


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else list(vector)


def _union(first: Sequence[str] | None, second: Sequence[str]) -> list[str] | None:
    values = list(first or [])
    values += [v for v in second if v not in values]
    return values or None


def _merged_text(answer: dict[str, Any]) -> str:
    text = answer.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the answer has no 'text'")
    return text.strip()


def _merge_records(sources: Sequence[MemoryRecord], text: str, now: datetime) -> MemoryRecord:
    def union(name: str) -> list[str] | None:
        values: list[str] = []
        for source in sources:
            values.extend(v for v in getattr(source, name) or [] if v not in values)
        return values or None

    def first(name: str) -> Any:
        return next((getattr(s, name) for s in sources if getattr(s, name)), None)

    merged = MemoryRecord(
        text=text,
        namespace=first("namespace"),
        user_id=first("user_id"),
        session_id=first("session_id"),
        memory_type=sources[0].memory_type,
        topics=union("topics"),
        entities=union("entities"),
        created_at=min(s.created_at for s in sources),
        last_accessed=max(s.last_accessed for s in sources),
        updated_at=now,
        persisted_at=now,
        discrete_memory_extracted="t",
        extraction_strategy=sources[0].extraction_strategy,
        event_date=first("event_date"),
    )
    return merged.model_copy(update={"memory_hash": merged.content_hash()})
