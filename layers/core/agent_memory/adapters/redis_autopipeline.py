"""Automatic pipelining of one read-only Lua script on a `redis.asyncio` client.

Under concurrency most of a Redis call's cost is the client's, not the server's: redis-py's asyncio
client spends ~70 us of CPU per command (taking a connection from the pool, a timeout context, a
write, a read), against ~10 us per command inside a pipeline. `ScriptPipeline` sends a call at once
when nothing is in flight, and gathers the calls that arrive while one is in flight into one pipeline
sent as soon as it returns, the technique of ioredis' `enableAutoPipelining` and Lettuce. One caller
alone pays one round trip as before; 32 concurrent callers share a few.

A call's answer is its own script's, in its own order: a pipeline is a sequence of independent
EVALSHAs (no MULTI; each script is atomic on the server by itself). An error in one call (a key of the
wrong type) is that call's; a connection error or timeout fails the calls of that round trip, each of
which sees it as its own (the reader turns it into a 503). A script the server does not know
(NOSCRIPT: a restart, a failover, SCRIPT FLUSH) is loaded and those calls are sent again once.

It only reads: a retried or repeated call cannot change anything. The sending task exists only while
calls are waiting; it is not left running behind an idle server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

# At most this many calls per pipeline; more wait for the next round trip.
MAX_BATCH = 128


class ScriptPipeline:
    """`await pipeline.call(keys)` runs `script` with `keys` (no arguments), pipelined with concurrent calls."""

    def __init__(self, client: Any, script: str) -> None:
        self._client = client
        self._script = client.register_script(script)
        self._waiting: list[tuple[Sequence[str], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def call(self, keys: Sequence[str]) -> Any:
        if self._sender is None:  # nothing in flight: this call goes alone, with no task or future
            self._sender = asyncio.current_task()
            try:
                return await self._script(keys=keys)
            finally:
                self._sender = None
                self._start_sender()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, future))
        return await future

    def _start_sender(self) -> None:
        if self._waiting and self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_waiting())

    async def _send_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                batch = [(keys, future) for keys, future in batch if not future.done()]  # drop cancelled calls
                if not batch:
                    continue
                try:
                    answers = await self._send([keys for keys, _ in batch])
                except Exception as exc:  # the round trip failed: every call in it fails alike
                    answers = [exc] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():
                        continue
                    if isinstance(answer, Exception):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._sender = None
            if self._waiting:  # cancelled (the loop is shutting down): fail the rest rather than leave them waiting
                waiting, self._waiting = self._waiting, []
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(ConnectionError("the Redis reader was closed"))

    async def _send(self, batch: list[Sequence[str]]) -> list[Any]:
        answers = await self._pipeline(batch)
        unknown = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if unknown:
            await self._client.script_load(self._script.script)
            again = await self._pipeline([batch[i] for i in unknown])
            for i, answer in zip(unknown, again, strict=True):
                answers[i] = answer
        return answers

    async def _pipeline(self, batch: list[Sequence[str]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for keys in batch:
            pipe.evalsha(self._script.sha, len(keys), *keys)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
        return answers


__all__ = ["MAX_BATCH", "ScriptPipeline"]
