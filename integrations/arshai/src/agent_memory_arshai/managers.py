"""Arshai memory managers over the serverless-agent-memory HTTP API.

`AgentMemoryManager` is what Arshai 1.15's `WorkingMemoryAgent` needs: its `process` awaits
`memory_manager.retrieve({"conversation_id": ...})` and `memory_manager.store({"conversation_id",
"working_memory", "metadata"})` with plain dicts, so every method is a coroutine and takes those dicts or an
`IMemoryInput`. `SyncAgentMemoryManager` is the same manager for callers of Arshai's synchronous
`IMemoryManager` protocol.

Both degrade instead of raising into the agent: with the service unreachable, timing out or answering an
error, or without a `conversation_id` (outside long-term memory), a method logs one warning and returns its
empty result (`store`: "", `retrieve`: [], `update`/`delete`: None).

Example::

    from arshai.agents.hub.working_memory import WorkingMemoryAgent
    from agent_memory_arshai import AgentMemoryManager

    memory = AgentMemoryManager("http://127.0.0.1:8000", api_key=os.environ.get("AGENT_MEMORY_API_KEY"))
    agent = WorkingMemoryAgent(llm_client, memory_manager=memory)
    await agent.process(IAgentInput(message="I moved to Lisbon", metadata={"conversation_id": "c1"}))
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from agent_memory_arshai import _operations as ops
from agent_memory_arshai._operations import Call, Degraded, MemoryRequest, Operation, Reply, Scope

logger = logging.getLogger("agent_memory_arshai")

DEFAULT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class WorkingMemoryText:
    """What `retrieve` returns when Arshai is not installed: IWorkingMemory's one field."""

    working_memory: str

    def to_dict(self) -> dict[str, str]:
        return {"working_memory": self.working_memory}


@functools.cache
def _working_memory_class() -> Any:
    try:
        from arshai.core.interfaces.imemorymanager import IWorkingMemory
    except ImportError:
        return WorkingMemoryText
    return IWorkingMemory


def _as_working_memory(texts: list[str]) -> list[Any]:
    cls = _working_memory_class()
    return [cls(working_memory=text) for text in texts]


_EMPTY: dict[str, Any] = {"store": "", "retrieve": [], "update": None, "delete": None}
_OPERATIONS = {"store": ops.store, "retrieve": ops.retrieve, "update": ops.update, "delete": ops.delete}


class _Base:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        tenant_id: str | None = None,
        namespace: str | None = None,
        user_id: str | None = None,
        ttl_seconds: int | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        """`api_key` is sent as `Authorization: Bearer`; `tenant_id` as `x-tenant-id` (for a server with auth
        disabled; with a key the key decides the tenant). Sessions and records carry `namespace` and `user_id`
        (a `user_id` in a request's metadata wins); `ttl_seconds` is given to the sessions the manager writes."""
        self._base_url = base_url.rstrip("/")
        self._headers = {"accept": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        if tenant_id:
            self._headers["x-tenant-id"] = tenant_id
        self._timeout = httpx.Timeout(timeout_seconds)
        self._scope = Scope(namespace=namespace, user_id=user_id, ttl_seconds=ttl_seconds)

    def _plan(self, name: str, value: Any) -> Operation | None:
        """The operation for this input, or None (logged) when it cannot run."""
        try:
            request = MemoryRequest.of(value)
        except Exception as exc:  # an input of a shape we cannot read: degrade, never raise into the agent
            logger.warning("agent-memory %s skipped: unreadable input: %s", name, exc)
            return None
        if request.conversation_id is None and not request.long_term:
            logger.warning("agent-memory %s skipped: no conversation_id", name)
            return None
        return _OPERATIONS[name](self._scope, request)

    @staticmethod
    def _reply(response: httpx.Response) -> Reply:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Reply(response.status_code, body)

    @staticmethod
    def _result(name: str, value: Any) -> Any:
        return _as_working_memory(value) if name == "retrieve" else value

    @staticmethod
    def _degraded(name: str, exc: BaseException) -> Any:
        reason = str(exc) or type(exc).__name__
        logger.warning("agent-memory %s degraded to an empty result: %s", name, reason)
        return _EMPTY[name]


class AgentMemoryManager(_Base):
    """Awaitable `store/retrieve/update/delete`, as Arshai's `WorkingMemoryAgent` calls them.

    One `httpx.AsyncClient` per event loop it is used on (a client's connections belong to one loop), built on
    first use; `aclose()` releases it."""

    def __init__(self, base_url: str, **options: Any) -> None:
        super().__init__(base_url, **options)
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(base_url=self._base_url, headers=self._headers, timeout=self._timeout)
            self._loop = loop
        return self._client

    async def _run(self, name: str, value: Any) -> Any:
        operation = self._plan(name, value)
        if operation is None:
            return _EMPTY[name]
        try:
            call = next(operation)
            while True:
                call = operation.send(await self._send(call))
        except StopIteration as done:
            return self._result(name, done.value)
        except (Degraded, httpx.HTTPError) as exc:
            return self._degraded(name, exc)

    async def _send(self, call: Call) -> Reply:
        response = await self._async_client().request(call.method, call.path, params=call.params, json=call.json)
        return self._reply(response)

    async def store(self, input: Any) -> str:
        """Store the input's working memory (or long-term records); the conversation id (or the first record
        id), "" when degraded."""
        result: str = await self._run("store", input)
        return result

    async def retrieve(self, input: Any) -> list[Any]:
        """The conversation's working memory as `[IWorkingMemory]` (empty when there is none), or for
        `LONG_TERM_MEMORY` the records matching `query`, one `IWorkingMemory` each; [] when degraded."""
        result: list[Any] = await self._run("retrieve", input)
        return result

    async def update(self, input: Any) -> None:
        await self._run("update", input)

    async def delete(self, input: Any) -> None:
        await self._run("delete", input)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> AgentMemoryManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncAgentMemoryManager(_Base):
    """The same manager with blocking methods: Arshai's `IMemoryManager` protocol as published. One
    `httpx.Client`, built with the manager; `close()` releases it."""

    def __init__(self, base_url: str, **options: Any) -> None:
        super().__init__(base_url, **options)
        self._client = httpx.Client(base_url=self._base_url, headers=self._headers, timeout=self._timeout)

    def _run(self, name: str, value: Any) -> Any:
        operation = self._plan(name, value)
        if operation is None:
            return _EMPTY[name]
        try:
            call = next(operation)
            while True:
                response = self._client.request(call.method, call.path, params=call.params, json=call.json)
                call = operation.send(self._reply(response))
        except StopIteration as done:
            return self._result(name, done.value)
        except (Degraded, httpx.HTTPError) as exc:
            return self._degraded(name, exc)

    def store(self, input: Any) -> str:
        result: str = self._run("store", input)
        return result

    def retrieve(self, input: Any) -> list[Any]:
        result: list[Any] = self._run("retrieve", input)
        return result

    def update(self, input: Any) -> None:
        self._run("update", input)

    def delete(self, input: Any) -> None:
        self._run("delete", input)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SyncAgentMemoryManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
