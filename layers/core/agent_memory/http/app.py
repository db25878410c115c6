"""The FastAPI app factory. The same app runs under uvicorn (`agent-memory serve`) and Mangum (Lambda)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from agent_memory import __version__
from agent_memory.bootstrap import Container, get_container
from agent_memory.http.blocking import BlockingRunner
from agent_memory.http.errors import install_error_handlers
from agent_memory.http.routers import health, long_term, prompt, working_memory


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
    _limit_body_size(app)
    app.include_router(health.router)
    app.include_router(working_memory.router)
    app.include_router(long_term.router)
    app.include_router(prompt.router)
    return app


def _limit_body_size(app: FastAPI) -> None:
    """Refuse bodies over MAX_REQUEST_BYTES with 413 before anything parses them."""

    @app.middleware("http")
    async def limit(request: Request, call_next):
        limit_bytes = app.state.container.settings.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
            return _too_large(int(declared), limit_bytes)
        if request.method in ("POST", "PUT", "PATCH") and declared is None:
            body = await request.body()  # chunked upload: measure what actually arrived
            if len(body) > limit_bytes:
                return _too_large(len(body), limit_bytes)
        response: Response = await call_next(request)
        return response


def _too_large(size: int, limit_bytes: int) -> JSONResponse:
    return JSONResponse(
        {"detail": f"request body is {size} bytes; the limit is {limit_bytes} bytes (MAX_REQUEST_BYTES)"},
        status_code=413,
    )
