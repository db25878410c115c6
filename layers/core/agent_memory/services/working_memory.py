"""Working-memory use cases: get (with truncation), put (with summarization), delete, list, append.

Scope resolution follows the AMS contract §1.3: PUT takes namespace and user from the body; GET and
DELETE take them from the query, and when the exact key does not exist the session is resolved by id
alone if exactly one live session matches (the client PUTs with a user_id and later GETs without it).
The tenant always comes from the caller's identity, so resolution never crosses tenants.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from agent_memory.domain.errors import (
    DependencyUnavailableError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    UnprocessableError,
)
from agent_memory.domain.models import (
    MemoryMessage,
    SessionJson,
    SessionKey,
    SessionPage,
    WorkingMemory,
    utcnow,
)
from agent_memory.services.summarization import SummarizationStatus, summarize_if_needed
from agent_memory.services.tokens import (
    context_percentages,
    context_window,
    total_tokens,
    truncate_to_window,
)

if TYPE_CHECKING:
    from agent_memory.ports import LanguageModel, SessionReader, WorkingMemoryStore

# How a handler runs a blocking call (http/blocking.BlockingRunner is one): `await run(fn, *args, **kwargs)`.
BlockingCall = Callable[..., Awaitable[Any]]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkingMemoryLimits:
    max_messages: int = 2000
    max_message_chars: int = 100_000
    max_future_timestamp_seconds: int = 300


@dataclass(frozen=True)
class WorkingMemoryView:
    """A session as a response shows it: the memory plus the context percentages."""

    memory: WorkingMemory
    percentage_total_used: float | None = None
    percentage_until_summarization: float | None = None
    summarization: SummarizationStatus | None = None
    promotion: str | None = None
    extraction: str | None = None


@dataclass(frozen=True)
class Promotion:
    """A session with its promoted memories marked persisted, and the long-term ids this created."""

    memory: WorkingMemory
    created: list[str]


class Promoter(Protocol):
    """Long-term memory as a PUT sees it (`LongTermService` is one).

    The ordering rule of a PUT: promote, then store the session in one write; when that write fails,
    retract what the promotion created, so a failed PUT leaves nothing behind. Work that cannot be
    undone (an LLM merge deletes the records it merges) runs only after the session is stored.
    """

    def promote(self, tenant: str, memory: WorkingMemory) -> Promotion:
        """Index the unpersisted memories (hash dedup only); DependencyUnavailableError when it cannot."""

    def retract(self, tenant: str, memory_ids: Sequence[str]) -> None:
        """Delete records that `promote` created."""

    def settle(self, tenant: str, memory_ids: Sequence[str]) -> None:
        """After the session is stored: merge the created records with their near duplicates. Never raises
        for a dependency failure (the records stay as they are)."""


class ExtractionTrigger(Protocol):
    """Background extraction as a PUT sees it (`services.extraction.ExtractionScheduler` is one)."""

    def schedule(self, key: SessionKey, memory: WorkingMemory) -> str | None:
        """Enqueue extraction of the stored session; a status for the response header, None when there is
        nothing to extract. Never raises for a queue outage (the PUT stands; the next write retries)."""


class WorkingMemoryService:
    def __init__(
        self,
        store: WorkingMemoryStore,
        *,
        llm: LanguageModel | None = None,
        summarization_enabled: bool = True,
        summarization_threshold: float = 0.7,
        default_window: int = 16000,
        limits: WorkingMemoryLimits | None = None,
        promoter: Promoter | None = None,
        extraction: ExtractionTrigger | None = None,
    ) -> None:
        self._store = store
        self._llm = llm
        self._summarization_enabled = summarization_enabled
        self._threshold = summarization_threshold
        self._default_window = default_window
        self._limits = limits or WorkingMemoryLimits()
        self._promoter = promoter
        self._extraction = extraction

    @property
    def limits(self) -> WorkingMemoryLimits:
        return self._limits

    # --- lookups ----------------------------------------------------------------------------------
    def _find(self, tenant: str, session_id: str, namespace: str | None, user_id: str | None) -> WorkingMemory:
        """The session at the exact key, else the one live session with that id (AMS #235)."""
        key = SessionKey(tenant=tenant, session_id=session_id, namespace=namespace, user_id=user_id)
        memory = self._store.get(key)
        if memory is None:
            resolved = self._store.resolve(tenant, session_id, namespace=namespace, user_id=user_id)
            memory = self._store.get(resolved) if resolved is not None else None
        if memory is None:
            raise NotFoundError(f"Session {session_id} not found")
        return memory

    def get(
        self,
        tenant: str,
        session_id: str,
        *,
        namespace: str | None = None,
        user_id: str | None = None,
        model_name: str | None = None,
        context_window_max: int | None = None,
        recent_messages_limit: int | None = None,
    ) -> WorkingMemoryView:
        memory = self._find(tenant, session_id, namespace, user_id)
        return self._shown(
            memory,
            model_name=model_name,
            context_window_max=context_window_max,
            recent_messages_limit=recent_messages_limit,
        )

    async def get_async(
        self,
        tenant: str,
        session_id: str,
        *,
        reader: SessionReader | None,
        run: BlockingCall,
        namespace: str | None = None,
        user_id: str | None = None,
        model_name: str | None = None,
        context_window_max: int | None = None,
        recent_messages_limit: int | None = None,
    ) -> WorkingMemoryView | SessionJson:
        """`get` for a request handler: the exact-key read on the event loop through `reader` when there is
        one (a server on Redis), else all of `get` through `run` (a worker thread, or inline under Lambda).
        A miss at the exact key falls back to `get` through `run`, which resolves the id (AMS #235).

        A request that asks for the session unchanged (no window, no message limit) may get it as the
        stored JSON (`SessionJson`, no percentages): the reader then skips decoding what the response
        would encode again."""
        if reader is not None:
            key = SessionKey(tenant=tenant, session_id=session_id, namespace=namespace, user_id=user_id)
            unchanged = not recent_messages_limit or recent_messages_limit < 1
            unchanged = unchanged and self._requested_window(model_name, context_window_max) is None
            memory = await reader.get(key, as_json=unchanged)
            if isinstance(memory, SessionJson):
                return memory
            if memory is not None:
                return self._shown(
                    memory,
                    model_name=model_name,
                    context_window_max=context_window_max,
                    recent_messages_limit=recent_messages_limit,
                )
        view: WorkingMemoryView = await run(
            self.get,
            tenant,
            session_id,
            namespace=namespace,
            user_id=user_id,
            model_name=model_name,
            context_window_max=context_window_max,
            recent_messages_limit=recent_messages_limit,
        )
        return view

    def _shown(
        self,
        memory: WorkingMemory,
        *,
        model_name: str | None,
        context_window_max: int | None,
        recent_messages_limit: int | None,
    ) -> WorkingMemoryView:
        """A stored session as a GET shows it: the newest messages, truncated to the window, with percentages."""
        messages = memory.messages
        if recent_messages_limit is not None and recent_messages_limit > 0:
            messages = sorted(messages, key=lambda m: m.created_at)[-recent_messages_limit:]
        window = self._requested_window(model_name, context_window_max)
        if window is not None:
            messages = truncate_to_window(messages, window)
        if messages is not memory.messages:
            memory = memory.model_copy(update={"messages": messages})
        return self._view(memory, window)

    def list_sessions(
        self, tenant: str, *, namespace: str | None, user_id: str | None, limit: int, offset: int
    ) -> SessionPage:
        if limit < 1 or offset < 0:
            raise InvalidInputError(f"limit must be >= 1 and offset >= 0, got limit={limit} offset={offset}")
        return self._store.list_sessions(
            tenant, namespace=namespace, user_id=user_id, limit=limit, offset=offset
        )

    # --- writes -----------------------------------------------------------------------------------
    def put(
        self,
        tenant: str,
        memory: WorkingMemory,
        *,
        model_name: str | None = None,
        context_window_max: int | None = None,
    ) -> WorkingMemoryView:
        self.validate_messages(memory.messages)
        now = utcnow()
        memory = memory.model_copy(update={"updated_at": now, "data": memory.data or {}})
        window = self._requested_window(model_name, context_window_max)
        result = summarize_if_needed(
            memory,
            window=window or self._default_window,
            threshold=self._threshold,
            llm=self._llm,
            enabled=self._summarization_enabled,
        )
        key = SessionKey(
            tenant=tenant,
            session_id=memory.session_id,
            namespace=memory.namespace,
            user_id=memory.user_id,
        )
        memory, created, promotion = self._promote(tenant, result.memory)
        try:
            self._store.put(key, memory)
        except Exception:
            if created:
                self._retract(tenant, created)
            raise
        if created and self._promoter is not None:
            self._promoter.settle(tenant, created)
        # After the session is stored, so the task names a version that exists (see `Promoter`).
        extraction = self._extraction.schedule(key, memory) if self._extraction is not None else None
        view = self._view(memory, window)
        return replace(view, summarization=result.status, promotion=promotion, extraction=extraction)

    def _promote(self, tenant: str, memory: WorkingMemory) -> tuple[WorkingMemory, list[str], str | None]:
        """Promote memories; when long-term storage is down, store the session anyway with them unpersisted
        (the next PUT retries) and say so, rather than failing the whole PUT or dropping them."""
        if self._promoter is None or all(m.persisted_at is not None for m in memory.memories):
            return memory, [], None
        try:
            promotion = self._promoter.promote(tenant, memory)
        except DependencyUnavailableError as exc:
            return memory, [], f"deferred; reason={exc.dependency}-unavailable"
        return promotion.memory, promotion.created, "promoted"

    def _retract(self, tenant: str, created: list[str]) -> None:
        assert self._promoter is not None
        try:
            self._promoter.retract(tenant, created)
        except DependencyUnavailableError as exc:
            # The session was not stored, so its memories stay unpersisted and the next PUT promotes the
            # same ids again (an upsert): the records left here are what that PUT would write anyway.
            logger.warning("could not retract promoted memories %s: %s", created, exc.detail)

    def delete(self, tenant: str, session_id: str, *, namespace: str | None, user_id: str | None) -> None:
        """Idempotent, as in AMS: deleting a missing session is not an error."""
        key = SessionKey(tenant=tenant, session_id=session_id, namespace=namespace, user_id=user_id)
        if self._store.delete(key):
            return
        resolved = self._store.resolve(tenant, session_id, namespace=namespace, user_id=user_id)
        if resolved is not None:
            self._store.delete(resolved)

    # --- helpers ----------------------------------------------------------------------------------
    def _requested_window(self, model_name: str | None, context_window_max: int | None) -> int | None:
        if model_name is None and context_window_max is None:
            return None
        return context_window(model_name, context_window_max, self._default_window)

    def _view(self, memory: WorkingMemory, window: int | None) -> WorkingMemoryView:
        if window is None:
            return WorkingMemoryView(memory)
        tokens = total_tokens(memory.messages)
        used, until = context_percentages(tokens, window, self._threshold)
        return WorkingMemoryView(memory, used, until)

    def validate_messages(self, messages: Sequence[MemoryMessage]) -> None:
        """Every message within the limits (MAX_MESSAGES_PER_SESSION, MAX_MESSAGE_CHARS, a timestamp not too far
        ahead) and not blank: PayloadTooLargeError (413), InvalidInputError (400), UnprocessableError (422)."""
        limits = self._limits
        if len(messages) > limits.max_messages:
            raise PayloadTooLargeError(
                f"{len(messages)} messages in one session; the limit is {limits.max_messages} "
                "(MAX_MESSAGES_PER_SESSION)"
            )
        latest_allowed = utcnow() + timedelta(seconds=limits.max_future_timestamp_seconds)
        for message in messages:
            if not message.content.strip():
                raise InvalidInputError(f"Message content cannot be empty (message ID: {message.id})")
            if len(message.content) > limits.max_message_chars:
                raise PayloadTooLargeError(
                    f"message {message.id} has {len(message.content)} characters; the limit is "
                    f"{limits.max_message_chars} (MAX_MESSAGE_CHARS)"
                )
            if message.created_at > latest_allowed:
                raise UnprocessableError(
                    f"message {message.id} created_at is more than "
                    f"{limits.max_future_timestamp_seconds} seconds in the future"
                )
