"""What the Visualizer stands on, through the real app: the `/ui` routes (open, static, a strict CSP) and
the read-only task listing `GET /v1/tasks` it shows (tenant-scoped, memory:read), on both backends.
The page itself is driven in Chromium by test_visualizer_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.domain.auth import SCOPE_READ, SCOPE_WRITE
from agent_memory.http.app import create_app
from agent_memory.http.routers.ui import CONTENT_SECURITY_POLICY
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_container, make_settings
from tests.fixtures.openai_stub import OpenAIStub

STATIC = resources.files("agent_memory.http").joinpath("static")
SESSION = {"namespace": "app", "user_id": "ann",
           "messages": [{"id": "m1", "role": "user", "content": "I like hiking", "created_at": "2026-01-01T00:00:00Z"}]}


@pytest.fixture(params=["sqlite", "redis"])
def app(
    request: pytest.FixtureRequest, tmp_path: Path, openai_stub: OpenAIStub
) -> Iterator[tuple[TestClient, Container]]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = make_settings(tmp_path, redis_url=redis_url, openai_api_key="test", openai_base_url=openai_stub.base_url,
                             extraction_debounce_seconds=0)
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    with TestClient(create_app(container)) as client:
        record = {"id": "a1", "text": "User likes hiking", "namespace": "app", "discrete_memory_extracted": "t"}
        assert client.post("/v1/long-term-memory/", json={"memories": [record]}).status_code == 200
        yield client, container
    container.close()


def start_view_run(client: TestClient, task_id: str) -> dict[str, Any]:
    view = client.post("/v1/summary-views", json={"name": "per user", "group_by": ["user_id"]})
    assert view.status_code == 200, view.text
    run = client.post(f"/v1/summary-views/{view.json()['id']}/run", json={"task_id": task_id})
    assert run.status_code == 200, run.text
    body: dict[str, Any] = run.json()
    return body


# -- GET /v1/tasks --------------------------------------------------------------------------------------


def test_the_task_list_shows_extractions_and_view_runs_newest_first(
    app: tuple[TestClient, Container], openai_stub: OpenAIStub
) -> None:
    client, container = app
    assert client.get("/v1/tasks").json() == {"tasks": [], "total": 0}
    put = client.put("/v1/working-memory/chat-1", json=SESSION)
    assert put.status_code == 200, put.text
    extraction_id = re.fullmatch(r"queued; task_id=(\S+)", put.headers["X-Agent-Memory-Extraction"])[1]  # type: ignore[index]
    run = start_view_run(client, "view-run-1")

    listed = client.get("/v1/tasks")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2
    assert [(t["id"], t["type"], t["status"]) for t in body["tasks"]] == [
        ("view-run-1", "summary_view_full_run", "pending"),  # started last
        (extraction_id, "extract_session", "pending"),
    ]
    assert body["tasks"][0] == run  # the same shape as GET /v1/tasks/{id}
    assert body["tasks"][1] == client.get(f"/v1/tasks/{extraction_id}").json()

    openai_stub.default_chat_content = '{"memories": []}'
    worker = container.task_worker()
    assert worker is not None
    while worker.run_once():
        pass
    done = client.get("/v1/tasks", params={"status": "success"}).json()
    assert done["total"] == 2 and {t["status"] for t in done["tasks"]} == {"success"}
    assert client.get("/v1/tasks", params={"status": "pending"}).json() == {"tasks": [], "total": 0}
    first = client.get("/v1/tasks", params={"limit": 1}).json()
    assert first["total"] == 2 and [t["id"] for t in first["tasks"]] == ["view-run-1"]


def test_the_task_list_is_the_callers_tenants_only(app: tuple[TestClient, Container]) -> None:
    client, _ = app
    start_view_run(client, "default-run")
    other = {"x-tenant-id": "other"}
    assert client.get("/v1/tasks", headers=other).json() == {"tasks": [], "total": 0}
    view = client.post("/v1/summary-views", json={"name": "v", "group_by": ["user_id"]}, headers=other).json()
    run = client.post(f"/v1/summary-views/{view['id']}/run", json={"task_id": "other-run"}, headers=other)
    assert run.status_code == 200, run.text
    assert [t["id"] for t in client.get("/v1/tasks", headers=other).json()["tasks"]] == ["other-run"]
    assert [t["id"] for t in client.get("/v1/tasks").json()["tasks"]] == ["default-run"]


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "x"}, "limit"), ({"status": "done"}, "status"),
])  # fmt: skip
def test_a_bad_task_list_query_is_a_422_naming_the_parameter(
    app: tuple[TestClient, Container], params: dict[str, Any], field: str
) -> None:
    client, _ = app
    response = client.get("/v1/tasks", params=params)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


# -- /ui --------------------------------------------------------------------------------------------------


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[TestClient, ApiKeyService]]:
    container = make_container(tmp_path, auth_mode="api_key", default_context_window=32000, visualizer_poll_seconds=7)
    with TestClient(create_app(container)) as client:
        yield client, ApiKeyService(container.api_key_store)
    container.close()


def test_the_page_and_its_files_are_open_with_auth_on_and_carry_a_strict_csp(
    keyed: tuple[TestClient, ApiKeyService],
) -> None:
    client, _ = keyed
    assert client.get("/v1/tasks").status_code == 401  # the data needs a key; the page does not
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    for path, media_type in (("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")):
        asset = client.get(path)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media_type)
        assert asset.content == STATIC.joinpath(path.rsplit("/", 1)[1]).read_bytes()
    for response in (page, client.get("/ui/app.js")):
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and "unsafe" not in CONTENT_SECURITY_POLICY
    # The server's default context window is what the page measures token usage against.
    assert '<meta name="agent-memory-default-context-window" content="32000">' in page.text
    assert '<meta name="agent-memory-poll-seconds" content="7">' in page.text  # VISUALIZER_POLL_SECONDS
    assert "{{" not in page.text
    assert client.get("/").json()["ui"] == "/ui"


def test_the_page_is_not_in_the_openapi_document_and_names_no_other_file(
    keyed: tuple[TestClient, ApiKeyService],
) -> None:
    client, _ = keyed
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")] and "/v1/tasks" in paths
    for name in ("index.html", "../app.py", "..%2Fapp.py", "app.js.map", "APP.JS"):
        response = client.get(f"/ui/{name}")
        assert response.status_code == 404, name
    assert client.get("/ui/index.html").json() == {"detail": "No Visualizer file 'index.html'; the page is at /ui"}


def test_the_task_list_needs_memory_read(keyed: tuple[TestClient, ApiKeyService]) -> None:
    client, keys = keyed
    _, writer = keys.create("acme", scopes=[SCOPE_WRITE])
    _, reader = keys.create("acme", scopes=[SCOPE_READ])
    assert client.get("/v1/tasks", headers={"X-API-Key": writer}).status_code == 403
    assert client.get("/v1/tasks", headers={"X-API-Key": reader}).json() == {"tasks": [], "total": 0}


# -- the page's own rules, read from its files ----------------------------------------------------------


def test_the_page_loads_nothing_from_another_origin_and_writes_no_html() -> None:
    html, script, style = (STATIC.joinpath(n).read_text() for n in ("index.html", "app.js", "app.css"))
    for text in (html, script, style):
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text, re.IGNORECASE)
    assert re.findall(r'(?:src|href)="([^"]*)"', html) == ["data:,", "ui/app.css", "ui/app.js"]  # relative
    assert "<script>" not in html  # no inline script (the CSP would refuse it anyway)
    assert not re.search(r"\son[a-z]+=", html)  # no inline handlers either
    # No API of the DOM that parses a string as HTML or code; no persistent storage (comments aside).
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "localStorage", "setTimeout(\"", "document.cookie"):
        assert sink not in code, sink
    # Every API call is relative to the page (it works under a path prefix) and the key goes in a header.
    calls = re.findall(r'api\((`[^`]*`|"[^"]*")', code)
    assert calls and not [c for c in calls if c[1] == "/"]
    assert 'headers["X-API-Key"] = state.key' in code and "headers.Authorization = `Bearer ${state.key}`" in code
    assert "sessionStorage.setItem" in code


def test_the_lambda_handlers_app_serves_the_page_too(tmp_path: Path) -> None:
    # ApiFunction's app includes each router on the first request under its paths (http/on_demand.py).
    container = make_container(tmp_path, auth_mode="api_key")
    app = create_app(container, inline_blocking_calls=True, routers_on_demand=True)
    with TestClient(app) as client:
        for path in ("/ui/app.js", "/ui"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert client.get("/v1/tasks").status_code == 401
    container.close()
