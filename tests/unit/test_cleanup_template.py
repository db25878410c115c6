"""CleanupFunction in template.yaml: the properties the cleanup relies on (read with the loader
`agent-memory invoke` uses; `sam validate --lint` and cfn-lint run in tests/contract/test_template.py)."""

from __future__ import annotations

from typing import Any

import pytest

from agent_memory.sam_template import function_spec, load_template
from agent_memory.services.cleanup import DEFAULT_MARGIN_MS


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][logical_id]
    return resource["Properties"]


def test_it_runs_on_a_schedule_of_the_interval_it_is_told(template: dict[str, Any]) -> None:
    cleanup = _resource(template, "CleanupFunction")
    [event] = cleanup["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Fn::Sub": "rate(${CleanupIntervalMinutes} minutes)"}
    # the service's lookahead comes from the same parameter
    assert cleanup["Environment"]["Variables"]["CLEANUP_INTERVAL_MINUTES"] == {"Ref": "CleanupIntervalMinutes"}
    assert template["Parameters"]["CleanupIntervalMinutes"]["MinValue"] >= 2  # "rate(1 minutes)" is invalid


def test_one_run_at_a_time_and_no_retry_of_a_failed_run(template: dict[str, Any]) -> None:
    cleanup = _resource(template, "CleanupFunction")
    assert cleanup["ReservedConcurrentExecutions"] == 1
    assert cleanup["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def test_it_stops_well_before_its_timeout_and_an_alarm_watches_the_rest(template: dict[str, Any]) -> None:
    spec = function_spec(template, "CleanupFunction")
    assert (spec.handler_file, spec.attribute) == ("functions/cleanup/cleanup_handler.py", "handler")
    assert spec.timeout_seconds * 1000 > 10 * DEFAULT_MARGIN_MS
    its_dimensions = [{"Name": "FunctionName", "Value": {"Ref": "CleanupFunction"}}]
    alarms = {name: r["Properties"] for name, r in template["Resources"].items()
              if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Dimensions"] == its_dimensions}  # fmt: skip
    assert {a["MetricName"] for a in alarms.values()} == {"Errors", "Duration"}
    [duration] = [a for a in alarms.values() if a["MetricName"] == "Duration"]
    assert duration["Threshold"] == 0.9 * spec.timeout_seconds * 1000


def test_its_logs_are_kept_as_long_as_the_others(template: dict[str, Any]) -> None:
    cleanup = _resource(template, "CleanupFunction")
    group = cleanup["LoggingConfig"]["LogGroup"]["Ref"]
    assert _resource(template, group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_forgetting_is_off_unless_a_parameter_sets_it(template: dict[str, Any]) -> None:
    variables = _resource(template, "CleanupFunction")["Environment"]["Variables"]
    for variable, parameter in [("FORGET_MAX_AGE_DAYS", "ForgetMaxAgeDays"),
                                ("FORGET_MAX_INACTIVE_DAYS", "ForgetMaxInactiveDays"),
                                ("FORGET_BUDGET", "ForgetBudget")]:  # fmt: skip
        assert template["Parameters"][parameter]["Default"] == ""
        condition, value, otherwise = variables[variable]["Fn::If"]
        assert value == {"Ref": parameter} and otherwise == {"Ref": "AWS::NoValue"}
        assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}


def _actions(statement: Any) -> list[str]:
    if "Fn::If" in statement:  # [condition, statement, otherwise]
        return [a for branch in statement["Fn::If"][1:] for a in _actions(branch)]
    if not isinstance(statement, dict) or "Action" not in statement:
        return []
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_it_may_do_what_the_cleanup_does_and_nothing_more(template: dict[str, Any]) -> None:
    cleanup = _resource(template, "CleanupFunction")
    assert cleanup["Policies"] == [{"Ref": "CleanupAccessPolicy"}]
    statements = _resource(template, "CleanupAccessPolicy")["PolicyDocument"]["Statement"]
    actions = sorted({a for statement in statements for a in _actions(statement)})
    assert actions == ["aoss:APIAccessAll", "es:ESHttpDelete", "es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost",
                       "secretsmanager:GetSecretValue", "sqs:SendMessage"]  # fmt: skip
    assert not any("*" in a for a in actions)
    assert "VpcConfig" in cleanup  # ElastiCache is VPC-only
    policy = _resource(template, "CollectionDataAccessPolicy")["Policy"]["Fn::Sub"][0]
    assert "${CleanupFunctionRole.Arn}" in policy
