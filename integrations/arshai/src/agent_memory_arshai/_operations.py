"""What each memory operation sends to the service, written once for both managers.

Each operation is a generator: it yields the HTTP calls it needs (`Call`) and receives their answers
(`Reply`); the async and the sync manager only differ in how they send a call. An answer the operation cannot
use raises `Degraded`, which the managers turn into a logged warning and an empty result.

Mapping onto the service (AMS REST API v1):

- working memory (`WORKING_MEMORY`, `SHORT_TERM_MEMORY`, and the agent's plain dicts): one working-memory
  session per conversation, its `context` holding Arshai's working-memory text (the running summary the
  session's `context` is for). A store reads the session and writes it back with the new context, keeping
  its messages and memories.
- `LONG_TERM_MEMORY`: long-term records, stored with the conversation as `session_id`; retrieve searches
  by `query` (hybrid search) within the manager's namespace and user, not only this conversation.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

LONG_TERM = "LONG_TERM_MEMORY"
WORKING_TYPES = frozenset({"WORKING_MEMORY", "SHORT_TERM_MEMORY"})
# Filter keys the service's search takes as `{"<key>": {"eq": value}}`.
FILTER_KEYS = ("namespace", "user_id", "session_id", "memory_type", "topics", "entities")


class Degraded(Exception):
    """The service answered something this operation cannot use (the reason is logged, never raised)."""


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


Operation = Generator[Call, Reply, Any]


@dataclass(frozen=True)
class MemoryRequest:
    """An `IMemoryInput`, or the plain dict `WorkingMemoryAgent.process` passes, read the same way."""

    conversation_id: str | None
    memory_type: str
    texts: list[str]
    query: str | None = None
    memory_id: str | None = None
    limit: int = 5
    filters: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, value: Any) -> MemoryRequest:
        """Read `value`: a mapping, or an object with IMemoryInput's attributes.

        Example: `MemoryRequest.of({"conversation_id": "c1", "working_memory": "User likes tea"})`."""
        get = value.get if isinstance(value, Mapping) else (lambda name, default=None: getattr(value, name, default))
        texts: list[str] = []
        for item in get("data") or []:
            text = item.get("working_memory") if isinstance(item, Mapping) else getattr(item, "working_memory", item)
            if isinstance(text, str):
                texts.append(text)
        working_memory = get("working_memory")
        if isinstance(working_memory, str):
            texts.append(working_memory)
        memory_type = get("memory_type") or "WORKING_MEMORY"
        limit = get("limit")
        conversation_id = get("conversation_id")
        return cls(
            conversation_id=str(conversation_id) if conversation_id else None,
            memory_type=str(getattr(memory_type, "value", memory_type)),
            texts=texts,
            query=get("query"),
            memory_id=get("memory_id"),
            limit=limit if isinstance(limit, int) and limit > 0 else 5,
            filters=dict(get("filters") or {}),
            metadata=_json_safe(get("metadata") or {}),
        )

    @property
    def long_term(self) -> bool:
        return self.memory_type == LONG_TERM


@dataclass(frozen=True)
class Scope:
    """Where the manager keeps its memories in the service: a namespace and a user, both optional."""

    namespace: str | None = None
    user_id: str | None = None
    ttl_seconds: int | None = None

    def user(self, request: MemoryRequest) -> str | None:
        found = request.metadata.get("user_id")
        return str(found) if found else self.user_id

    def params(self, request: MemoryRequest) -> dict[str, str]:
        params = {"namespace": self.namespace, "user_id": self.user(request)}
        return {k: v for k, v in params.items() if v}


def _json_safe(value: Any) -> dict[str, Any]:
    safe = json.loads(json.dumps(value, default=str))
    return safe if isinstance(safe, dict) else {}


def _session_path(conversation_id: str) -> str:
    return "/v1/working-memory/" + quote(conversation_id, safe="")


def _expect(reply: Reply, *statuses: int) -> Any:
    if reply.status not in statuses:
        detail = reply.body.get("detail") if isinstance(reply.body, dict) else reply.body
        raise Degraded(f"HTTP {reply.status}: {str(detail)[:300]}")
    return reply.body


# -- the operations ---------------------------------------------------------------------------------------


def store(scope: Scope, request: MemoryRequest) -> Operation:
    """Working memory: the session's context becomes the newest text; returns the conversation id.
    Long-term: one record per text; returns the first stored id."""
    if not request.texts:
        raise Degraded("nothing to store: no working_memory or data")
    if request.long_term:
        body = {"memories": [_record(scope, request, text) for text in request.texts]}
        answer = _expect((yield Call("POST", "/v1/long-term-memory/", json=body)), 200)
        stored = answer.get("stored_ids") or answer.get("duplicate_ids") or []
        return stored[0] if stored else ""
    assert request.conversation_id is not None
    path = _session_path(request.conversation_id)
    reply = yield Call("GET", path, params=scope.params(request))
    existing = {} if reply.status == 404 else _expect(reply, 200)
    _expect((yield Call("PUT", path, json=_session_body(scope, request, existing))), 200)
    return request.conversation_id


def retrieve(scope: Scope, request: MemoryRequest) -> Operation:
    """A list of texts: the session's working memory (none or one), or the long-term records found."""
    if request.long_term:
        body: dict[str, Any] = {"limit": min(request.limit, 100)}
        if request.query:
            body.update(text=request.query, search_mode="hybrid")
        filters = {k: request.filters[k] for k in FILTER_KEYS if request.filters.get(k) is not None}
        filters.setdefault("namespace", scope.namespace)
        filters.setdefault("user_id", scope.user(request))
        body.update({k: {"eq": v} for k, v in filters.items() if v is not None})
        answer = _expect((yield Call("POST", "/v1/long-term-memory/search", json=body)), 200)
        return [m["text"] for m in answer.get("memories", [])]
    assert request.conversation_id is not None
    reply = yield Call("GET", _session_path(request.conversation_id), params=scope.params(request))
    if reply.status == 404:
        return []
    context = _expect(reply, 200).get("context")
    return [context] if context else []


