"""Deduplication of long-term records: exact (content hash), then by meaning (the LLM merges neighbours).

One place for both, shared by `LongTermService.create` (which promotion and extraction go through) and
compaction (`services/maintenance.py`, through `LongTermService.merge_near_duplicates`). It works on the
long-term store it is given, the service's own; no other service touches that store through it.
Summaries are never deduplicated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.filters import SearchFilters, SearchQuery
from agent_memory.domain.models import MemoryRecord, utcnow
from agent_memory.ports import ChatMessage

if TYPE_CHECKING:
    from agent_memory.ports import Embedder, LanguageModel, LongTermStore

logger = logging.getLogger(__name__)

MERGE_PROMPT = """You merge duplicate memories about the same thing into one memory.
Keep every distinct fact, prefer the newest when they conflict, and write one or two sentences.
Answer as JSON: {{"text": "<merged memory>"}}.

Memories (oldest first):
{memories}"""


@dataclass
class CreateOutcome:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    # duplicate id -> id of the stored record with the same content, kept instead
    duplicate_of: dict[str, str] = field(default_factory=dict)
    # the second pass over the stored records: "queued", "deferred; reason=...", or None
    extraction: str | None = None


class Deduplicator:
    """Hash dedup before and during the write, and the LLM merge of near duplicates after it."""

    def __init__(
        self,
        store: LongTermStore,
        embedder: Embedder,
        *,
        llm: LanguageModel | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._llm = llm
        self._clock = clock

    @property
    def can_merge(self) -> bool:
        return self._llm is not None

    # --- exact duplicates -------------------------------------------------------------------------
    def drop_hash_duplicates(
        self, tenant: str, records: list[MemoryRecord], outcome: CreateOutcome, now: datetime
    ) -> list[MemoryRecord]:
        """Drop records whose content is stored already (cheap, before embedding; `write` makes it hold
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

    def write(
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
        request may have stored the same content after `drop_hash_duplicates` looked. Returns the
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

    # --- near duplicates --------------------------------------------------------------------------
    def merge_all(self, tenant: str, records: Sequence[MemoryRecord], threshold: float) -> int:
        """Compaction's semantic step: merge each record with its neighbours. Returns merges made."""
        if self._llm is None:
            return 0
        outcome = CreateOutcome()
        gone: set[str] = set()
        for record in records:
            if record.id in gone or record.extraction_strategy == "summary":
                continue
            vector = self._embedder.embed_documents([record.text])[0]
            gone.update(self.merge_near_duplicates(tenant, record, vector, threshold, outcome))
        return len(outcome.merged)

    def merge_near_duplicates(
        self, tenant: str, record: MemoryRecord, vector: Sequence[float], threshold: float, outcome: CreateOutcome
    ) -> list[str]:
        """Merge `record` with its close neighbours in the same namespace and user, through the LLM.
        Returns the ids of the records merged away (none when the LLM is unavailable: logged, skipped).

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


__all__ = ["MERGE_PROMPT", "CreateOutcome", "Deduplicator"]
