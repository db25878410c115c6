"""template.yaml's auth resources: the API-key table (on demand, point-in-time recovery, encrypted, kept
on delete), the AuthMode parameter, and least privilege (the API reads and touches keys in that table only)."""

from __future__ import annotations

from typing import Any

from tests.contract.test_template import _load_template
from tests.fixtures.moto_dynamodb import create_api_keys_table


def resources() -> dict[str, dict[str, Any]]:
    return _load_template()["Resources"]  # type: ignore[return-value]


def _statements(function: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in resources()[function]["Properties"]["Policies"]:
        if isinstance(policy, dict) and "Fn::If" in policy:
            policy = policy["Fn::If"][1]
        if isinstance(policy, dict):
            found.extend(policy.get("Statement", []))
    return found


def test_the_key_table_is_on_demand_recoverable_encrypted_and_retained() -> None:
    table = resources()["ApiKeysTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_the_key_table_has_the_schema_the_store_and_its_tests_use() -> None:
    declared = resources()["ApiKeysTable"]["Properties"]
    calls: dict[str, Any] = {}

    class Recorder:
        def create_table(self, **arguments: Any) -> None:
            calls.update(arguments)

    create_api_keys_table(Recorder(), "t")
    for field in ("AttributeDefinitions", "KeySchema", "BillingMode"):
        assert declared[field] == calls[field], field
    assert [i["IndexName"] for i in declared["GlobalSecondaryIndexes"]] == ["tenant-index"]
    assert declared["GlobalSecondaryIndexes"][0]["KeySchema"] == calls["GlobalSecondaryIndexes"][0]["KeySchema"]


def test_the_api_function_may_only_get_and_update_items_of_the_key_table() -> None:
    dynamodb = [s for s in _statements("ApiFunction") if "dynamodb:" in str(s["Action"])]
    assert dynamodb == [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
         "Resource": {"Fn::GetAtt": "ApiKeysTable.Arn"}}
    ]  # fmt: skip
    assert not [s for s in _statements("ExtractionFunction") if "dynamodb:" in str(s["Action"])]


def test_the_api_function_is_told_the_auth_mode_and_the_table() -> None:
    template = _load_template()
    env = resources()["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert env["AUTH_MODE"] == {"Ref": "AuthMode"}
    assert env["API_KEYS_TABLE"] == {"Ref": "ApiKeysTable"}
    assert env["JWT_ISSUER"] == {"Fn::If": ["UseJwt", {"Ref": "JwtIssuer"}, {"Ref": "AWS::NoValue"}]}
    parameter = template["Parameters"]["AuthMode"]  # type: ignore[index]
    assert parameter["Default"] == "api_key"
    assert "disabled" not in parameter["AllowedValues"]
    assert "JwtNeedsAnIssuer" in template["Rules"]  # type: ignore[operator]
    assert template["Outputs"]["ApiKeysTableName"]["Value"] == {"Ref": "ApiKeysTable"}  # type: ignore[index]
