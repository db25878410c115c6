"""Where blocking service calls run: a worker thread under a server, inline under Lambda.

Services and adapters are synchronous (see `ports`). Under uvicorn many requests share one event loop,
so each blocking call goes to a worker thread. Under Lambda an execution environment serves one request
at a time and Mangum starts every invocation as a new root task, so anyio cannot reuse its workers: a
thread hop there costs a thread start and buys no concurrency, and the call runs inline instead.

The server's threads are a plain `ThreadPoolExecutor` behind `loop.run_in_executor`, not
`anyio.to_thread.run_sync`: the hop is on the working-memory hot path, and anyio's capacity limiter and
cancel scope cost about a third more CPU per call (measured: ~97 us against ~133 us per hop on this
machine). The pool has anyio's default size (40), so slow calls (an LLM summary inside a PUT) cannot
starve fast ones, and it starts threads only when they are needed.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKER_THREADS = 40


class BlockingRunner:
    def __init__(self, *, inline: bool) -> None:
        self.inline = inline
        self._executor: ThreadPoolExecutor | None = None

    async def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.inline:
            return fn(*args, **kwargs)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="agent-memory")
        # The call sees the request's context variables, as it would inline.
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Let running calls finish and stop the threads (a server's shutdown)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=False)
            self._executor = None
