"""The MCP server on the official `mcp` SDK (2.x `MCPServer`), and its two transports.

- stdio (`agent-memory mcp`): one process acts for one tenant, as any local process of the user.
- streamable HTTP (`POST /mcp` on the API app, `http/routers/mcp_transport.py`): stateless with JSON responses.
  The SDK's `StreamableHTTPSessionManager` must be started once (`run()`, a task group) before it
  serves, which a uvicorn lifespan does but Mangum (lifespan off, each invocation its own root task)
  does not. So every HTTP request gets its own stateless manager, started and stopped around that one
  request (`handle_http`): no state outlives a request, so it behaves the same under uvicorn workers,
  behind API Gateway and on Lambda. The cost is starting a task group and a JSON-RPC dispatcher per
  request (measured in docs/architecture.md, "MCP").

The `mcp` package costs about 0.65 s to import, so nothing imports this module before the first MCP
request (or the `mcp` command) needs it.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from agent_memory import __version__
from agent_memory.domain.auth import ALL_SCOPES, Principal
from agent_memory.http.blocking import BlockingRunner
from agent_memory.mcp.tools import CALLER, TOOL_NAMES, Caller, MemoryTools

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from agent_memory.bootstrap import Container

INSTRUCTIONS = (
    "When responding to user queries, ALWAYS check memory first before answering questions about user "
    "preferences, history, or personal information."
)


def build_server(container: Container) -> MCPServer:
    """The MCP server with the ten memory tools over `container`'s services."""
    # MCPServer's constructor calls logging.basicConfig (a rich handler on the root logger) when the root
    # has none, which would change the whole process's logging after the first MCP request: undone here.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        server: MCPServer = MCPServer("serverless-agent-memory", version=__version__, instructions=INSTRUCTIONS)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    tools = MemoryTools(container)
    for name in TOOL_NAMES:
        tool = getattr(tools, name)
        server.add_tool(tool, name=name, description=inspect.cleandoc(tool.__doc__ or ""))
    return server


async def handle_http(server: MCPServer, caller: Caller, max_body_bytes: int,
                      scope: Scope, receive: Receive, send: Send) -> None:  # fmt: skip
    """Serve one streamable-HTTP request (any protocol version the SDK speaks) for `caller`.

    The caller is set before the manager's task group starts, so every task the SDK spawns for this
    request sees it (tasks copy the context they are started in)."""
    token = CALLER.set(caller)
    try:
        manager = StreamableHTTPSessionManager(
            app=server._lowlevel_server,  # the SDK's own `Client` reaches it the same way
            stateless=True,
            json_response=True,
            max_request_body_size=max_body_bytes,
        )
        async with manager.run():
            await manager.handle_request(scope, receive, send)
    finally:
        CALLER.reset(token)


async def run_stdio(container: Container, tenant: str) -> None:
    """Serve MCP over this process's stdin/stdout for `tenant`, with every scope, until stdin closes."""
    runner = BlockingRunner(inline=False)
    CALLER.set(Caller(Principal(tenant=tenant, subject="local", scopes=ALL_SCOPES), runner))
    try:
        await build_server(container).run_stdio_async()
    finally:
        runner.close()


def tool_names(server: MCPServer) -> list[str]:
    """What tools/list answers, for tests and diagnostics."""
    return [tool.name for tool in server._tool_manager.list_tools()]


__all__ = ["INSTRUCTIONS", "build_server", "handle_http", "run_stdio", "tool_names"]
