"""AMS §2 rows 2–5: list, get, put and delete working memory."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from agent_memory.domain.auth import SCOPE_READ, SCOPE_WRITE
from agent_memory.domain.models import SESSION_SETTINGS, DomainModel, SessionJson
from agent_memory.domain.validation import INT64_MAX
from agent_memory.http.deps import WorkingMemoryCallDep, get_principal
from agent_memory.http.errors import error_responses
from agent_memory.http.json_body import StrictJsonRoute, decode_json, has_control_character
from agent_memory.http.working_memory_schemas import (
    AckResponse,
    ContextWindowQuery,
    GetWorkingMemoryQuery,
    SessionIdPath,
    SessionListResponse,
    UpdateWorkingMemory,
    WorkingMemoryResponse,
)
from agent_memory.services.auth import require
from agent_memory.services.summarization import SummarizationStatus
from agent_memory.services.working_memory import WorkingMemoryService, WorkingMemoryView

router = APIRouter(tags=["working memory"], route_class=StrictJsonRoute, responses=error_responses(503))

Namespace = Annotated[str | None, Query(description="Namespace of the session")]
UserId = Annotated[str | None, Query(description="User of the session")]

_PERCENTAGES = TypeAdapter(dict[str, float | None])
_SESSION_SETTINGS = set(SESSION_SETTINGS)
_SESSION_ID = TypeAdapter(SessionIdPath)
_NO_PERCENTAGES = b',"context_percentage_total_used":null,"context_percentage_until_summarization":null}'

SUMMARIZATION_HEADER = "X-Agent-Memory-Summarization"
PROMOTION_HEADER = "X-Agent-Memory-Promotion"
EXTRACTION_HEADER = "X-Agent-Memory-Extraction"


def _response(view: WorkingMemoryView | SessionJson, headers: dict[str, str] | None = None) -> Response:
    # The hot path: the memory was validated on the way in, so serialise it once, without FastAPI
    # validating it again against the response model.
    # WorkingMemoryResponse is the memory plus the two percentages: those are spliced onto the
    # memory's own JSON (pydantic-core) rather than copying it into a second model.
    # The session API's settings (message limit, primed ids) are not part of the AMS wire format.
    if isinstance(view, SessionJson):  # the session as stored, which a GET without a window shows unchanged
        body = b"".join((view[:-1].encode(), _NO_PERCENTAGES))
        return Response(body, media_type="application/json", headers=headers)
    body = view.memory.__pydantic_serializer__.to_json(view.memory, exclude=_SESSION_SETTINGS)
    extra = _PERCENTAGES.dump_json(
        {
            "context_percentage_total_used": view.percentage_total_used,
            "context_percentage_until_summarization": view.percentage_until_summarization,
        }
    )
    return Response(b"".join((body[:-1], b",", extra[1:])), media_type="application/json", headers=headers)


@router.get("/v1/working-memory/", response_model=SessionListResponse)
@router.get("/v1/working-memory", response_model=SessionListResponse, include_in_schema=False)
async def list_sessions(
    call: WorkingMemoryCallDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    namespace: Namespace = None,
    user_id: UserId = None,
) -> SessionListResponse:
    page = await call.run(
        call.service.list_sessions, call.tenant, namespace=namespace, user_id=user_id, limit=limit, offset=offset
    )
    return SessionListResponse(sessions=page.sessions, total=page.total)


@router.get("/v1/working-memory/{session_id}", response_model=WorkingMemoryResponse, responses=error_responses(404))
async def get_working_memory(
    session_id: SessionIdPath, call: WorkingMemoryCallDep, query: Annotated[GetWorkingMemoryQuery, Query()]
) -> Response:
    view = await call.service.get_async(
        call.tenant, session_id, reader=call.reader, run=call.run, **query.model_dump()
    )
    return _response(view)


class WorkingMemoryGet:
    """The working-memory GET without FastAPI's per-request machinery: the hot path of the service.

    FastAPI resolves a route's dependencies and parameters generically on every request, which costs
    more CPU than the GET's own work (issue 7). This ASGI endpoint sits ahead of the documented route
    above and serves the requests it can take whole: a valid session id and a query of known
    parameters, each given once, that validate as `GetWorkingMemoryQuery`. It checks them with the same
    validators, authenticates with the same `get_principal`, calls the same service and answers with the
    same `_response`. Everything else (a bad id or query, a repeated or unknown parameter) goes to the
    documented route, which gives the documented answer, 422s included; errors raised here reach the
    app's exception handlers as a route's do. So the two cannot disagree on what they both answer.
    """

    def __init__(self, documented: APIRoute) -> None:
        self.documented = documented

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        arguments = self.arguments(scope)
        if arguments is None:
            await self.documented.handle(scope, receive, send)
            return
        session_id, query = arguments
        request = Request(scope, receive)
        state = request.app.state
        principal = require(await get_principal(request), SCOPE_READ)
        service: WorkingMemoryService = state.container.working_memory_service
        view = await service.get_async(
            principal.tenant, session_id, reader=state.session_reader, run=state.runner, **query
        )
        await _response(view)(scope, receive, send)

    @staticmethod
    def arguments(scope: Scope) -> tuple[str, dict[str, Any]] | None:
        """The session id and the query's values when this endpoint takes the request, else None."""
        return _hot_arguments(scope, GetWorkingMemoryQuery)


