"""Where blocking service calls run: a worker thread under a server, inline under Lambda.

Services and adapters are synchronous (see `ports`). Under uvicorn many requests share one event loop,
so each blocking call goes to a worker thread. Under Lambda an execution environment serves one request
at a time and Mangum starts every invocation as a new root task, so anyio cannot reuse its workers: a
thread hop there costs a thread start and buys no concurrency, and the call runs inline instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


class BlockingRunner:
    def __init__(self, *, inline: bool) -> None:
        self.inline = inline

    async def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.inline:
            return fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
