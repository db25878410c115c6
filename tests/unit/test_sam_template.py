"""agent_memory/sam_template.py: what `agent-memory invoke` reads from a SAM template (Globals merged, literal
environment only, CloudFormation tags as data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_memory.sam_template import TemplateError, function_spec, functions, load_template

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 29
    MemorySize: 1024
    Environment:
      Variables:
        SHARED: from-globals
        OVERRIDDEN: globals
        QUEUE: !Ref Queue
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker/
      Handler: worker_handler.handler
      Timeout: 120
      Environment:
        Variables:
          OVERRIDDEN: function
          ENABLED: true
          LIMIT: 5
          ARN: !GetAtt Queue.Arn
          CHOICE: !If [Cond, a, b]
  Api:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/api
      Handler: pkg.api_handler.run
"""


@pytest.fixture
def template(tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return load_template(path)


def test_a_function_merges_globals_and_keeps_only_literal_values(template: dict[str, object]) -> None:
    spec = function_spec(template, "Worker")  # type: ignore[arg-type]

    assert (spec.handler_file, spec.attribute) == ("functions/worker/worker_handler.py", "handler")
    assert (spec.timeout_seconds, spec.memory_mb) == (120.0, 1024)
    assert spec.environment == {"SHARED": "from-globals", "OVERRIDDEN": "function", "ENABLED": "true", "LIMIT": "5"}
    assert spec.skipped == {"QUEUE": "!Ref Queue", "ARN": "!GetAtt Queue.Arn", "CHOICE": "!If ..."}


def test_globals_apply_where_the_function_says_nothing(template: dict[str, object]) -> None:
    spec = function_spec(template, "Api")  # type: ignore[arg-type]

    assert (spec.handler_file, spec.attribute) == ("functions/api/pkg/api_handler.py", "run")
    assert spec.timeout_seconds == 29.0
    assert spec.environment == {"SHARED": "from-globals", "OVERRIDDEN": "globals"}


def test_only_serverless_functions_are_functions(template: dict[str, object]) -> None:
    assert functions(template) == ["Worker", "Api"]  # type: ignore[arg-type]
    with pytest.raises(TemplateError, match="unknown function 'Queue'; known: Worker, Api"):
        function_spec(template, "Queue")  # type: ignore[arg-type]


def test_tags_are_data_never_objects(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("Resources:\n  X: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(path)


def test_an_unreadable_template_is_a_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("Description: nothing\n")
    with pytest.raises(TemplateError, match="has no Resources"):
        load_template(tmp_path / "empty.yaml")


def test_the_project_template_declares_every_function_with_a_handler_file() -> None:
    template = load_template()
    root = Path(__file__).resolve().parents[2]

    for name in functions(template):
        spec = function_spec(template, name)
        assert (root / spec.handler_file).is_file(), (name, spec.handler_file)
        assert spec.environment["POWERTOOLS_SERVICE_NAME"] == "agent-memory"
