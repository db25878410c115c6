"""`POST /mcp`: the MCP server over streamable HTTP (stateless, JSON responses), on the API app.

An ordinary route, so the REST API's credential check, rate limit, body limit and error table apply
before the SDK sees the request: without a valid key it is the same 401 as any route. Every MCP session
reads (tools/list), so the route needs memory:read, as every route declares its scope; the principal's
tenant and scopes then travel to the tools (`mcp/tools.CALLER`), and each write tool checks memory:write. GET (a
server-to-client SSE stream) and DELETE (ending a session) are not routed: a stateless server has no
stream or session, so they are 405, which the streamable-HTTP spec allows.

The SDK is imported on the first MCP request, never when the app is built (it costs ~0.65 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response

from agent_memory.domain.errors import PermissionDeniedError
from agent_memory.http.deps import READ, PrincipalDep

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from agent_memory.mcp.tools import Caller

router = APIRouter(tags=["mcp"])

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class _McpExchange(Response):
    """A response that lets the SDK answer the request itself (JSON-RPC, status and headers)."""

    def __init__(self, server: Any, caller: Caller, max_body_bytes: int) -> None:
        super().__init__()
        self._server = server
        self._caller = caller
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from agent_memory.mcp.server import handle_http

        await handle_http(self._server, self._caller, self._max_body_bytes, scope, receive, send)


@router.post("/mcp", include_in_schema=False, dependencies=READ)
async def mcp_streamable_http(request: Request, principal: PrincipalDep) -> Response:
    """One MCP message (initialize, tools/list, tools/call...) as the caller; see module doc."""
    app = request.app
    container = app.state.container
    if container.authenticator.disabled:
        _refuse_foreign_origin(request.headers.get("origin"))
    server = getattr(app.state, "mcp_server", None)
    if server is None:
        from agent_memory.mcp.server import build_server

        server = app.state.mcp_server = build_server(container)
    from agent_memory.mcp.tools import Caller

    return _McpExchange(server, Caller(principal, app.state.runner), container.settings.max_request_bytes)


def _refuse_foreign_origin(origin: str | None) -> None:
    """With auth disabled anyone who reaches the port is every tenant, so a web page must not (DNS
    rebinding, as the MCP spec warns): a browser's request from a non-loopback origin is 403."""
    if origin is None:
        return
    host = urlsplit(origin).hostname or ""
    if host not in _LOOPBACK_HOSTS:
        raise PermissionDeniedError(
            f"Origin {origin} may not call /mcp with AUTH_MODE=disabled (only loopback origins may)"
        )


__all__ = ["router"]
