"""The one JSON decoding rule for request bodies.

FastAPI decodes bodies with `json.loads`, which accepts `NaN`, `Infinity` and `-Infinity` (not JSON;
pydantic then stores them as null) and `"\\ud800"` (a lone surrogate no store can encode: SQLite and
Redis fail on it, which used to surface as a 503 that clients retry forever). Every router uses
`StrictJsonRoute`, whose request decodes with pydantic-core's parser in strict mode instead: those
inputs, invalid UTF-8 and nesting deeper than its 200 levels are a 422 `json_invalid` at `["body", pos]`,
the shape FastAPI gives any malformed body. It is also faster than `json.loads`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic_core import from_json

_POSITION = re.compile(r" at line (\d+) column (\d+)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_character(path: str) -> bool:
    """Whether a request path holds a control character, which every route refuses with a 422."""
    return _CONTROL.search(path) is not None
_CONTROL_IN_PATH = {"type": "value_error", "loc": ["path"], "msg": "the path must not contain control characters"}


def decode_json(body: bytes) -> Any:
    """The body as Python values; `json.JSONDecodeError` for anything that is not strict JSON.

    >>> decode_json(b'{"a": [1, 2.5, "x"]}')
    {'a': [1, 2.5, 'x']}
    >>> decode_json(b'{"a": NaN}')
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: NaN, Infinity and -Infinity are not JSON numbers: line 1 column 7 (char 6)
    """
    try:
        return from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise _decode_error(body, str(exc)) from None


def _decode_error(body: bytes, message: str) -> json.JSONDecodeError:
    doc = body.decode("utf-8", "replace")
    pos = 0
    match = _POSITION.search(message)
    if match:
        message = message[: match.start()]
        line, column = int(match.group(1)), int(match.group(2))
        line_start = sum(len(part) + 1 for part in doc.split("\n")[: line - 1])
        pos = min(len(doc), line_start + max(column - 1, 0))
    if message in ("expected value", "invalid number"):
        try:
            from_json(body, allow_inf_nan=True)
        except ValueError:
            pass
        else:
            message = "NaN, Infinity and -Infinity are not JSON numbers"
    elif any(word in message for word in ("surrogate", "unicode", "hex escape")):
        message = f"text must be valid Unicode: {message}"
    return json.JSONDecodeError(message, doc, pos)


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """An APIRoute whose handler sees a `StrictJsonRequest` (FastAPI's documented custom-route hook).

    It also refuses a path holding a control character, with a 422 like any other bad id: Starlette's
    path patterns end in `$`, which matches before a final newline, so `GET /v1/working-memory/%0A`
    (session id "\\n") would otherwise be answered by the session list.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            if has_control_character(request.scope["path"]):
                return JSONResponse({"detail": [_CONTROL_IN_PATH]}, status_code=422)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
