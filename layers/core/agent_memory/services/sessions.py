"""The Memory Platform session API: a second view of the working-memory store (no second store).

A session of this API is a working-memory session: `session_id` is its id, the caller's tenant its tenant,
`subject` its `user_id` (so extraction scopes what it learns to that user, as for an AMS session with a
user), no namespace. Items are its messages, primed records sit in its `memories`. So a session written
through one API reads back through the other, and an append queues extraction exactly as an AMS PUT does.

What this API adds is stored with the session (`WorkingMemory.message_limit`, `primed_memory_ids`):

- **The item limit** (50 by default, per session). Every append goes through the store's atomic
  `append_messages`, which drops the oldest messages beyond the limit *only when they are already
  extracted* (`discrete_memory_extracted == "t"`), stopping at the first that is not. Extraction sets that
  flag (`mark_extracted`) only after the memories it derived from the messages are stored in long-term
  memory, so a message leaves the buffer only once what it said is in long-term memory: nothing said is
  lost. Until then the buffer may hold more than the limit (bounded by MAX_MESSAGES_PER_SESSION, then 413).
  Without extraction (no LLM) but with long-term memory, the append hands the overflow to long-term memory
  itself: the oldest messages beyond the limit are stored as `message` records (ids derived from the
  session and message, so a retry replaces them), only then marked extracted, and trimmed by one more
  (empty) append. A failure on the way leaves them in the buffer for the next append to hand over again.
  With neither, nothing is ever marked, so nothing is dropped.
- **Priming**: long-term records loaded into `memories` (replacing by id), their ids kept in order.

Example::

    service = SessionService(store, working_memory, long_term=long_term, extraction=scheduler)
    service.create("acme", "s1", subject="user-7")
    view = service.append("acme", "s1", MemoryMessage(role="user", content="I moved to Lisbon"))
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent_memory.domain import keys
from agent_memory.domain.errors import AgentMemoryError, ConflictError, NotFoundError, PayloadTooLargeError
from agent_memory.domain.models import (
    MemoryMessage,
    MemoryRecord,
    MemoryTypeEnum,
    SessionKey,
    WorkingMemory,
    utcnow,
)
from agent_memory.services.tokens import total_tokens

if TYPE_CHECKING:
    from agent_memory.ports import WorkingMemoryStore
    from agent_memory.services.long_term import LongTermService
    from agent_memory.services.working_memory import ExtractionTrigger, WorkingMemoryService

logger = logging.getLogger(__name__)

# The seed's defaults: a session lives an hour after its last write and keeps at most 50 items.
DEFAULT_TTL_SECONDS = 3600
DEFAULT_MAX_ITEMS = 50


@dataclass(frozen=True)
class SessionView:
    """A session as this API shows it."""

    key: SessionKey
    memory: WorkingMemory
    token_count: int
    ttl_left: int | None
    primed: list[MemoryRecord]
    unknown_memory_ids: list[str] = field(default_factory=list)
    extraction: str | None = None


class SessionService:
    def __init__(
        self,
        store: WorkingMemoryStore,
        working_memory: WorkingMemoryService,
        *,
        long_term: LongTermService | None = None,
        extraction: ExtractionTrigger | None = None,
        default_ttl_seconds: int = DEFAULT_TTL_SECONDS,
        default_max_items: int = DEFAULT_MAX_ITEMS,
    ) -> None:
        self._store = store
        self._working_memory = working_memory
        self._long_term = long_term
        self._extraction = extraction
        self._default_ttl = default_ttl_seconds
        self._default_max_items = default_max_items

    # --- lookups ----------------------------------------------------------------------------------
    def _locate(self, tenant: str, session_id: str) -> tuple[SessionKey, WorkingMemory] | None:
        """The session with this id: at the key without user or namespace, else the one live session with the
        id (a session created with a subject, or by an AMS PUT with a user and namespace)."""
        key = SessionKey(tenant=tenant, session_id=session_id)
        memory = self._store.get(key)
        if memory is None:
            resolved = self._store.resolve(tenant, session_id)
            if resolved is None:
                return None
            key, memory = resolved, self._store.get(resolved)
            if memory is None:  # expired or deleted between the two reads
                return None
        return key, memory

    def get(self, tenant: str, session_id: str) -> SessionView:
        """Raises NotFoundError."""
        found = self._locate(tenant, session_id)
        if found is None:
            raise NotFoundError(f"Session {session_id} not found")
        return self._view(*found)

    # --- writes -----------------------------------------------------------------------------------
    def create(
        self,
        tenant: str,
        session_id: str,
        *,
        subject: str | None = None,
        ttl_seconds: int | None = None,
        max_items: int | None = None,
    ) -> SessionView:
        """A new empty session; ConflictError when a live session has this id already (in this tenant).

        Two creates racing each other both succeed on the same session (the store's append creates it once)."""
        if self._locate(tenant, session_id) is not None:
            raise ConflictError(f"Session {session_id} already exists")
        key = SessionKey(tenant=tenant, session_id=session_id, user_id=subject)
        limit = max_items or self._default_max_items
        self._check_limit(limit)
        memory = self._store.append_messages(
            key, [], ttl_seconds=ttl_seconds or self._default_ttl, message_limit=limit
        )
        return self._view(key, memory)

    def append(self, tenant: str, session_id: str, message: MemoryMessage) -> SessionView:
        """Append one message atomically (the session is created when missing, with the default TTL and item
        limit), then queue extraction as a PUT does. Raises PayloadTooLargeError, InvalidInputError,
        UnprocessableError for a message over the limits."""
        self._working_memory.validate_messages([message])
        found = self._locate(tenant, session_id)
        key = found[0] if found is not None else SessionKey(tenant=tenant, session_id=session_id)
        # MAX_MESSAGES_PER_SESSION is checked by the store inside the append itself, so concurrent appends
        # cannot pass it (MessageLimitError, a 413, with nothing written).
        memory = self._store.append_messages(
            key,
            [message],
            ttl_seconds=self._default_ttl,
            message_limit=self._default_max_items,
            max_total=self._working_memory.limits.max_messages,
        )
        # After the append, so the task names a version that exists (the PUT's ordering rule).
        extraction = self._extraction.schedule(key, memory) if self._extraction is not None else None
        if self._extraction is None and self._long_term is not None:
            memory = self._hand_over(key, memory)
        view = self._view(key, memory)
        return SessionView(view.key, view.memory, view.token_count, view.ttl_left, view.primed, extraction=extraction)

    def prime(self, tenant: str, session_id: str, memory_ids: Sequence[str]) -> SessionView:
        """Load the tenant's long-term records with these ids into the session; ids with no record are
        reported in `unknown_memory_ids`. Raises NotFoundError (no session), FeatureDisabledError (long-term
        memory off)."""
        found = self._locate(tenant, session_id)
        if found is None:
            raise NotFoundError(f"Session {session_id} not found")
        key = found[0]
        wanted = list(dict.fromkeys(memory_ids))
        records = self._long_terms(tenant, wanted)
        now = utcnow()
        # Already in long-term memory: a later AMS PUT that sends them back must not promote them again.
        records = [r.model_copy(update={"persisted_at": r.persisted_at or now}) for r in records]
        memory = self._store.prime(key, records) if records else found[1]
        if memory is None:
            raise NotFoundError(f"Session {session_id} not found")
        known = {r.id for r in records}
        view = self._view(key, memory)
        return SessionView(view.key, view.memory, view.token_count, view.ttl_left, view.primed,
                           unknown_memory_ids=[i for i in wanted if i not in known])

    # --- helpers ----------------------------------------------------------------------------------
    def _hand_over(self, key: SessionKey, memory: WorkingMemory) -> WorkingMemory:
        """Without extraction: store the unextracted messages beyond the limit as long-term `message` records,
        mark them extracted, and let one more append trim them. Never fails the append it follows."""
        limit = memory.message_limit
        if limit is None or len(memory.messages) <= limit:
            return memory
        overflow: list[MemoryMessage] = []
        for message in memory.messages[: len(memory.messages) - limit]:
            if message.discrete_memory_extracted == "t":
                continue  # already handed over; the trim below drops it
            overflow.append(message)
        assert self._long_term is not None
        try:
            if overflow:
                self._long_term.create(key.tenant, [_message_record(key, m) for m in overflow], second_pass=False)
                self._store.mark_extracted(key, overflow)
            return self._store.append_messages(key, [])
        except AgentMemoryError as exc:  # a store or the embedder down, a record over a size limit
            # The append stands; the messages stay in the buffer until an append can hand them over.
            logger.warning("session overflow not handed to long-term memory session_id=%s: %s",
                           key.session_id, getattr(exc, "detail", exc))
            return memory

    def _long_terms(self, tenant: str, ids: list[str]) -> list[MemoryRecord]:
        if self._long_term is None:
            from agent_memory.domain.errors import FeatureDisabledError

            raise FeatureDisabledError("priming needs long-term memory (LONG_TERM_MEMORY=true)")
        by_id = {r.id: r for r in self._long_term.get_many(tenant, ids)}
        return [by_id[i] for i in ids if i in by_id]

    def _check_limit(self, max_items: int) -> None:
        limit = self._working_memory.limits.max_messages
        if max_items > limit:
            raise PayloadTooLargeError(
                f"max_items {max_items} is over the limit of {limit} messages per session (MAX_MESSAGES_PER_SESSION)"
            )

    @staticmethod
    def _view(key: SessionKey, memory: WorkingMemory) -> SessionView:
        primed_ids = set(memory.primed_memory_ids or ())
        return SessionView(
            key=key,
            memory=memory,
            token_count=total_tokens(memory.messages),
            ttl_left=_ttl_left(memory),
            primed=[m for m in memory.memories if m.id in primed_ids],
        )


def _message_record(key: SessionKey, message: MemoryMessage) -> MemoryRecord:
    """A message leaving a session's buffer as a long-term `message` record: the same id for the same message
    of the same session, so a repeated hand-over replaces instead of adding."""
    digest = hashlib.sha256(f"{keys.session_member(key)}|{message.id}".encode()).hexdigest()[:26]
    return MemoryRecord(
        id=f"msg_{digest}",
        text=message.content,
        memory_type=MemoryTypeEnum.MESSAGE,
        session_id=key.session_id,
        namespace=key.namespace,
        user_id=key.user_id,
        created_at=message.created_at,
        discrete_memory_extracted="t",
        extracted_from=[message.id] if "," not in message.id else None,
        metadata={"role": message.role},
    )


def _ttl_left(memory: WorkingMemory) -> int | None:
    """Whole seconds until the session expires (None: persistent). Every write restarts the TTL and sets
    `updated_at` (a prime and the extraction's marking change neither), so expiry is `updated_at` + TTL, to
    within the clock difference between this process and the store's server."""
    if memory.ttl_seconds is None:
        return None
    left = (memory.updated_at - utcnow()).total_seconds() + memory.ttl_seconds
    return max(0, min(memory.ttl_seconds, math.ceil(left)))


__all__ = ["DEFAULT_MAX_ITEMS", "DEFAULT_TTL_SECONDS", "SessionService", "SessionView"]