def _hot_arguments(scope: Scope, query_model: type[DomainModel]) -> tuple[str, dict[str, Any]] | None:
    """A hot endpoint's session id and query values, validated as the documented route validates them;
    None when the request is not one it takes whole (a control character in the path, a bad id, an
    unknown or repeated parameter, a value that does not validate)."""
    if has_control_character(scope["path"]):
        return None
    try:
        session_id = _SESSION_ID.validate_python(scope["path_params"]["session_id"])
        raw = scope["query_string"]
        if not raw:
            return session_id, _NO_QUERY[query_model]
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
        given = dict(pairs)
        if len(given) != len(pairs) or not given.keys() <= query_model.model_fields.keys():
            return None
        return session_id, query_model.model_validate(given).model_dump()
    except ValidationError:
        return None


@router.put(
    "/v1/working-memory/{session_id}", response_model=WorkingMemoryResponse, responses=error_responses(400, 413)
)
async def put_working_memory(
    session_id: SessionIdPath,
    body: UpdateWorkingMemory,
    call: WorkingMemoryCallDep,
    query: Annotated[ContextWindowQuery, Query()],
) -> Response:
    """Replace the session. Summarizes first when the messages outgrow the window (and an LLM is set).

    The `X-Agent-Memory-Summarization` header says whether a summary was made, and if not, why;
    `X-Agent-Memory-Promotion` whether the session's new memories reached long-term memory;
    `X-Agent-Memory-Extraction` whether background extraction was queued or deferred.
    """
    view = await call.run(call.service.put, call.tenant, body.to_domain(session_id), **query.model_dump())
    return _response(view, _put_headers(view))


def _put_headers(view: WorkingMemoryView) -> dict[str, str]:
    headers: dict[str, str] = {}
    if view.summarization is not None and view.summarization is not SummarizationStatus.NOT_NEEDED:
        headers[SUMMARIZATION_HEADER] = view.summarization.value
    if view.promotion is not None:
        headers[PROMOTION_HEADER] = view.promotion
    if view.extraction is not None:
        headers[EXTRACTION_HEADER] = view.extraction
    return headers


class WorkingMemoryPut:
    """The working-memory PUT without FastAPI's per-request machinery, as `WorkingMemoryGet` is for the GET.

    It takes a request whole only when its id and query validate as above, its Content-Type is JSON and
    its body decodes (`decode_json`, the strict rule of every route) and validates as
    `UpdateWorkingMemory`; it then authenticates and calls the same service as the documented route.
    Anything else goes to the documented route with the body it read handed on unchanged (or the
    disconnect that BodySizeLimit signalled), so 413s, 422s and their order against 401s stay the
    documented route's. It never hands over after authenticating, so a request costs one rate-limit token.
    """

    def __init__(self, documented: APIRoute) -> None:
        self.documented = documented

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        arguments = _hot_arguments(scope, ContextWindowQuery)
        if arguments is None or not _is_json(scope):
            await self.documented.handle(scope, receive, send)
            return
        session_id, query = arguments
        request = Request(scope, receive)
        try:
            raw = await request.body()
        except ClientDisconnect:  # over MAX_REQUEST_BYTES: the documented route meets the same end
            await self.documented.handle(scope, _disconnected, send)
            return
        try:
            body = UpdateWorkingMemory.model_validate(decode_json(raw))
        except ValueError:  # not strict JSON (json.JSONDecodeError) or not a valid body (ValidationError)
            await self.documented.handle(scope, _replay(raw), send)
            return
        state = request.app.state
        principal = require(await get_principal(request), SCOPE_WRITE)
        service: WorkingMemoryService = state.container.working_memory_service
        view = await state.runner(service.put, principal.tenant, body.to_domain(session_id), **query)
        await _response(view, _put_headers(view))(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    return False  # no Content-Type: whether FastAPI reads it as JSON is its own setting, so it decides


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


def _replay(body: bytes) -> Receive:
    """A `receive` that gives `body` once, as the documented route reads it."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _with_hot_paths(router: APIRouter) -> None:
    """Put each hot endpoint ahead of its documented route, for the same path and methods."""
    for endpoint, hot in ((get_working_memory, WorkingMemoryGet), (put_working_memory, WorkingMemoryPut)):
        documented = next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)
        assert documented.methods
        route = Route(documented.path, hot(documented), methods=documented.methods, include_in_schema=False)
        route.methods = set(documented.methods)  # Starlette adds HEAD to a GET route; the documented one has none
        router.routes.insert(router.routes.index(documented), route)


@router.delete("/v1/working-memory/{session_id}", response_model=AckResponse)
async def delete_working_memory(
    session_id: SessionIdPath,
    call: WorkingMemoryCallDep,
    namespace: Namespace = None,
    user_id: UserId = None,
) -> AckResponse:
    await call.run(call.service.delete, call.tenant, session_id, namespace=namespace, user_id=user_id)
    return AckResponse(status="ok")


_with_hot_paths(router)

# Each query model's values when the query is empty (the common case: nothing to validate).
_NO_QUERY: dict[type[DomainModel], dict[str, Any]] = {
    model: model().model_dump() for model in (GetWorkingMemoryQuery, ContextWindowQuery)
}
