"""`agent-memory invoke` takes each function's handler, timeout, memory and literal environment from the SAM
template (no map in cli.py to keep in step), in a separate process as a developer runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 29
    Environment:
      Variables:
        GREETING: from-globals
        QUEUE_URL: !Ref Queue
Resources:
  Queue:
    Type: AWS::SQS::Queue
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo/
      Handler: echo_handler.handler
      Timeout: 42
      MemorySize: 256
      Environment:
        Variables:
          MODE: literal
"""

HANDLER = """
import os

def handler(event, context):
    return {
        "event": event,
        "env": {name: os.environ.get(name) for name in ("GREETING", "MODE", "QUEUE_URL", "CALLER")},
        "timeout_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "name": context.function_name,
    }
"""


def invoke(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true", **env}
    return subprocess.run([sys.executable, "-m", "agent_memory.cli", "invoke", *args], capture_output=True,
                          text=True, cwd=cwd, env=environment, timeout=60)


def test_invoke_runs_the_handler_the_template_names_with_its_literal_environment(tmp_path: Path) -> None:
    # Given a template and a handler beside it (not in this checkout)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "functions" / "echo").mkdir(parents=True)
    (tmp_path / "functions" / "echo" / "echo_handler.py").write_text(HANDLER)
    (tmp_path / "event.json").write_text('{"ping": 1}')

    # When it is invoked from elsewhere, with one variable set by the caller
    result = invoke("EchoFunction", "--event", str(tmp_path / "event.json"), "--template",
                    str(tmp_path / "template.yaml"), CALLER="me", MODE="")

    # Then handler, timeout, memory and literal variables come from the template; the caller's win; a !Ref
    # is left unset and named on stderr
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["event"] == {"ping": 1}
    assert answer["env"] == {"GREETING": "from-globals", "MODE": "", "QUEUE_URL": None, "CALLER": "me"}
    assert 41_000 < answer["timeout_ms"] <= 42_000
    assert (answer["memory"], answer["name"]) == (256, "EchoFunction")
    assert "QUEUE_URL (!Ref Queue)" in result.stderr


def test_a_function_the_template_lacks_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)

    result = invoke("NoSuchFunction", "--event", "events/health.json", "--template", str(tmp_path / "template.yaml"))

    assert result.returncode == 2
    assert "invalid choice: unknown function 'NoSuchFunction'; known: EchoFunction" in result.stderr


def test_the_authorizer_event_through_invoke_is_the_error_lambda_reports(tmp_path: Path) -> None:
    # AUTH_MODE=api_key comes from the template; without API_KEYS_TABLE the keys are in the data dir's SQLite
    result = invoke("ApiKeyAuthorizerFunction", "--event", "events/authorizer_api_key.json",
                    AGENT_MEMORY_DATA_DIR=str(tmp_path))

    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == {"errorMessage": "Unauthorized", "errorType": "UnauthorizedError"}
