"""The FastAPI app factory. The same app runs under uvicorn (`agent-memory serve`) and Mangum (Lambda)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agent_memory import __version__
from agent_memory.bootstrap import Container, get_container
from agent_memory.http.blocking import BlockingRunner
from agent_memory.http.body_limit import BodySizeLimit
from agent_memory.http.errors import install_error_handlers
from agent_memory.http.routers import health, long_term, prompt, sessions, summary_views, ui, users, working_memory
from agent_memory.http.security import install_security
from agent_memory.services.task_worker import BackgroundWorker


def create_app(container: Container | None = None, *, inline_blocking_calls: bool = False) -> FastAPI:
    """Build the app. Without a container, the process-wide one is built lazily from Settings.

    `inline_blocking_calls=True` (the Lambda handler) runs service calls on the event loop's thread;
    see `http/blocking.py`.
    """
    app = FastAPI(
        title="serverless-agent-memory",
        version=__version__,
        description="Agent Memory Server REST API v1, served from AWS Lambda or a laptop.",
    )
    app.state.container = container or get_container()
    app.state.runner = BlockingRunner(inline=inline_blocking_calls)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit_bytes=app.state.container.settings.max_request_bytes)
    app.include_router(health.router)
    app.include_router(working_memory.router)
    app.include_router(long_term.router)
    app.include_router(prompt.router)
    app.include_router(summary_views.router)
    app.include_router(users.router)
    app.include_router(sessions.router)  # the Memory Platform session API (issue 12)
    app.include_router(ui.router)  # the Visualizer's static page at /ui (issue 12)
    settings = app.state.container.settings
    install_security(app, settings.auth_mode, rate_limited=settings.rate_limit is not None)
    return app


def create_served_app() -> FastAPI:
    """The app as `agent-memory serve` runs it: the process-wide container, released on shutdown so the
    SQLite files hold all the data (each server worker calls this in its own process)."""
    container = get_container()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
    app.router.lifespan_context = lifespan
    return app
