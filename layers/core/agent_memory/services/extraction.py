"""Background extraction: a stored conversation becomes long-term memories (AMS §5.5 step 1, §5.6).

Producer (`ExtractionScheduler`, services/extraction_scheduler.py, called by a working-memory PUT after
the session is stored): when the session has messages not yet extracted, enqueue one `ExtractionTask`
naming the session and its generation (the `updated_at` that write stored), delayed by the debounce
interval.

Consumer (`ExtractionService.run`, called by ExtractionFunction on AWS and by the embedded worker):
1. load the session; skip when it is gone, when its generation is not the task's (a newer write
   superseded this task and enqueued its own: a burst of writes gives one run over the newest state),
   or when no message is left unextracted (a duplicate delivery after success changes nothing);
2. run the session's strategy over the whole conversation (messages with their timestamps);
3. with a `KnowledgeUpdater`, let the LLM decide per new fact against the nearest stored facts of the
   same namespace and user: ADD, UPDATE (the old record is revised in place and keeps its history),
   DELETE (the old record is retired: deleted, and named in the new one's `metadata["supersedes"]`)
   or NONE (services/knowledge_updates.py);
   store the new memories through `LongTermService.create` (hash dedup, then semantic merge), with the
   session's namespace, user and session, `extracted_from` = the messages they came from, and ids
   derived from the task's idempotency key, so a replay after a crash replaces instead of adding;
4. only then mark those messages extracted, with the store's atomic `mark_extracted`, which can never
   overwrite a PUT that landed meanwhile. A failed run raises and marks nothing, so the queue
   redelivers it and, past its receive limit, dead-letters it: never a silent drop.

A task of a user whose data was deleted after it was enqueued (a deletion tombstone, services/user_data.py)
is dropped (`user-deleted`): before it starts, again before it writes, and after it wrote, when a deletion
that ran meanwhile would otherwise miss what it stored (it deletes that again).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.models import (
    MemoryMessage,
    MemoryRecord,
    MemoryStrategyConfig,
    MemoryTypeEnum,
    WorkingMemory,
    format_datetime,
    utcnow,
)
from agent_memory.domain.tasks import AnyTask, ExtractionTask, RecordExtractionTask
from agent_memory.services.extraction_scheduler import session_generation, session_task_id
from agent_memory.services.extraction_strategies import Conversation, Extracted, strategy_for
from agent_memory.services.knowledge_updates import Decision

if TYPE_CHECKING:
    from agent_memory.ports import LanguageModel, WorkingMemoryStore
    from agent_memory.services.knowledge_updates import KnowledgeUpdater
    from agent_memory.services.long_term import LongTermService
    from agent_memory.services.task_records import TaskRecords
    from agent_memory.services.user_data import UserTombstones

logger = logging.getLogger(__name__)


def summary_id(namespace: str | None, user_id: str | None, session_id: str) -> str:
    """The one summary record of a session scope (AMS: `thread_summary_<sha256(ns|user|session)[:24]>`)."""
    digest = hashlib.sha256(f"{namespace or ''}|{user_id or ''}|{session_id}".encode()).hexdigest()
    return f"thread_summary_{digest[:24]}"


@dataclass
class ExtractionResult:
    status: Literal["extracted", "superseded", "session-gone", "nothing-new", "user-deleted"]
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    known: int = 0
    marked: int = 0


class ExtractionService:
    """The consumer side: run one task (see the module docstring for the steps)."""

    def __init__(
        self,
        sessions: WorkingMemoryStore,
        long_term: LongTermService,
        llm: LanguageModel,
        *,
        updater: KnowledgeUpdater | None = None,
        records: TaskRecords | None = None,
        tombstones: UserTombstones | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._long_term = long_term
        self._llm = llm
        self._updater = updater
        self._records = records
        self._tombstones = tombstones
        self._clock = clock

    def _user_deleted(self, task: AnyTask, user_id: str | None, namespace: str | None) -> bool:
        """Whether the user's data was deleted after this task was enqueued (see user_data.py)."""
        return self._tombstones is not None and self._tombstones.covers(task.tenant, user_id, namespace,
                                                                         task.enqueued_at)

    def _undo_if_user_deleted(self, task: AnyTask, records: Sequence[MemoryRecord], written: Sequence[str]) -> bool:
        """After a write: when a deletion of a user of `records` ran meanwhile, delete what this task wrote
        for that user (the deletion may have listed the records before they were there)."""
        users = {(r.user_id, r.namespace) for r in records if r.user_id}
        deleted = {u for u in users if self._user_deleted(task, *u)}
        if not deleted:
            return False
        kept = set(written)
        ids = [r.id for r in records if (r.user_id, r.namespace) in deleted and r.id in kept]
        self._long_term.delete(task.tenant, ids)
        logger.info("extraction dropped task_id=%s reason=user-deleted undone=%d", task.task_id, len(ids))
        return True

    def run(self, task: ExtractionTask | RecordExtractionTask) -> ExtractionResult:
        """Raises DependencyUnavailableError (LLM, store: worth a retry, StructuredOutputError included) or
        InvalidInputError (the session's strategy configuration cannot work)."""
        if isinstance(task, RecordExtractionTask):
            return self._run_records(task)
        return self._run_session(task)

    def _run_records(self, task: RecordExtractionTask) -> ExtractionResult:
        """The second pass: each record's own strategy over its text; the derived memories keep its scope
        and name it in `extracted_from`; then the source is marked extracted. A record deleted or
        extracted meanwhile is skipped, so a duplicate delivery changes nothing."""
        sources = [
            r for r in self._long_term.get_many(task.tenant, task.record_ids)
            if r.discrete_memory_extracted == "f" and r.extraction_strategy != "summary"
            and not self._user_deleted(task, r.user_id, r.namespace)
        ]
        if not sources:
            return ExtractionResult("nothing-new")
        now = self._clock()
        derived: list[MemoryRecord] = []
        for source in sources:
            known = source.extraction_strategy in ("discrete", "preferences", "custom")
            config = MemoryStrategyConfig(
                strategy=source.extraction_strategy if known else "discrete",  # type: ignore[arg-type]
                config=source.extraction_strategy_config if known else {},
            )
            strategy = strategy_for(config)
            note = MemoryMessage(id=source.id, role="note", content=source.text,
                                 created_at=source.event_date or source.created_at)
            conversation = Conversation(source.session_id or "", source.namespace, source.user_id, [note])
            for i, item in enumerate(strategy.extract(self._llm, conversation)):
                record = MemoryRecord(
                    id=_record_id(task, f"{source.id}:{i}"),
                    text=item.text, memory_type=MemoryTypeEnum(item.memory_type), topics=item.topics or None,
                    entities=item.entities or None, event_date=item.event_date, session_id=source.session_id,
                    namespace=source.namespace, user_id=source.user_id,
                    extracted_from=[source.id] if "," not in source.id else None,
                    extraction_strategy=strategy.name, extraction_strategy_config=config.config,
                    discrete_memory_extracted="t", created_at=now, last_accessed=now,
                )
                derived.append(record)
        result = ExtractionResult("extracted")
        derived = [r for r in derived if not self._user_deleted(task, r.user_id, r.namespace)]
        if derived:
            outcome = self._long_term.create(task.tenant, derived, deduplicate=True)
            result.stored, result.duplicates = outcome.stored, outcome.duplicates
            self._undo_if_user_deleted(task, derived, outcome.stored)
        result.marked = self._long_term.mark_extracted(task.tenant, [s.id for s in sources])
        logger.info(
            "record extraction done task_id=%s sources=%d memories=%d stored=%d duplicates=%d",
            task.task_id, len(sources), len(derived), len(result.stored), len(result.duplicates),
        )
        return result

    def _run_session(self, task: ExtractionTask) -> ExtractionResult:
        """Reports to the session's task record when it runs the task's generation: running, then
        success, or failed with the error (and re-raises, so the queue retries)."""
        if self._records is None:
            return self._extract_session(task)
        record_id, tenant = session_task_id(task), task.tenant
        try:
            result = self._extract_session(task, started=lambda: self._records_update(
                tenant, record_id, task.generation, status="running", started_at=self._clock(), error_message=None))
        except Exception as exc:
            detail = getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}"
            self._records_update(tenant, record_id, task.generation, status="failed", error_message=detail[:1000],
                                 completed_at=self._clock())
            raise
        if result.status in ("extracted", "nothing-new"):
            self._records_update(tenant, record_id, task.generation, status="success", completed_at=self._clock())
        elif result.status == "session-gone":
            self._records_update(tenant, record_id, task.generation, status="failed", completed_at=self._clock(),
                                 error_message="the session was deleted before its extraction ran")
        return result

    def _records_update(self, tenant: str, record_id: str, generation: str, **changes: object) -> None:
        assert self._records is not None
        try:
            self._records.update(tenant, record_id, generation=generation, **changes)
        except DependencyUnavailableError as exc:  # a report only: never fail the extraction for it
            logger.warning("task record not updated task_id=%s: %s", record_id, exc.detail)

    def _extract_session(self, task: ExtractionTask, started: Callable[[], None] = lambda: None) -> ExtractionResult:
        key = task.session_key
        if self._user_deleted(task, task.user_id, task.namespace):
            return ExtractionResult("user-deleted")
        memory = self._sessions.get(key)
        if memory is None:
            return ExtractionResult("session-gone")
        if session_generation(memory) != task.generation:
            return ExtractionResult("superseded")
        pending = [m for m in memory.messages if m.discrete_memory_extracted == "f"]
        if not pending:
            return ExtractionResult("nothing-new")
        started()
        strategy = strategy_for(memory.long_term_memory_strategy)
        messages = sorted(memory.messages, key=lambda m: m.created_at)
        conversation = Conversation(memory.session_id, memory.namespace, memory.user_id, messages)
        extracted = strategy.extract(self._llm, conversation)
        own_ids = [_record_id(task, i) for i in range(len(extracted))]
        if self._updater is not None and strategy.name != "summary" and extracted:
            decisions = self._updater.decide(
                task.tenant, memory.namespace, memory.user_id, extracted, exclude=own_ids
            )
        else:
            decisions = [Decision("ADD") for _ in extracted]
        sources = [m.id for m in pending if "," not in m.id][:100]  # ids are stored as comma-free tags
        now = self._clock()
        result = ExtractionResult("extracted")
        records: list[MemoryRecord] = []
        revisions: list[tuple[Decision, Extracted]] = []
        for record_id, item, decision in zip(own_ids, extracted, decisions, strict=True):
            if decision.action == "NONE":
                result.known += 1
            elif decision.action == "UPDATE":
                revisions.append((decision, item))
            else:
                if strategy.name == "summary":
                    record_id = summary_id(memory.namespace, memory.user_id, memory.session_id)
                metadata: dict[str, object] = {}
                if decision.action == "DELETE" and decision.target is not None:
                    old = decision.target
                    metadata["supersedes"] = [{
                        "id": old.id, "text": old.text, "created_at": format_datetime(old.created_at),
                        "event_date": format_datetime(old.event_date) if old.event_date else None,
                        "retired_at": format_datetime(now), "source_messages": sources, "task_id": task.task_id,
                    }]
                    result.retired.append(old.id)
                records.append(self._record(record_id, item, memory, strategy.name, sources, metadata, now))
        if self._user_deleted(task, task.user_id, task.namespace):  # deleted while the LLM worked
            return ExtractionResult("user-deleted")
        outcome = self._long_term.create(task.tenant, records, deduplicate=True) if records else None
        if outcome is not None:
            result.stored, result.duplicates = outcome.stored, outcome.duplicates
        for decision, item in revisions:
            assert decision.target is not None and decision.text is not None  # checked by the updater
            old = decision.target
            self._long_term.revise(
                task.tenant, old.id, decision.text, event_date=item.event_date, topics=item.topics,
                entities=item.entities,
                history={
                    "text": old.text, "event_date": format_datetime(old.event_date) if old.event_date else None,
                    "updated_at": format_datetime(old.updated_at), "replaced_at": format_datetime(now),
                    "source_messages": sources, "task_id": task.task_id,
                },
            )
            result.updated.append(old.id)
        if result.retired:
            # After the new facts are stored, so a failure in between never loses both.
            self._long_term.delete(task.tenant, result.retired)
        if self._user_deleted(task, task.user_id, task.namespace):  # deleted while this task wrote
            self._long_term.delete(task.tenant, [*result.stored, *result.updated])
            logger.info("extraction dropped task_id=%s reason=user-deleted undone=%d", task.task_id,
                        len(result.stored) + len(result.updated))
            return ExtractionResult("user-deleted")
        result.marked = self._sessions.mark_extracted(key, pending)
        logger.info(
            "extraction done task_id=%s strategy=%s memories=%d stored=%d duplicates=%d updated=%d retired=%d "
            "known=%d marked=%d",
            task.task_id, strategy.name, len(extracted), len(result.stored), len(result.duplicates),
            len(result.updated), len(result.retired), result.known, result.marked,
        )
        return result

    @staticmethod
    def _record(
        record_id: str, item: Extracted, memory: WorkingMemory, strategy: str, sources: list[str],
        metadata: dict[str, object], now: datetime,
    ) -> MemoryRecord:
        return MemoryRecord(
            id=record_id,
            text=item.text,
            memory_type=MemoryTypeEnum(item.memory_type),
            topics=item.topics or None,
            entities=item.entities or None,
            event_date=item.event_date,
            session_id=memory.session_id,
            namespace=memory.namespace,
            user_id=memory.user_id,
            extracted_from=sources or None,
            extraction_strategy=strategy,
            extraction_strategy_config=memory.long_term_memory_strategy.config,
            discrete_memory_extracted="t",
            metadata=metadata,
            created_at=now,
            last_accessed=now,
        )


def _record_id(task: AnyTask, index: int | str) -> str:
    """The same id for the same memory of the same task, on every delivery of it."""
    return "ext_" + hashlib.sha256(f"{task.idempotency_key}:{index}".encode()).hexdigest()[:26]


__all__ = ["ExtractionResult", "ExtractionService", "summary_id"]
