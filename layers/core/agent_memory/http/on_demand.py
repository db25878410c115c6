"""Routers included on the first request that needs them: what the Lambda handler's app does.

A cold start pays for every router it includes: importing a router module builds its pydantic models
and FastAPI's view of every route (the long-term, summary-view, user and session routers together cost
about 100 ms on the development machine). A Lambda execution environment's first request needs one of
them, so `create_app(routers_on_demand=True)` includes none up front, and `RoutersOnDemand` includes the
routers whose path prefixes a request's path falls under just before it is routed. A path under no
prefix (a 404, `/docs`, `/openapi.json`) includes them all first, so every answer is the one the eager
app gives: every route that could match a path is in before that path is routed (routers that can match
one path share a prefix, so the order routers come in does not change a match), the same 404s and 405s,
the whole OpenAPI document. Once all are in, the middleware only passes requests on.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

# (module, prefixes): "/" stands for the root path alone; any other prefix covers itself and what is
# under it. Routers that can match the same path must share a prefix, so one request includes them all.
RouterSpec = tuple[str, tuple[str, ...]]


def _under(path: str, prefix: str) -> bool:
    if prefix == "/":
        return path == "/"
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


class RoutersOnDemand:
    """Includes `routers` into `app`, each on the first request that needs it (those a request needs in
    their listed order).

    >>> RoutersOnDemand(None, [("a", ("/v1/a",)), ("b", ("/",))]).needed("/v1/a/x")  # type: ignore[arg-type]
    ['a']
    """

    def __init__(self, app: FastAPI, routers: Sequence[RouterSpec]) -> None:
        self._app = app
        self._routers = list(routers)
        self._included: set[str] = set()
        self._lock = threading.Lock()

    @property
    def complete(self) -> bool:
        return len(self._included) == len(self._routers)

    def needed(self, path: str) -> list[str]:
        """The modules a request for `path` needs included (all of them for a path under no prefix)."""
        modules = [module for module, prefixes in self._routers if any(_under(path, p) for p in prefixes)]
        return modules or [module for module, _ in self._routers]

    def include(self, modules: Sequence[str]) -> None:
        with self._lock:
            for module, _ in self._routers:
                if module in modules and module not in self._included:
                    self._app.include_router(importlib.import_module(module).router)
                    self._included.add(module)

    def include_for(self, path: str) -> None:
        if not self.complete:
            self.include(self.needed(path))

    def include_all(self) -> None:
        self.include([module for module, _ in self._routers])

    def complete_openapi(self) -> None:
        """Make `app.openapi()` include every router first (however it is called: /openapi.json, /docs, code)."""
        build = self._app.openapi

        def openapi() -> dict[str, Any]:
            self.include_all()
            return build()

        self._app.openapi = openapi  # type: ignore[method-assign]


class IncludeRoutersOnDemand:
    """ASGI middleware in front of the routes: `RoutersOnDemand.include_for(path)` before each request."""

    def __init__(self, app: ASGIApp, routers: RoutersOnDemand) -> None:
        self.app = app
        self.routers = routers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.routers.complete:
            self.routers.include_for(scope["path"])
        await self.app(scope, receive, send)


__all__ = ["IncludeRoutersOnDemand", "RouterSpec", "RoutersOnDemand"]
