"""The ten MCP tools, with the names and arguments of Agent Memory Server's MCP server (0.15.2).

Each tool validates its arguments with the REST API's own request models (`http/schemas.py`,
`domain/search.py`) and calls the same service method as the REST route, for the caller's tenant, so
limits, defaults and errors are the REST API's. What differs is only how an answer travels: a domain
error becomes an MCP tool error (`isError`) whose text names the REST status and the detail, e.g.
`not found (404): No memory with id 'x'`, and a dependency failure names the dependency.

The caller (principal and where blocking calls run) is a context variable that the transport sets
before the SDK handles a message: `http/routers/mcp_transport.py` per HTTP request, `mcp/server.py` once for a
stdio process. A failure is raised as the SDK's `ToolError`, which it answers as a tool result with
`isError: true` and the text; the module is imported only where the MCP server is built (lazily).

Deliberately as AMS's MCP server, not as the REST API: `set_working_memory` defaults `ttl_seconds` to
3600; `get_working_memory` of a session that does not exist answers an empty session (AMS does,
and agents' prompts rely on it) instead of an error, and creates nothing; the namespace and user
defaults come from DEFAULT_MCP_NAMESPACE and DEFAULT_MCP_USER_ID where AMS applies them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, TypeAdapter, ValidationError

from agent_memory.domain.auth import SCOPE_READ, SCOPE_WRITE, Principal
from agent_memory.domain.errors import AgentMemoryError, NotFoundError, RateLimitedError
from agent_memory.domain.filters import DateTimeFilter, EnumFilter, TagFilter
from agent_memory.domain.models import (
    SESSION_SETTINGS,
    MemoryMessage,
    MemoryRecord,
    MemoryStrategyConfig,
    MemoryTypeEnum,
    SearchMode,
    WorkingMemory,
)
from agent_memory.domain.search import SearchRequest
from agent_memory.domain.validation import Identifier
from agent_memory.http.errors import status_for
from agent_memory.http.schemas import (
    CreateMemoryRecordRequest,
    EditMemoryRecordRequest,
    ExtractedMemoryRecord,
    GetWorkingMemoryQuery,
    UpdateWorkingMemory,
    WorkingMemoryRecordIn,
)
from agent_memory.services import maintenance
from agent_memory.services.auth import require
from agent_memory.services.prompt import PromptResult, PromptSession, build_prompt

if TYPE_CHECKING:
    from agent_memory.bootstrap import Container
    from agent_memory.http.blocking import BlockingRunner
    from agent_memory.services.working_memory import WorkingMemoryView

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# As the REST route's `memory_ids: Query(max_length=1000)`.
MAX_DELETE_IDS = 1000
# AMS's MCP default for set_working_memory (the REST PUT stores a session without expiry by default).
MCP_WORKING_MEMORY_TTL_SECONDS = 3600

_SESSION_ID = TypeAdapter(Identifier)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls the tools and where their blocking service calls run."""

    principal: Principal
    run: BlockingRunner


CALLER: ContextVar[Caller] = ContextVar("agent_memory_mcp_caller")

# Labels of the REST statuses in a tool error's text.
_LABELS = {
    400: "invalid input", 401: "not authenticated", 403: "permission denied", 404: "not found", 409: "conflict",
    413: "too large", 422: "invalid input", 429: "rate limited", 503: "unavailable",
}  # fmt: skip


def describe(error: AgentMemoryError) -> str:
    """The text of a tool error for a domain error: `<label> (<REST status>): <detail>`.

    >>> from agent_memory.domain.errors import DependencyUnavailableError, NotFoundError
    >>> describe(NotFoundError("Session s1 not found"))
    'not found (404): Session s1 not found'
    >>> describe(DependencyUnavailableError("redis", "timed out after 1s"))
    'unavailable (503): redis unavailable: timed out after 1s (dependency: redis; retry later)'
    """
    status = status_for(error)
    text = f"{_LABELS.get(status, 'error')} ({status}): {error.detail}"
    if isinstance(error, RateLimitedError):
        return f"{text} (retry after {max(1, math.ceil(error.retry_after))} s)"
    dependency = getattr(error, "dependency", None)
    if status == 503 and dependency:
        return f"{text} (dependency: {dependency}; retry later)"
    return text


