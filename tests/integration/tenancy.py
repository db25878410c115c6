"""The two-tenant isolation matrix: seeds, cells, snapshots and the check every cell runs.

Two deployments answer the same requests:

- the *shared* one holds tenant A and tenant B, seeded with the SAME namespace, user, session and
  record ids (only the texts differ: every text of A says "alpha", every text of B "bravo");
- the *reference* one holds tenant B alone, seeded the same way.

Each cell is one request that tenant B sends to both. Isolation means A's presence makes no difference
to B, and B's call makes no difference to A, so after every cell:

1. B's answer (status and body) is the reference's answer, once the values that differ between any two
   runs (timestamps, server-assigned ULIDs) are blanked: no A record, text, total or score shows, and
   keyword statistics do not move with A's records;
2. B's answer, and every LLM prompt B's call caused, carry no trace of A (no "alpha", no id only A has);
3. A's full state, read through A's own reads, is exactly what it was before the cell;
4. B's full state is the reference's B state (a call of B never lands in A, nor A's data in B).

Background work is part of each cell: both deployments' embedded task queues are drained after the call
(extraction after a PUT, a summary-view run), so what the worker does for B is checked too.

How a request reaches the app (in-process ASGI, the Lambda handler) and how it says who is calling
(`x-tenant-id` with auth disabled, an API key) are pluggable: `World.send` and `Identity`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_memory.bootstrap import Container

TENANT_A = "tenant-a"
TENANT_B = "tenant-b"
MARKER = {TENANT_A: "alpha", TENANT_B: "bravo"}

# The same ids in both tenants.
NS = "shared-ns"
USER = "shared-user"
SESSION = "shared-session"
SHARED_RECORDS = ("shared-rec-1", "shared-rec-2", "shared-dup-1", "shared-dup-2")
SCOPE = {"namespace": NS, "user_id": USER}

# Seeded records are a year old (so a forget policy selects them), last accessed now (so a search does
# not touch them: a snapshot is a read that changes nothing).
CREATED = datetime(2025, 1, 1, tzinfo=UTC)

# The LLM stub's answer whenever a test scripts nothing: an extraction that finds nothing (so a drained
# queue adds no records whose ids differ between deployments) and, as a summary, a plain text.
QUIET_LLM = json.dumps({"memories": []})


def own(tenant: str, name: str) -> str:
    """An id only `tenant` has: `own(A, "session")` is "alpha-only-session"."""
    return f"{MARKER[tenant]}-only-{name}"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Sequence[tuple[str, str]] = ()
    json: Any = None
    headers: Sequence[tuple[str, str]] = ()  # sent with the tenant's own (MCP's Accept and version)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


@dataclass
class Seed:
    """What the server assigned while seeding one tenant (the rest of the ids are fixed above)."""

    view_id: str = ""
    task_id: str = ""


Send = Callable[[str, Request], Answer]  # (tenant, request) -> answer


@dataclass
class World:
    """One deployment: a container, how a tenant's request reaches its app, and its seeded tenants."""

    container: Container
    send: Send
    seeds: dict[str, Seed] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # what `send` adds, by tenant

    def call(self, tenant: str, method: str, path: str, *, params: Sequence[tuple[str, str]] | Mapping[str, Any] = (),
             body: Any = None) -> Answer:
        pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
        return self.send(tenant, Request(method, path, tuple((k, str(v)) for k, v in pairs), body))

    def ok(self, tenant: str, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.call(tenant, method, path, **kwargs)
        assert answer.status == 200, (method, path, answer)
        return answer.body

    def drain(self, max_tasks: int = 50) -> None:
        """Run the embedded queue's due tasks to the end (extraction, summary-view runs)."""
        worker = self.container.task_worker()
        if worker is None:
            return
        for _ in range(max_tasks):
            if not worker.run_once():
                return
        raise AssertionError(f"the task queue did not drain in {max_tasks} tasks")


# -- seeding ------------------------------------------------------------------------------------------


def _message(tenant: str, n: int, text: str) -> dict[str, Any]:
    return {"id": f"msg-{n}", "role": "user" if n % 2 else "assistant", "content": f"{MARKER[tenant]} {text}",
            "created_at": (CREATED + timedelta(minutes=n)).isoformat()}


def _record(tenant: str, record_id: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"id": record_id, "text": text, "memory_type": "semantic", "discrete_memory_extracted": "t",
            "namespace": NS, "user_id": USER, "session_id": SESSION,
            "created_at": (CREATED + timedelta(hours=len(record_id))).isoformat(),
            "last_accessed": datetime.now(UTC).isoformat(), **fields}


# A text only A has, without A's marker: B storing the same text must not be deduplicated against A's.
PLAIN_A_TEXT = "the user owns a red kayak"


def records_of(tenant: str) -> list[dict[str, Any]]:
    m = MARKER[tenant]
    return [
        _record(tenant, "shared-rec-1", f"{m} prefers green tea in the morning", topics=["tea"]),
        _record(tenant, "shared-rec-2", f"{m} saw an otter by the river", entities=["otter"]),
        # Two copies of one memory: compaction merges them
        _record(tenant, "shared-dup-1", f"{m} walks the dog every evening"),
        _record(tenant, "shared-dup-2", f"{m} walks the dog every evening"),
        _record(tenant, own(tenant, "rec"), f"{m} keeps bees on the roof", namespace="other-ns",
                user_id=own(tenant, "user")),
    ] + ([_record(tenant, own(tenant, "plain"), PLAIN_A_TEXT)] if tenant == TENANT_A else [])


def seed(world: World, tenant: str, *, stub: Any, views: bool = True) -> None:
    """Seed `tenant` in `world` through its own API calls, then drain the queue. `views=False` leaves out
    the summary view, its partitions and its run task (the long-term-only matrix on OpenSearch)."""
    m = MARKER[tenant]
    world.ok(tenant, "POST", "/v1/long-term-memory/", body={"memories": records_of(tenant), "deduplicate": False})
    sessions = [(SESSION, ("likes hiking", "is planning a trip to Lisbon")), (own(tenant, "session"), ("has a cat",))]
    if tenant == TENANT_A:  # one session more than B: a total or a page that counted A would differ
        sessions.append((own(tenant, "session-2"), ("plays the cello",)))
    for session, texts in sessions:
        body = {**SCOPE, "messages": [_message(tenant, n, t) for n, t in enumerate(texts, 1)],
                "data": {"note": f"{m} data"}, "context": f"{m} context"}
        if session == SESSION:  # a session memory, promoted to long-term memory by the PUT
            body["memories"] = [{"id": "shared-wm-rec", "text": f"{m} is allergic to peanuts",
                                 "memory_type": "semantic"}]
        world.ok(tenant, "PUT", f"/v1/working-memory/{session}", body=body)
    if not views:
        world.drain()
        world.seeds[tenant] = Seed()
        return
    view = world.ok(tenant, "POST", "/v1/summary-views",
                    body={"name": "per user", "group_by": ["user_id"], "filters": {"namespace": NS}})
    # While seeding, every LLM answer carries the tenant's marker: the summaries (a partition run and the
    # full run's) are then the tenant's own text, and the extraction of the PUTs still finds nothing.
    quiet, stub.default_chat_content = stub.default_chat_content, json.dumps({"memories": [], "note": f"{m} summary"})
    try:
        world.ok(tenant, "POST", f"/v1/summary-views/{view['id']}/partitions/run", body={"group": {"user_id": USER}})
        task = world.ok(tenant, "POST", f"/v1/summary-views/{view['id']}/run", body={})
        world.drain()
    finally:
        stub.default_chat_content = quiet
    world.seeds[tenant] = Seed(view_id=view["id"], task_id=task["id"])


# -- snapshots ----------------------------------------------------------------------------------------


def snapshot(world: World, tenant: str) -> dict[str, Any]:
    """Everything `tenant` can read, through its own API calls; reading changes nothing."""
    state: dict[str, Any] = {}
    listed = world.ok(tenant, "GET", "/v1/working-memory/", params={"limit": 100})
    state["sessions"] = listed
    for session in sorted({*listed["sessions"], SESSION, own(tenant, "session")}):
        answer = world.call(tenant, "GET", f"/v1/working-memory/{session}", params=SCOPE)
        state[f"session {session}"] = (answer.status, answer.body)
    state["long-term"] = world.ok(tenant, "POST", "/v1/long-term-memory/search", body={"limit": 100})
    views = world.ok(tenant, "GET", "/v1/summary-views")
    state["views"] = views
    for view in views:
        state[f"partitions {view['id']}"] = world.ok(tenant, "GET", f"/v1/summary-views/{view['id']}/partitions")
    for user in (USER, own(tenant, "user")):
        exported = world.ok(tenant, "GET", f"/v1/users/{user}/export")
        exported.pop("exported_at")  # when the export ran, not what it holds
        state[f"export {user}"] = exported
    seeded = world.seeds.get(tenant)
    if seeded is not None and seeded.task_id:
        answer = world.call(tenant, "GET", f"/v1/tasks/{seeded.task_id}")
        state["task"] = (answer.status, answer.body)
    return state


# -- comparing ----------------------------------------------------------------------------------------

# Values that differ between two runs of the same requests: when something happened, and ULIDs.
VOLATILE_KEYS = frozenset({"created_at", "updated_at", "last_accessed", "persisted_at", "computed_at",
                           "started_at", "completed_at", "now", "enqueued_at", "exported_at", "deleted_at",
                           "milliseconds"})
ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")


def normalized(value: Any) -> Any:
    """`value` with timestamps and ULIDs blanked and floats rounded (the same engine, the same data)."""
    if isinstance(value, Answer):
        return (value.status, normalized(value.body))
    if isinstance(value, Mapping):
        return {ULID.sub("<ulid>", k): "<time>" if k in VOLATILE_KEYS and v is not None else normalized(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    if isinstance(value, str):
        if value[:1] in ("{", "["):  # JSON inside a string (an MCP tool's result): compare what it says
            try:
                return normalized(json.loads(value))
            except ValueError:
                pass
        return ULID.sub("<ulid>", value)
    if isinstance(value, float):
        return round(value, 9)
    return value


def differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Where two JSON values differ (for failure messages): ["state.long-term.total: 7 != 6", ...]."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        found = [f"{path}.{k}: only on one side" for k in sorted(set(left) ^ set(right), key=str)]
        for k in sorted(set(left) & set(right), key=str):
            found += differences(left[k], right[k], f"{path}.{k}")
        return found
    if isinstance(left, list | tuple) and isinstance(right, list | tuple) and len(left) == len(right):
        return [d for i, (x, y) in enumerate(zip(left, right, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if left == right else [f"{path}: {json.dumps(left, default=str)[:300]} != "
                                     f"{json.dumps(right, default=str)[:300]}"]


def traces_of(tenant: str, world: World) -> list[str]:
    """Strings that only `tenant`'s data contains in `world`: its marker, its own ids, its server ids."""
    seeded = world.seeds[tenant]
    return [MARKER[tenant], seeded.view_id, seeded.task_id]


def sent_strings(request: Request) -> list[str]:
    """Every string B itself sent (path segments, query values, body strings): not A's data if it comes back."""
    found = [segment for segment in request.path.split("/") if segment]
    found += [value for _, value in request.params]

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(request.json)
    return sorted(found, key=len, reverse=True)


def assert_no_trace(traces: Sequence[str], value: Any, what: str, *, sent: Sequence[str] = ()) -> None:
    traces = [t.lower() for t in traces if t]
    text = json.dumps(value, default=str).lower()
    for echoed in sent:  # what B sent may come back (an A-only id it asked for); nothing else of A may
        echoed = echoed.lower()
        if any(t in echoed for t in traces):  # only these: blanking "v1" could cut a ULID in two
            text = text.replace(echoed, "")
    found = [t for t in traces if t in text]
    assert not found, f"{what} shows tenant A's data ({found}): {text[:2000]}"


# -- the matrix ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One request of tenant B against one route. `build(b, a)` gets B's and A's server-assigned ids."""

    method: str
    route: str
    case: str
    build: Callable[[Seed, Seed], Request]
    tenant_data: bool = True  # False: the answer holds no tenant's data (health, static files, tools/list)

    @property
    def id(self) -> str:
        return f"{self.method} {self.route} [{self.case}]"


def _cell(method: str, route: str, case: str, path: str | Callable[[Seed, Seed], str] | None = None, *,
          params: Sequence[tuple[str, str]] | Mapping[str, Any] = (), body: Any = None,
          headers: Sequence[tuple[str, str]] = (), tenant_data: bool = True) -> Cell:
    pairs = tuple((k, str(v)) for k, v in (params.items() if isinstance(params, Mapping) else params))

    def build(b: Seed, a: Seed) -> Request:
        resolved = path(b, a) if callable(path) else (path or route)
        return Request(method, resolved, pairs, body(b, a) if callable(body) else body, tuple(headers))

    return Cell(method, route, case, build, tenant_data)


A_SESSION = own(TENANT_A, "session")
A_RECORD = own(TENANT_A, "rec")
A_USER = own(TENANT_A, "user")
USERS = "/v1/users/{user_id}"
WM = "/v1/working-memory/{session_id}"
LTM = "/v1/long-term-memory/{memory_id}"
VIEW = "/v1/summary-views/{view_id}"


def _b_message(text: str) -> dict[str, Any]:
    return {"id": "msg-b", "role": "user", "content": f"bravo {text}", "created_at": "2025-06-01T00:00:00Z"}


SEARCH_TEXT = "alpha hiking tea otter river dog"  # A's words: a search that ignored the tenant finds A's records


def _searches() -> list[Cell]:
    cells = []
    for mode in ("semantic", "keyword", "hybrid"):
        for scope_name, scope in (("no filter", {}), ("shared scope", {
                "namespace": {"eq": NS}, "user_id": {"eq": USER}, "session_id": {"eq": SESSION}})):
            cells.append(_cell("POST", "/v1/long-term-memory/search", f"{mode}, {scope_name}",
                               body={"text": SEARCH_TEXT, "search_mode": mode, "limit": 20, **scope}))
    cells += [
        _cell("POST", "/v1/long-term-memory/search", "list, no filter", body={"limit": 100}),
        _cell("POST", "/v1/long-term-memory/search", "hybrid, second page (totals)",
              body={"text": SEARCH_TEXT, "search_mode": "hybrid", "limit": 2, "offset": 2}),
        _cell("POST", "/v1/long-term-memory/search", "semantic, distance threshold",
              body={"text": SEARCH_TEXT, "distance_threshold": 1.0, "limit": 50}),
        _cell("POST", "/v1/long-term-memory/search", "keyword, recency boost",
              body={"text": SEARCH_TEXT, "search_mode": "keyword", "recency_boost": True}),
        _cell("POST", "/v1/long-term-memory/search", "hybrid, optimize_query (LLM rewrite)",
              params={"optimize_query": "true"}, body={"text": SEARCH_TEXT, "search_mode": "hybrid"}),
        _cell("POST", "/v1/long-term-memory/search", "keyword, by A-only namespace",
              body={"text": SEARCH_TEXT, "search_mode": "keyword", "namespace": {"eq": "other-ns"}}),
    ]
    return cells


def _view_cells() -> list[Cell]:
    def b_view(suffix: str = "") -> Callable[[Seed, Seed], str]:
        return lambda b, a: f"/v1/summary-views/{b.view_id}{suffix}"

    def a_view(suffix: str = "") -> Callable[[Seed, Seed], str]:
        return lambda b, a: f"/v1/summary-views/{a.view_id}{suffix}"

    group = {"group": {"user_id": USER}}
    return [
        _cell("POST", "/v1/summary-views", "create, same name as A's",
              body={"name": "per user", "group_by": ["user_id"], "filters": {"namespace": NS}}),
        _cell("GET", "/v1/summary-views", "list"),
        _cell("GET", VIEW, "own view", b_view()),
        _cell("GET", VIEW, "A's view id", a_view()),
        _cell("DELETE", VIEW, "own view", b_view()),
        _cell("DELETE", VIEW, "A's view id", a_view()),
        _cell("POST", VIEW + "/partitions/run", "own view, shared user", b_view("/partitions/run"), body=group),
        _cell("POST", VIEW + "/partitions/run", "A's view id", a_view("/partitions/run"), body=group),
        _cell("GET", VIEW + "/partitions", "own view", b_view("/partitions")),
        _cell("GET", VIEW + "/partitions", "own view, shared user", b_view("/partitions"), params={"user_id": USER}),
        _cell("GET", VIEW + "/partitions", "A's view id", a_view("/partitions")),
        _cell("POST", VIEW + "/run", "own view (run drained)", b_view("/run"), body={}),
        _cell("POST", VIEW + "/run", "A's view id", a_view("/run"), body={}),
        _cell("POST", VIEW + "/run", "own view, under A's task id", b_view("/run"),
              body=lambda b, a: {"task_id": a.task_id}),
        _cell("GET", "/v1/tasks/{task_id}", "own task", lambda b, a: f"/v1/tasks/{b.task_id}"),
        _cell("GET", "/v1/tasks/{task_id}", "A's task id", lambda b, a: f"/v1/tasks/{a.task_id}"),
        _cell("GET", "/v1/tasks", "list"),
        _cell("GET", "/v1/tasks", "list, successful only", params={"status": "success"}),
        _cell("GET", "/v1/tasks", "list, the newest one (totals)", params={"limit": 1}),
    ]


def matrix() -> list[Cell]:
    """Every cell; `ROUTES_OF(matrix())` must be every route the app serves (see the coverage test)."""
    put_body = {**SCOPE, "messages": [_b_message("now prefers coffee")], "data": {"note": "bravo new"}}
    return [
        _cell("GET", "/", "root", tenant_data=False),
        # the Visualizer's static files (open: they hold no data; the page reads through the cells above)
        _cell("GET", "/ui", "page", tenant_data=False),
        _cell("GET", "/ui/{asset}", "script", "/ui/app.js", tenant_data=False),
        _cell("GET", "/ui/{asset}", "unknown file", "/ui/nope.js", tenant_data=False),
        _cell("GET", "/v1/health", "plain", tenant_data=False),
        _cell("GET", "/v1/health", "deep", params={"deep": "true"}, tenant_data=False),
        # working memory
        _cell("GET", "/v1/working-memory/", "no filter"),
        _cell("GET", "/v1/working-memory/", "shared namespace and user", params=SCOPE),
        _cell("GET", "/v1/working-memory/", "second page (totals)", params={"limit": 1, "offset": 1}),
        _cell("GET", "/v1/working-memory", "alias without slash"),
        _cell("GET", WM, "shared session", f"/v1/working-memory/{SESSION}", params=SCOPE),
        _cell("GET", WM, "shared session, recent messages and a window", f"/v1/working-memory/{SESSION}",
              params={**SCOPE, "recent_messages_limit": 1, "context_window_max": 50}),
        _cell("GET", WM, "A-only session id", f"/v1/working-memory/{A_SESSION}", params=SCOPE),
        _cell("PUT", WM, "replace shared session", f"/v1/working-memory/{SESSION}", body=put_body),
        _cell("PUT", WM, "write under A-only session id", f"/v1/working-memory/{A_SESSION}", body=put_body),
        _cell("PUT", WM, "promote a memory with a shared id", f"/v1/working-memory/{SESSION}",
              body={**put_body, "memories": [{"id": "shared-rec-1", "text": "bravo replaces", "memory_type":
                                              "semantic"}]}),
        _cell("DELETE", WM, "shared session", f"/v1/working-memory/{SESSION}", params=SCOPE),
        _cell("DELETE", WM, "A-only session id", f"/v1/working-memory/{A_SESSION}", params=SCOPE),
        # long-term memory
        _cell("POST", "/v1/long-term-memory/", "create under shared ids, no dedup",
              body={"deduplicate": False, "memories": [
                  {"id": "shared-rec-1", "text": "bravo overwrites tea", **SCOPE},
                  {"id": A_RECORD, "text": "bravo takes A's record id", **SCOPE}]}),
        _cell("POST", "/v1/long-term-memory/", "create with dedup, a text only A has",
              body={"memories": [{"id": "b-new", "text": PLAIN_A_TEXT, **SCOPE}]}),
        _cell("POST", "/v1/long-term-memory", "alias without slash",
              body={"memories": [{"id": "b-new", "text": "bravo learns piano", **SCOPE}]}),
        *_searches(),
        _cell("DELETE", "/v1/long-term-memory", "shared and A-only ids",
              params=[("memory_ids", "shared-rec-1"), ("memory_ids", A_RECORD)]),
        _cell("DELETE", "/v1/long-term-memory/", "alias with slash", params=[("memory_ids", "shared-dup-1")]),
        _cell("POST", "/v1/long-term-memory/compact", "whole tenant"),
        _cell("POST", "/v1/long-term-memory/compact", "shared scope", params=SCOPE),
        _cell("POST", "/v1/long-term-memory/forget", "dry run, everything old",
              body={"policy": {"max_age_days": 30}}),
        _cell("POST", "/v1/long-term-memory/forget", "delete by budget, shared scope",
              params={**SCOPE, "dry_run": "false"}, body={"policy": {"budget": 1}}),
        _cell("GET", LTM, "shared id", "/v1/long-term-memory/shared-rec-1"),
        _cell("GET", LTM, "A-only id", f"/v1/long-term-memory/{A_RECORD}"),
        _cell("PATCH", LTM, "shared id", "/v1/long-term-memory/shared-rec-2", body={"text": "bravo edited"}),
        _cell("PATCH", LTM, "A-only id", f"/v1/long-term-memory/{A_RECORD}", body={"text": "bravo edited"}),
        _cell("POST", "/v1/memory/prompt", "shared session and long-term search",
              body={"query": SEARCH_TEXT, "session": {"session_id": SESSION, **SCOPE},
                    "long_term_search": {"text": SEARCH_TEXT, "search_mode": "hybrid"}}),
        _cell("POST", "/v1/memory/prompt", "A-only session id",
              body={"query": SEARCH_TEXT, "session": {"session_id": A_SESSION, **SCOPE}}),
        _cell("POST", "/v1/memory/prompt", "long-term search only, keyword",
              body={"query": SEARCH_TEXT, "long_term_search": {"text": SEARCH_TEXT, "search_mode": "keyword"}}),
        *_view_cells(),
        # user data rights (issue 10)
        _cell("GET", USERS + "/export", "shared user", f"/v1/users/{USER}/export"),
        _cell("GET", USERS + "/export", "shared user, shared namespace", f"/v1/users/{USER}/export",
              params={"namespace": NS}),
        _cell("GET", USERS + "/export", "A-only user id", f"/v1/users/{A_USER}/export"),
        _cell("DELETE", USERS, "shared user", f"/v1/users/{USER}"),
        _cell("DELETE", USERS, "shared user, shared namespace", f"/v1/users/{USER}", params={"namespace": NS}),
        _cell("DELETE", USERS, "A-only user id", f"/v1/users/{A_USER}"),
        *_session_api_cells(),
        *_mcp_cells(),
    ]


MCP_HEADERS = (("accept", "application/json, text/event-stream"), ("mcp-protocol-version", "2025-11-25"))


def _mcp_cells() -> list[Cell]:
    """MCP over streamable HTTP (issue 13): the same services, reached through JSON-RPC tool calls."""

    def call(case: str, tool: str, arguments: dict[str, Any]) -> Cell:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        return _cell("POST", "/mcp", case, body=body, headers=MCP_HEADERS)

    return [
        _cell("POST", "/mcp", "tools/list", body={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
              headers=MCP_HEADERS, tenant_data=False),
        call("search, hybrid", "search_long_term_memory", {"text": SEARCH_TEXT, "search_mode": "hybrid"}),
        call("search, keyword", "search_long_term_memory", {"text": SEARCH_TEXT, "search_mode": "keyword"}),
        call("get the shared session", "get_working_memory", {"session_id": SESSION, **SCOPE}),
        call("get A-only session id", "get_working_memory", {"session_id": A_SESSION, **SCOPE}),
        call("get A-only record id", "get_long_term_memory", {"memory_id": A_RECORD}),
        call("delete shared and A-only ids", "delete_long_term_memories",
             {"memory_ids": ["shared-rec-1", A_RECORD]}),
        call("prompt with the shared session", "memory_prompt",
             {"query": SEARCH_TEXT, "session_id": {"eq": SESSION}, "namespace": {"eq": NS},
              "user_id": {"eq": USER}}),
    ]


SESSIONS = "/api/v1/working-memory/sessions"
SESSION_API = SESSIONS + "/{session_id}"


def _session_api_cells() -> list[Cell]:
    """The Memory Platform session API (issue 12): the same working-memory store, another view of it."""
    item = {"role": "user", "content": "bravo now prefers coffee", "timestamp": "2025-06-01T00:00:00Z"}
    return [
        _cell("POST", SESSIONS, "create under A-only session id", body={"session_id": A_SESSION, "subject": USER}),
        _cell("POST", SESSIONS, "create under B's own session id (409)",
              body={"session_id": own(TENANT_B, "session")}),
        _cell("POST", SESSIONS, "tenant_id of A in the body (403)",
              body={"session_id": "b-new", "tenant_id": TENANT_A}),
        _cell("GET", SESSION_API, "shared session", f"{SESSIONS}/{SESSION}"),
        _cell("GET", SESSION_API, "A-only session id", f"{SESSIONS}/{A_SESSION}"),
        _cell("POST", SESSION_API + "/messages", "append to shared session", f"{SESSIONS}/{SESSION}/messages",
              body=item),
        _cell("POST", SESSION_API + "/messages", "append under A-only session id", f"{SESSIONS}/{A_SESSION}/messages",
              body=item),
        _cell("POST", SESSION_API + "/prime", "shared and A-only record ids", f"{SESSIONS}/{SESSION}/prime",
              body=["shared-rec-1", A_RECORD]),
        _cell("POST", SESSION_API + "/prime", "A-only session id", f"{SESSIONS}/{A_SESSION}/prime",
              body={"memory_ids": ["shared-rec-1"]}),
    ]


def routes_of(cells: Sequence[Cell]) -> set[tuple[str, str]]:
    return {(c.method, c.route) for c in cells}


def served_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app routes, documented or not (the trailing-slash aliases too)."""
    from fastapi.routing import APIRoute

    def leaves(routes: Sequence[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI >= 0.165 keeps included routers whole
            if inner is not None:
                yield from leaves(inner.routes, prefix + getattr(route, "prefix", ""))
            elif isinstance(route, APIRoute):
                yield prefix, route

    return {(method, prefix + route.path) for prefix, route in leaves(app.routes, "")
            for method in route.methods if method not in ("HEAD", "OPTIONS")}


# -- the check ----------------------------------------------------------------------------------------


def check_cell(cell: Cell, shared: World, reference: World, *, stub: Any, send_cell: Send | None = None) -> None:
    """Run `cell` as tenant B in both deployments and assert the four properties of the module doc.

    `send_cell` sends B's call in the shared deployment (default `shared.send`); a test that breaks
    isolation on purpose passes its own, to show the check fails."""
    a_before = snapshot(shared, TENANT_A)
    a_traces = traces_of(TENANT_A, shared)
    a_seed = shared.seeds[TENANT_A]

    calls_before = len(stub.requests)
    request = cell.build(shared.seeds[TENANT_B], a_seed)
    got = (send_cell or shared.send)(TENANT_B, request)
    shared.drain()
    prompts = stub.requests[calls_before:]
    expected = reference.send(TENANT_B, cell.build(reference.seeds[TENANT_B], a_seed))
    reference.drain()

    sent = sent_strings(request)
    assert got.status < 500, got
    assert_no_trace(a_traces, got.body, "B's answer", sent=sent)
    assert_no_trace(a_traces, prompts, "an LLM prompt of B's call", sent=sent)
    answer, reference_answer = normalized(got), normalized(expected)
    changed = differences(answer, reference_answer)[:10]
    assert answer == reference_answer, f"B's answer is not B's answer where A does not exist: {changed}"
    a_after = snapshot(shared, TENANT_A)
    assert a_after == a_before, f"B's call changed tenant A's state: {differences(a_after, a_before)[:10]}"
    b_after = snapshot(shared, TENANT_B)
    assert_no_trace(a_traces, b_after, "B's state", sent=sent)
    b_state, reference_state = normalized(b_after), normalized(snapshot(reference, TENANT_B))
    assert b_state == reference_state, f"B's state is not the reference's: {differences(b_state, reference_state)[:10]}"
