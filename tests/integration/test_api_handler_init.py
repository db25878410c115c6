"""ApiFunction's INIT: nothing but Powertools on demand; the first requests' work under SnapStart and
provisioned concurrency, with no connection opened (a snapshot must not carry one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.redis_process import free_port

REPO = Path(__file__).resolve().parents[2]

# Imports the handler, reports what INIT did, then answers the health event.
_CHILD = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[1])
import api_handler
from agent_memory.services import tokens
state = {
    "app_built": api_handler._asgi is not None,
    "routers": sorted(m for m in sys.modules if m.startswith("agent_memory.http.routers.")),
    "token_counter_loaded": tokens._counter is not None,
    "tiktoken_tables_built": getattr(getattr(tokens._counter, "__self__", None), "_encoding", None) is not None,
    "redis_imported": "redis" in sys.modules,
    "collector_on_after_init": gc.isenabled(),
    "frozen_after_init": gc.get_freeze_count() > 0,
}
from agent_memory.cli import FakeLambdaContext
state["health"] = api_handler.handler(json.load(open(sys.argv[2])), FakeLambdaContext())["statusCode"]
state["collector_on_after_first"] = gc.isenabled()
state["frozen_after_first"] = gc.get_freeze_count() > 0
print(json.dumps(state))
"""


def _init(tmp_path: Path, initialization_type: str, *, in_lambda: bool = True) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin", "AGENT_MEMORY_DATA_DIR": str(tmp_path), "EMBEDDING_PROVIDER": "fake",
           "AUTH_MODE": "disabled", "LONG_TERM_MEMORY": "false", "POWERTOOLS_METRICS_DISABLED": "true",
           "POWERTOOLS_LOG_LEVEL": "WARNING", "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
           # Nothing listens here: an INIT that connected to Redis would fail or hang
           "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "REDIS_TIMEOUT_SECONDS": "0.2"}  # fmt: skip
    if in_lambda:
        env["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:9001"  # what the runtime sets in every execution environment
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(REPO / "functions" / "api"), str(REPO / "events" / "health.json")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    state: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return state


def test_an_on_demand_init_builds_nothing(tmp_path: Path) -> None:
    state = _init(tmp_path, "on-demand")
    # Then the app, the routers, the token counter and redis-py wait for the first request, and the
    # garbage collector is paused until that request has been answered, then frozen and back on
    assert state == {"app_built": False, "routers": [], "token_counter_loaded": False,
                     "tiktoken_tables_built": False, "redis_imported": False, "health": 200,
                     "collector_on_after_init": False, "frozen_after_init": False,
                     "collector_on_after_first": True, "frozen_after_first": True}  # fmt: skip


def test_outside_a_lambda_environment_the_collector_is_never_paused(tmp_path: Path) -> None:
    # A process that imports the handler without the runtime (a test, `agent-memory invoke`) and may
    # never invoke it keeps its collector
    state = _init(tmp_path, "on-demand", in_lambda=False)
    assert state["collector_on_after_init"] is True
    assert state["collector_on_after_first"] is True
    assert state["frozen_after_first"] is False
    assert state["health"] == 200


@pytest.mark.parametrize("initialization_type", ["snap-start", "provisioned-concurrency"])
def test_an_init_ahead_of_requests_does_the_first_requests_work_without_connecting(
    tmp_path: Path, initialization_type: str
) -> None:
    state = _init(tmp_path, initialization_type)
    # Then the app is built with every router, the token counter and redis-py are loaded, and nothing
    # connected (Redis is down, yet INIT and the health check both succeed)
    assert state["app_built"] is True
    assert "agent_memory.http.routers.long_term" in state["routers"]  # type: ignore[operator]
    assert "agent_memory.http.routers.working_memory" in state["routers"]  # type: ignore[operator]
    assert state["token_counter_loaded"] is True
    assert state["tiktoken_tables_built"] is True  # a restored snapshot's requests count at tiktoken's speed
    assert state["redis_imported"] is True
    # INIT collected, froze what it built and turned the collector back on before any request
    assert state["collector_on_after_init"] is True
    assert state["frozen_after_init"] is True
    assert state["health"] == 200
