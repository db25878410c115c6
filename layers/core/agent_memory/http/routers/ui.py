"""The Visualizer: a read-only web page at `/ui` over the JSON API (issue 12).

The page is three static files in `http/static/` (plain HTML, CSS and JavaScript: no framework, no CDN,
no build step). They hold no data, so these routes are open, like `/docs`: everything the page shows it
fetches from the API with the caller's own credential, so the tenant is the key's and tenancy holds by
construction. Every answer carries a strict Content-Security-Policy (scripts, styles and requests from
this origin only, no inline script, no framing), so data that slipped past the page's escaping could
still not run.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from agent_memory.domain.errors import NotFoundError

router = APIRouter(tags=["visualizer"], include_in_schema=False)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Small files: always revalidate, so a new version of the page never runs against a stale script.
    "Cache-Control": "no-cache",
}
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
# index.html names the server's default context window (so the page measures token usage against the
# window the server summarizes at unless the user picks another) and its poll interval; both integers.
WINDOW_PLACEHOLDER = "{{DEFAULT_CONTEXT_WINDOW}}"
POLL_PLACEHOLDER = "{{POLL_SECONDS}}"


@cache
def _static(name: str) -> bytes:
    # Read once per process, at the first request: nothing is read at import time.
    return resources.files("agent_memory.http").joinpath("static", name).read_bytes()


@router.get("/ui")
async def visualizer_page(request: Request) -> Response:
    """The Visualizer's page. Its scripts and API calls use relative URLs, so it also works under a path
    prefix (an API Gateway stage)."""
    settings = request.app.state.container.settings
    page = (
        _static("index.html")
        .replace(WINDOW_PLACEHOLDER.encode(), str(int(settings.default_context_window)).encode())
        .replace(POLL_PLACEHOLDER.encode(), str(int(settings.visualizer_poll_seconds)).encode())
    )
    return Response(page, media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/ui/{asset}")
async def visualizer_asset(asset: str) -> Response:
    """The page's script and style sheet; any other name is a 404."""
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise NotFoundError(f"No Visualizer file {asset!r}; the page is at /ui")
    return Response(_static(asset), media_type=media_type, headers=HEADERS)


__all__ = ["CONTENT_SECURITY_POLICY", "router"]