def update(scope: Scope, request: MemoryRequest) -> Operation:
    """Working memory: replace the context of an existing session (a missing one is left missing).
    Long-term: replace the text of the record `memory_id`."""
    if not request.texts:
        raise Degraded("nothing to update: no working_memory or data")
    if request.long_term:
        if not request.memory_id:
            raise Degraded("a long-term update needs memory_id")
        path = "/v1/long-term-memory/" + quote(request.memory_id, safe="")
        _expect((yield Call("PATCH", path, json={"text": request.texts[-1]})), 200)
        return None
    assert request.conversation_id is not None
    path = _session_path(request.conversation_id)
    reply = yield Call("GET", path, params=scope.params(request))
    if reply.status == 404:
        raise Degraded(f"no working memory for conversation {request.conversation_id} to update")
    existing = _expect(reply, 200)
    _expect((yield Call("PUT", path, json=_session_body(scope, request, existing))), 200)
    return None


def delete(scope: Scope, request: MemoryRequest) -> Operation:
    """Working memory: delete the conversation's session. Long-term: delete the record `memory_id`."""
    if request.long_term:
        if not request.memory_id:
            raise Degraded("a long-term delete needs memory_id")
        _expect((yield Call("DELETE", "/v1/long-term-memory", params={"memory_ids": request.memory_id})), 200)
        return None
    assert request.conversation_id is not None
    call = Call("DELETE", _session_path(request.conversation_id), params=scope.params(request))
    _expect((yield call), 200)
    return None


def _record(scope: Scope, request: MemoryRequest, text: str) -> dict[str, Any]:
    record: dict[str, Any] = {"text": text, "memory_type": "semantic", "metadata": request.metadata}
    if request.conversation_id:
        record["session_id"] = request.conversation_id
    for key, value in (("namespace", scope.namespace), ("user_id", scope.user(request))):
        if value:
            record[key] = value
    return record


def _session_body(scope: Scope, request: MemoryRequest, existing: dict[str, Any]) -> dict[str, Any]:
    """The PUT body: the stored session (messages, memories, data, strategy kept) with the new context."""
    data = dict(existing.get("data") or {})
    if request.metadata:
        data["arshai_metadata"] = request.metadata
    body = {
        "messages": existing.get("messages") or [],
        "memories": existing.get("memories") or [],
        "data": data,
        "context": request.texts[-1],
        "long_term_memory_strategy": existing.get("long_term_memory_strategy") or {"strategy": "discrete"},
        "ttl_seconds": scope.ttl_seconds or existing.get("ttl_seconds"),
    }
    # The key of the session read (an existing one may have been found by its id alone).
    for key, value in (("namespace", existing.get("namespace") or scope.namespace),
                       ("user_id", existing.get("user_id") or scope.user(request))):
        if value:
            body[key] = value
    return body
