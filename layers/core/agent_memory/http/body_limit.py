"""The request-body limit, as plain ASGI middleware: memory stays bounded by MAX_REQUEST_BYTES.

A declared Content-Length over the limit is refused before the body is read. A body without one
(chunked upload) is counted as it arrives and no longer read once past the limit: the app is told the
client went away, and whatever it then answers is replaced by the 413. So at most one chunk past the
limit is ever held, whatever the client sends.

Why not Starlette's `RequestBodyLimitMiddleware` (FastAPI's `max_body_size`): some of its paths answer
413 in `text/plain`, and every error of this API is JSON naming the setting to change. Why not
`@app.middleware("http")`: that wrapper runs each request through an extra task and memory stream,
which costs the hot path more than the whole limit check.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Refuse request bodies over `limit_bytes` with a JSON 413; count the bytes that were read."""

    def __init__(self, app: ASGIApp, limit_bytes: int) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit_bytes:
            await self._refuse(send, declared, read_all=False)
            return
        received = 0
        over = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit_bytes:
                    over = True  # stop here: the rest of the body is never read
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if over:
                if message["type"] == "http.response.start" and not replaced:
                    replaced = True
                    await self._refuse(send, received, read_all=True)
                return  # the app's own answer to a body it never got whole is dropped
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not replaced:
            await self._refuse(send, received, read_all=True)

    async def _refuse(self, send: Send, size: int, *, read_all: bool) -> None:
        what = f"more than {self.limit_bytes}" if read_all else str(size)
        body = json.dumps(
            {"detail": f"request body is {what} bytes; the limit is {self.limit_bytes} bytes (MAX_REQUEST_BYTES)"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
