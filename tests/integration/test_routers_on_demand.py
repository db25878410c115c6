"""The Lambda handler's app includes each router on the first request under its paths (http/on_demand.py),
and answers every request as the eager app does: same routes, same 404/405, the whole OpenAPI document."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_memory.http.app import ROUTERS, create_app
from agent_memory.http.security import leaf_routes
from tests.fixtures.app import make_container


def _routes(app: object) -> list[tuple[str, tuple[str, ...]]]:
    return [(route.path, tuple(sorted(route.methods or ()))) for route in leaf_routes(app.routes)]  # type: ignore[attr-defined]


@pytest.fixture
def apps(tmp_path: Path) -> tuple[object, object]:
    container = make_container(tmp_path)
    return (create_app(container, inline_blocking_calls=True),
            create_app(container, inline_blocking_calls=True, routers_on_demand=True))  # fmt: skip


def test_every_route_of_the_eager_app_lives_under_its_routers_prefixes(apps: tuple[object, object]) -> None:
    # Given the eager app, Then each router's routes fall under the prefixes ROUTERS gives it (else the
    # on-demand app would send such a path to the wrong router, or to all of them)
    import importlib

    from agent_memory.http.on_demand import _under

    for module, prefixes in ROUTERS:
        router = importlib.import_module(module).router
        for route in leaf_routes(router.routes):
            path = router.prefix + route.path if not route.path.startswith(router.prefix) else route.path
            assert any(_under(path, p) for p in prefixes), f"{module}: {path} is under none of {prefixes}"


def test_a_health_request_includes_the_health_router_only(apps: tuple[object, object]) -> None:
    eager, on_demand = apps
    # Given a new on-demand app, Then it routes nothing yet but FastAPI's own documentation pages
    assert {path for path, _ in _routes(on_demand)} <= {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    with TestClient(on_demand) as client:  # type: ignore[arg-type]
        # When the first request is the health check
        response = client.get("/v1/health")
        # Then it answers as the eager app does, with only the health router's routes included
        assert response.status_code == 200
        assert response.json()["version"] == TestClient(eager).get("/v1/health").json()["version"]  # type: ignore[arg-type]
    included = {path for path, _ in _routes(on_demand)}
    assert "/v1/health" in included
    assert not any(path.startswith("/v1/long-term-memory") for path in included)


def test_a_working_memory_request_then_an_unknown_path_end_with_the_eager_routes(apps: tuple[object, object]) -> None:
    eager, on_demand = apps
    with TestClient(on_demand) as client:  # type: ignore[arg-type]
        # When a working-memory request comes first: it is answered (404: no such session), by its router
        assert client.get("/v1/working-memory/nope", params={"namespace": "n"}).status_code == 404
        assert not any(path.startswith("/v1/summary-views") for path, _ in _routes(on_demand))
        # And a method the path does not allow is 405, as in the eager app
        assert client.post("/v1/working-memory/nope").status_code == 405
        # When a path under no router's prefix arrives: 404 after every router is in
        assert client.get("/v1/no-such-thing").status_code == 404
    # Then the routes are the eager app's (routers whose prefixes differ cannot match one path, so the
    # order they were included in does not matter)
    assert sorted(_routes(on_demand)) == sorted(_routes(eager))
    assert len(_routes(on_demand)) == len(_routes(eager))


def test_the_openapi_document_is_whole_on_a_cold_app(apps: tuple[object, object]) -> None:
    eager, on_demand = apps
    # When the first request of a new on-demand app is /openapi.json
    with TestClient(on_demand) as client:  # type: ignore[arg-type]
        document = client.get("/openapi.json").json()
    # Then it documents every operation the eager app does, with the same security additions
    assert document == TestClient(eager).get("/openapi.json").json()  # type: ignore[arg-type]


def test_the_lambda_handler_app_imports_no_other_router_for_a_health_check(tmp_path: Path) -> None:
    # Given a fresh interpreter with the handler's directory on its path (the modules it would not
    # need must not be imported by anything else first, so this runs in a child process)
    import json
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    event = repo / "events" / "health.json"
    child = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import api_handler\n"
        "from agent_memory.cli import FakeLambdaContext\n"
        "r = api_handler.handler(json.load(open(sys.argv[2])), FakeLambdaContext())\n"
        "routers = sorted(m for m in sys.modules if m.startswith('agent_memory.http.routers.'))\n"
        "print(json.dumps([r['statusCode'], routers]))"
    )
    env = {"PATH": "/usr/bin:/bin", "AGENT_MEMORY_DATA_DIR": str(tmp_path), "EMBEDDING_PROVIDER": "fake",
           "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
           "AUTH_MODE": "disabled"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", child, str(repo / "functions" / "api"), str(event)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=True)  # fmt: skip
    status, routers = json.loads(out.stdout.strip().splitlines()[-1])
    # Then it answers 200 having imported the health router alone
    assert status == 200
    assert routers == ["agent_memory.http.routers.health"]


def test_a_first_working_memory_call_imports_no_long_term_or_prompt_code(tmp_path: Path) -> None:
    # Given a fresh Lambda handler process (embedded store), when its first request is a working-memory PUT
    import json
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    child = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import api_handler\n"
        "from agent_memory.cli import FakeLambdaContext\n"
        "r = api_handler.handler(json.load(open(sys.argv[2])), FakeLambdaContext())\n"
        "loaded = [m for m in ('agent_memory.http.schemas', 'agent_memory.services.prompt',\n"
        "                      'agent_memory.services.maintenance', 'agent_memory.services.long_term',\n"
        "                      'agent_memory.domain.filters', 'agent_memory.domain.search',\n"
        "                      'agent_memory.services.task_worker') if m in sys.modules]\n"
        "print(json.dumps([r['statusCode'], loaded]))"
    )
    env = {"PATH": "/usr/bin:/bin", "AGENT_MEMORY_DATA_DIR": str(tmp_path), "EMBEDDING_PROVIDER": "fake",
           "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING", "AUTH_MODE": "disabled",
           "LONG_TERM_MEMORY": "false"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", child, str(repo / "functions" / "api"),
                          str(repo / "events" / "working_memory_put.json")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=True)  # fmt: skip
    status, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    # Then it answers 200 with the working-memory models only (http/working_memory_schemas.py), without
    # importing the long-term service, its domain or the embedded worker
    assert status == 200
    assert loaded == []
