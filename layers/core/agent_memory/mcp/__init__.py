"""The MCP server: Agent Memory Server's ten memory tools on the official `mcp` SDK, over stdio and
streamable HTTP (`POST /mcp`). Import `agent_memory.mcp.server` only where it is needed: the SDK is
slow to import, and the REST API never loads it."""