def invalid_arguments(error: ValidationError) -> str:
    """One line per problem, each naming the argument: `invalid input (422): memories.0.text: ...`."""
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append(f"{where}: {item['msg']}")
    return "invalid input (422): " + "; ".join(problems)


def _validate(model: type[M], values: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise ToolError(invalid_arguments(exc)) from None


def _unset(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


def _working_memory(view: WorkingMemoryView) -> dict[str, Any]:
    # As the REST GET/PUT answer: the session API's own settings stay out.
    return {
        **view.memory.model_dump(mode="json", exclude=set(SESSION_SETTINGS)),
        "context_percentage_total_used": view.percentage_total_used,
        "context_percentage_until_summarization": view.percentage_until_summarization,
    }


class MemoryTools:
    """The tools, bound to one container; `server.py` registers each public coroutine by its name."""

    def __init__(self, container: Container) -> None:
        self._container = container
        settings = container.settings
        self.default_namespace: str | None = settings.default_mcp_namespace
        self.default_user_id: str | None = settings.default_mcp_user_id

    async def _call(self, scope: str, call: Callable[[Container, str], T]) -> T:
        """`call(container, tenant)` for the caller after checking its scope, where blocking calls run (the
        container builds a service's clients on first use, which is I/O too); domain errors → ToolError."""
        caller = CALLER.get()
        try:
            require(caller.principal, scope)
            return await caller.run(call, self._container, caller.principal.tenant)
        except AgentMemoryError as exc:
            raise ToolError(describe(exc)) from exc
        except ValidationError as exc:  # a service validating what it builds from the arguments
            raise ToolError(invalid_arguments(exc)) from exc

    def _default_filters(self, namespace: TagFilter | None, user_id: TagFilter | None
                         ) -> tuple[TagFilter | None, TagFilter | None]:  # fmt: skip
        if namespace is None and self.default_namespace:
            namespace = TagFilter(eq=self.default_namespace)
        if user_id is None and self.default_user_id:
            user_id = TagFilter(eq=self.default_user_id)
        return namespace, user_id

    async def get_current_datetime(self) -> dict[str, Any]:
        """Get the current date and time in UTC, to ground relative time expressions.

        Call it whenever the user says "today", "yesterday", "last week" or you need a concrete date in
        a memory's text, and set `event_date` of episodic memories from `iso_utc`.

        Returns: `iso_utc` (ISO 8601 with a Z suffix, e.g. "2025-08-14T23:59:59Z") and `unix_ts` (seconds).
        """
        now = datetime.now(UTC).replace(microsecond=0)
        return {"iso_utc": now.isoformat().replace("+00:00", "Z"), "unix_ts": int(now.timestamp())}

    async def create_long_term_memories(self, memories: list[ExtractedMemoryRecord]) -> dict[str, Any]:
        """Create long-term memories that can be searched later.

        Resolve every contextual reference before storing: pronouns to names ("User prefers Python",
        not "He prefers Python"), relative times to absolute dates (call get_current_datetime), "there"
        and "the project" to what they name. Use memory_type "semantic" for lasting facts and
        preferences, "episodic" for events (with `event_date`). Give a `session_id` only if it is the
        exact id of the current conversation. A record without `id` gets one; namespace and user_id
        default to the server's MCP defaults.

        Args:
            memories: the records, e.g. [{"text": "User prefers dark mode", "memory_type": "semantic",
                "topics": ["preferences"]}]

        Returns: `status` "ok" and which ids were stored, dropped as duplicates, or merged.
        """
        records = []
        for memory in memories:
            defaults = {}
            if memory.namespace is None and self.default_namespace:
                defaults["namespace"] = self.default_namespace
            if memory.user_id is None and self.default_user_id:
                defaults["user_id"] = self.default_user_id
            records.append(memory.model_copy(update=defaults))
        request = _validate(CreateMemoryRecordRequest, {"memories": records})
        domain = [MemoryRecord.model_validate(m.model_dump()) for m in request.memories]
        outcome = await self._call(SCOPE_WRITE, lambda c, tenant: c.long_term_service.create(
            tenant, domain, deduplicate=request.deduplicate))
        return {
            "status": "ok",
            "stored_ids": outcome.stored,
            "duplicate_ids": outcome.duplicates,
            "merged_ids": outcome.merged,
            "duplicate_of": outcome.duplicate_of,
        }

    async def search_long_term_memory(
        self,
        text: str | None = None,
        search_mode: SearchMode = SearchMode.SEMANTIC,
        session_id: TagFilter | None = None,
        namespace: TagFilter | None = None,
        topics: TagFilter | None = None,
        entities: TagFilter | None = None,
        created_at: DateTimeFilter | None = None,
        last_accessed: DateTimeFilter | None = None,
        user_id: TagFilter | None = None,
        memory_type: EnumFilter | None = None,
        extraction_strategy: TagFilter | None = None,
        event_date: DateTimeFilter | None = None,
        distance_threshold: float | None = None,
        limit: int = 10,
        offset: int = 0,
        optimize_query: bool = False,
        recency_boost: bool | None = None,
        recency_semantic_weight: float | None = None,
        recency_recency_weight: float | None = None,
        recency_freshness_weight: float | None = None,
        recency_novelty_weight: float | None = None,
        recency_half_life_last_access_days: float | None = None,
        recency_half_life_created_days: float | None = None,
        server_side_recency: bool | None = None,
    ) -> dict[str, Any]:
        """Search long-term memories by meaning (semantic), words (keyword) or both (hybrid).

        Filters take objects: tags {"eq": "x"}, {"any": ["a", "b"]}, {"all": [...]}, {"ne": "x"};
        dates ISO 8601, {"gte": "2024-01-01T00:00:00Z", "lt": "2024-02-01T00:00:00Z"} or
        {"between": [from, to]}. An empty `text` lists the newest memories matching the filters (e.g.
        everything of a user: text "", user_id {"eq": "u1"}, limit 50). Use a session_id filter only
        with the exact id of a real session. namespace and user_id default to the server's MCP defaults.

        Returns: `memories` (best first, each with `dist` and `score`), `total` and `next_offset`.
        """
        namespace, user_id = self._default_filters(namespace, user_id)
        values = dict(locals())
        for name in ("self", "optimize_query"):
            values.pop(name)
        request = _validate(SearchRequest, _unset(values))
        results = await self._call(SCOPE_READ, lambda c, tenant: c.long_term_service.search(
            tenant, request, optimize_query=optimize_query))
        return {
            "memories": [_dump(m) for m in results.memories],
            "total": results.total,
            "next_offset": results.next_offset,
        }

    async def memory_prompt(
        self,
        query: str,
        session_id: TagFilter | None = None,
        namespace: TagFilter | None = None,
        model_name: str | None = None,
        context_window_max: int | None = None,
        topics: TagFilter | None = None,
        entities: TagFilter | None = None,
        created_at: DateTimeFilter | None = None,
        last_accessed: DateTimeFilter | None = None,
        user_id: TagFilter | None = None,
        memory_type: EnumFilter | None = None,
        extraction_strategy: TagFilter | None = None,
        event_date: DateTimeFilter | None = None,
        distance_threshold: float | None = None,
        search_mode: SearchMode = SearchMode.SEMANTIC,
        limit: int = 10,
        offset: int = 0,
        optimize_query: bool = False,
        recency_boost: bool | None = None,
        recency_semantic_weight: float | None = None,
        recency_recency_weight: float | None = None,
        recency_freshness_weight: float | None = None,
        recency_novelty_weight: float | None = None,
        recency_half_life_last_access_days: float | None = None,
        recency_half_life_created_days: float | None = None,
        server_side_recency: bool | None = None,
        include_long_term_search: bool = True,
    ) -> dict[str, Any]:
        """Hydrate a query with the session's history and relevant long-term memories, ready for an LLM.

        Modes: session + long-term search (session_id {"eq": "<id>"}, the default), session only
        (include_long_term_search false), long-term only (no session_id). At least one must be on.
        The session_id filter picks the session (its `eq`); it does not limit the long-term search.
        Filters and recency settings are those of search_long_term_memory.

        Returns: `messages` (the summary, the session's messages, the memories found, then the query)
        and `long_term_memories`.
        """
        namespace, user_id = self._default_filters(namespace, user_id)
        session = None
        if session_id is not None and not session_id.eq:  # AMS ignores such a filter; an agent should know
            raise ToolError('invalid input (422): session_id: memory_prompt reads one session: {"eq": "<id>"}')
        if session_id is not None:
            session = _validate(PromptSession, _unset({
                "session_id": session_id.eq,
                "namespace": namespace.eq if namespace is not None else None,
                "user_id": user_id.eq if user_id is not None else None,
                "model_name": model_name,
                "context_window_max": context_window_max,
            }))  # fmt: skip
        search: SearchRequest | bool = False
        if include_long_term_search:
            values = dict(locals())
            for name in ("self", "query", "session_id", "model_name", "context_window_max", "optimize_query",
                         "include_long_term_search", "session", "search"):
                values.pop(name)
            search = _validate(SearchRequest, _unset({**values, "text": query}))

        def prompt(c: Container, tenant: str) -> PromptResult:
            return build_prompt(c.working_memory_service, c.long_term_service, tenant, query=query,
                                session=session, long_term_search=search, optimize_query=optimize_query)  # fmt: skip

        result = await self._call(SCOPE_READ, prompt)
        return {
            "messages": result.messages,
            "long_term_memories": None if result.long_term_memories is None
            else [_dump(m) for m in result.long_term_memories],
        }

    async def set_working_memory(
        self,
        session_id: str,
        memories: list[WorkingMemoryRecordIn] | None = None,
        messages: list[MemoryMessage] | None = None,
        context: str | None = None,
        data: dict[str, Any] | None = None,
        namespace: str | None = None,
        user_id: str | None = None,
        ttl_seconds: int = MCP_WORKING_MEMORY_TTL_SECONDS,
        long_term_memory_strategy: MemoryStrategyConfig | None = None,
    ) -> dict[str, Any]:
        """Replace the working memory of a session (like PUT /v1/working-memory/{session_id}).

        Best for structured memory records and JSON `data` about the session; `memories` are promoted
        to long-term memory. Messages are {"role": "user", "content": "..."} (ids are assigned when
        missing). The session expires after `ttl_seconds` (1 hour by default). namespace and user_id
        default to the server's MCP defaults.

        Returns: the stored session, with how much of the context window it uses.
        """
        checked = self._session_id(session_id)
        body = _validate(UpdateWorkingMemory, _unset({
            "memories": memories,
            "messages": messages,
            "context": context,
            "data": data,
            "namespace": namespace if namespace is not None else self.default_namespace,
            "user_id": user_id if user_id is not None else self.default_user_id,
            "ttl_seconds": ttl_seconds,
            "long_term_memory_strategy": long_term_memory_strategy,
        }))  # fmt: skip
        memory = body.to_domain(checked)
        view = await self._call(SCOPE_WRITE, lambda c, tenant: c.working_memory_service.put(tenant, memory))
        return _working_memory(view)

    async def get_working_memory(
        self,
        session_id: str,
        user_id: str | None = None,
        namespace: str | None = None,
        recent_messages_limit: int | None = None,
    ) -> dict[str, Any]:
        """Get the working memory of a session (like GET /v1/working-memory/{session_id}).

        A session that does not exist comes back empty (no messages, no memories) and is not created.

        Args:
            session_id: the session's id
            user_id: the user the session belongs to, when ids repeat across users
            namespace: the session's namespace, when ids repeat across namespaces
            recent_messages_limit: keep only the newest N messages

        Returns: the session's messages, context, memories and data.
        """
        checked = self._session_id(session_id)
        query = _validate(GetWorkingMemoryQuery, {
            "namespace": namespace, "user_id": user_id, "recent_messages_limit": recent_messages_limit,
        })  # fmt: skip
        try:
            view = await self._call(SCOPE_READ, lambda c, tenant: c.working_memory_service.get(
                tenant, checked, **query.model_dump()))
        except ToolError as exc:
            if not isinstance(exc.__cause__, NotFoundError):
                raise
            empty = WorkingMemory(session_id=checked, namespace=namespace, user_id=user_id)
            return empty.model_dump(mode="json", exclude=set(SESSION_SETTINGS))
        return _working_memory(view)

    async def get_long_term_memory(self, memory_id: str) -> dict[str, Any]:
        """Get one long-term memory by its id, e.g. get_long_term_memory(memory_id="01HXE2B1234567890ABCDEF").

        Returns: the memory record (an error when there is none with that id).
        """
        return _dump(await self._call(SCOPE_READ, lambda c, tenant: c.long_term_service.get(tenant, memory_id)))

    async def edit_long_term_memory(
        self,
        memory_id: str,
        text: str | None = None,
        topics: list[str] | None = None,
        entities: list[str] | None = None,
        memory_type: MemoryTypeEnum | None = None,
        namespace: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        event_date: str | None = None,
        pinned: bool | None = None,
    ) -> dict[str, Any]:
        """Change some fields of a long-term memory; the fields left out stay as they are.

        Use it when the user corrects or updates something remembered. For time-bound updates set
        `event_date` (ISO 8601, e.g. "2024-01-15T14:30:00Z"; resolve "today" with get_current_datetime)
        and write the date into `text` too. `pinned` protects a memory from being forgotten.

        Returns: the updated memory record.
        """
        values = dict(locals())
        for name in ("self", "memory_id"):
            values.pop(name)
        body = _validate(EditMemoryRecordRequest, _unset(values))
        updates = body.model_dump(exclude_none=True)
        return _dump(await self._call(SCOPE_WRITE, lambda c, tenant: c.long_term_service.patch(
            tenant, memory_id, updates)))

    async def delete_long_term_memories(self, memory_ids: list[str]) -> dict[str, Any]:
        """Delete long-term memories by id, permanently.

        Example: delete_long_term_memories(memory_ids=["01HXE2B1234567890ABCDEF"])

        Returns: `status` with how many were deleted.
        """
        if len(memory_ids) > MAX_DELETE_IDS:
            raise ToolError(f"invalid input (422): memory_ids: at most {MAX_DELETE_IDS} ids per call")
        deleted = await self._call(SCOPE_WRITE, lambda c, tenant: c.long_term_service.delete(tenant, memory_ids))
        return {"status": f"ok, deleted {deleted} memories"}

    async def compact_long_term_memories(
        self, namespace: str | None = None, user_id: str | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        """Remove exact duplicates and merge near duplicates (when an LLM is configured) among long-term
        memories, optionally only within a namespace, user or session.

        Returns: `status` with how many memories remain in that scope.
        """
        scope = maintenance.Scope(namespace=namespace, user_id=user_id, session_id=session_id)

        def compact(c: Container, tenant: str) -> int:
            return maintenance.compact(c.long_term_service, tenant, scope)

        remaining = await self._call(SCOPE_WRITE, compact)
        return {"status": f"ok, {remaining} memories remaining after compaction"}

    def _session_id(self, session_id: str) -> str:
        try:
            return _SESSION_ID.validate_python(session_id)
        except ValidationError as exc:
            message = exc.errors(include_url=False)[0]["msg"]
            raise ToolError(f"invalid input (400): session_id: {message}") from None


# The order of tools/list, as AMS's server registers them.
TOOL_NAMES = (
    "get_current_datetime",
    "create_long_term_memories",
    "search_long_term_memory",
    "memory_prompt",
    "set_working_memory",
    "get_working_memory",
    "get_long_term_memory",
    "edit_long_term_memory",
    "delete_long_term_memories",
    "compact_long_term_memories",
)
READ_TOOLS = frozenset({"search_long_term_memory", "memory_prompt", "get_working_memory", "get_long_term_memory"})
WRITE_TOOLS = frozenset(TOOL_NAMES) - READ_TOOLS - {"get_current_datetime"}

__all__ = ["CALLER", "READ_TOOLS", "TOOL_NAMES", "WRITE_TOOLS", "Caller", "MemoryTools", "describe"]
