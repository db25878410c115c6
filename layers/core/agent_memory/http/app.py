"""The FastAPI app factory. The same app runs under uvicorn (`agent-memory serve`) and Mangum (Lambda)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agent_memory import __version__
from agent_memory.bootstrap import Container, get_container
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.http.blocking import BlockingRunner
from agent_memory.http.body_limit import BodySizeLimit
from agent_memory.http.errors import install_error_handlers
from agent_memory.http.on_demand import IncludeRoutersOnDemand, RoutersOnDemand, RouterSpec
from agent_memory.http.security import install_security

logger = logging.getLogger(__name__)

# Every router in the order the app includes it, with the path prefixes of its routes ("/" = the root
# alone). The Lambda handler's app includes each on the first request under its prefixes
# (http/on_demand.py), so a cold start imports only the routers its first request needs.
ROUTERS: tuple[RouterSpec, ...] = (
    ("agent_memory.http.routers.health", ("/v1/health", "/")),
    ("agent_memory.http.routers.working_memory", ("/v1/working-memory",)),
    ("agent_memory.http.routers.long_term", ("/v1/long-term-memory",)),
    ("agent_memory.http.routers.prompt", ("/v1/memory/prompt",)),
    ("agent_memory.http.routers.summary_views", ("/v1/summary-views", "/v1/tasks")),
    ("agent_memory.http.routers.users", ("/v1/users",)),
    ("agent_memory.http.routers.sessions", ("/api/v1/working-memory/sessions",)),  # Memory Platform API (issue 12)
    ("agent_memory.http.routers.mcp_transport", ("/mcp",)),  # POST /mcp; the MCP SDK loads on its first request
    ("agent_memory.http.routers.ui", ("/ui",)),  # the Visualizer's static page at /ui (issue 12)
)


def create_app(
    container: Container | None = None, *, inline_blocking_calls: bool = False, routers_on_demand: bool = False
) -> FastAPI:
    """Build the app. Without a container, the process-wide one is built lazily from Settings.

    `inline_blocking_calls=True` (the Lambda handler) runs service calls on the event loop's thread;
    see `http/blocking.py`. `routers_on_demand=True` (the Lambda handler too) includes each router on
    the first request under its paths instead of now (`ROUTERS`, http/on_demand.py).
    """
    app = FastAPI(
        title="serverless-agent-memory",
        version=__version__,
        description="Agent Memory Server REST API v1, served from AWS Lambda or a laptop.",
    )
    app.state.container = container or get_container()
    app.state.runner = BlockingRunner(inline=inline_blocking_calls)
    app.state.session_reader = None
    if not inline_blocking_calls:  # a server: the working-memory GET reads on the event loop while served
        app.router.lifespan_context = _session_reader
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit_bytes=app.state.container.settings.max_request_bytes)
    routers = RoutersOnDemand(app, ROUTERS)
    if routers_on_demand:
        app.add_middleware(IncludeRoutersOnDemand, routers=routers)
    else:
        routers.include_all()
    settings = app.state.container.settings
    install_security(app, settings.auth_mode, rate_limited=settings.rate_limit is not None)
    routers.complete_openapi()
    return app


@asynccontextmanager
async def _session_reader(app: FastAPI) -> AsyncIterator[None]:
    """While the app is served, `app.state.session_reader` reads working memory on the server's event loop
    (`Container.session_reader`: Redis), so a GET needs no worker thread. Without a lifespan (Lambda, a
    TestClient outside `with`), or when Redis cannot be asked at start-up whether it is a cluster, reads
    stay on the blocking store through the runner: slower, the same answers."""
    container: Container = app.state.container
    try:
        reader = container.session_reader()
    except DependencyUnavailableError as exc:
        logger.warning("working-memory reads use worker threads: %s", exc.detail)
        reader = None
    app.state.session_reader = reader
    try:
        yield
    finally:
        app.state.session_reader = None
        if reader is not None:
            await reader.aclose()


def create_served_app() -> FastAPI:
    """The app as `agent-memory serve` runs it: the process-wide container, released on shutdown so the
    SQLite files hold all the data (each server worker calls this in its own process)."""
    container = get_container()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from agent_memory.services.task_worker import BackgroundWorker

        # The embedded queue's worker, in this process only (Lambda never runs this lifespan).
        worker = container.task_worker() if container.settings.embedded_worker else None
        background = BackgroundWorker(worker) if worker is not None else None
        if background is not None:
            background.start()
        yield
        if background is not None:
            background.stop()
        app.state.runner.close()
        container.close()

    app = create_app(container)
    reading = app.router.lifespan_context

    @asynccontextmanager
    async def served(app: FastAPI) -> AsyncIterator[None]:
        async with reading(app), lifespan(app):
            yield

    app.router.lifespan_context = served
    return app
