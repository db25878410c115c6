"""`POST /v1/memory/prompt`: a ready-to-send message list from a session and long-term search (§5.13).

Order: the session summary (system), the session's messages (user stays user, every other role becomes
assistant), the long-term results (system), then the query (user). A missing session counts as empty
and is not created. Unlike AMS, a search that finds nothing never widens its scope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_memory.domain.errors import InvalidInputError, NotFoundError
from agent_memory.domain.filters import TagFilter
from agent_memory.domain.models import DomainModel, MemoryRecordResult
from agent_memory.domain.search import SearchRequest
from agent_memory.domain.validation import Identifier, PositiveCount, ScopeValue

if TYPE_CHECKING:
    from agent_memory.services.long_term import LongTermService
    from agent_memory.services.working_memory import WorkingMemoryService

SUMMARY_HEADER = "## A summary of the conversation so far:\n"
MEMORIES_HEADER = "## Long term memories related to the user's query\n "
NO_MEMORIES = MEMORIES_HEADER + "No relevant long-term memories found."


class PromptSession(DomainModel):
    session_id: Identifier
    namespace: ScopeValue | None = None
    user_id: ScopeValue | None = None
    model_name: str | None = None
    context_window_max: PositiveCount | None = None


class PromptResult(DomainModel):
    messages: list[dict[str, Any]]
    long_term_memories: list[MemoryRecordResult] | None


def _message(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": {"type": "text", "text": text, "annotations": None, "_meta": None}}


def build_prompt(
    working_memory: WorkingMemoryService,
    long_term: LongTermService,
    tenant: str,
    *,
    query: str,
    session: PromptSession | None,
    long_term_search: SearchRequest | bool | None,
    optimize_query: bool = False,
) -> PromptResult:
    if session is None and not long_term_search:
        raise InvalidInputError("Either session or long_term_search must be provided")
    messages: list[dict[str, Any]] = []
    if session is not None:
        try:
            view = working_memory.get(
                tenant,
                session.session_id,
                namespace=session.namespace,
                user_id=session.user_id,
                model_name=session.model_name,
                context_window_max=session.context_window_max,
            )
        except NotFoundError:
            view = None
        if view is not None:
            if view.memory.context:
                messages.append(_message("system", SUMMARY_HEADER + view.memory.context))
            for m in view.memory.messages:
                messages.append(_message("user" if m.role == "user" else "assistant", m.content))

    results: list[MemoryRecordResult] = []
    if long_term_search:
        request = _search_request(query, session, long_term_search)
        results = long_term.search(tenant, request, optimize_query=optimize_query).memories
        if results:
            lines = "\n".join(f"- {r.text} (ID: {r.id})" for r in results)
            messages.append(_message("system", MEMORIES_HEADER + lines))
        else:
            messages.append(_message("system", NO_MEMORIES))
    messages.append(_message("user", query))
    return PromptResult(messages=messages, long_term_memories=results or None)


def _search_request(
    query: str, session: PromptSession | None, long_term_search: SearchRequest | bool
) -> SearchRequest:
    if long_term_search is True:
        # AMS lists the user's other sessions' memories here (no text). We search them by the query
        # instead: a listing in index order is rarely what a prompt wants.
        return SearchRequest(
            text=query,
            limit=20,
            session_id=TagFilter(ne=session.session_id) if session else None,
            user_id=TagFilter(eq=session.user_id) if session and session.user_id else None,
        )
    assert isinstance(long_term_search, SearchRequest)
    update: dict[str, Any] = {"text": query}
    if long_term_search.user_id is None and session is not None and session.user_id:
        update["user_id"] = TagFilter(eq=session.user_id)
    return long_term_search.model_copy(update=update)
