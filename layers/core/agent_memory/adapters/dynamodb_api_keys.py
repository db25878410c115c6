"""API keys in a DynamoDB table: the `ApiKeyStore` on AWS (API_KEYS_TABLE; template.yaml's ApiKeysTable).

One item per key, partition key `key_id`, so a request's lookup is one strongly consistent `GetItem`
(a revoke is seen by the very next request on any instance). A `tenant-index` GSI (tenant, created_at)
serves `keys list --tenant`; listing every tenant is a Scan, for the operator's CLI only. The API
function needs only GetItem and UpdateItem (last-used, at most hourly per key).

The client is built on first use, never at import time (cold start): with credentials in the environment
(Lambda) the standard library's JSON client (`_aws_json.py`, which spares a cold start's key read boto3's
~0.2 s), else boto3's; one per process, with connect and read timeouts and at most one retry, so a
DynamoDB outage costs a request about twice `timeout_seconds` before its 503. `endpoint_url` lets moto
or LocalStack stand in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from agent_memory.adapters._aws import LazyAwsClient, call_aws
from agent_memory.domain.api_keys import ApiKey
from agent_memory.domain.errors import ConflictError, NotFoundError

TENANT_INDEX = "tenant-index"


def _n(value: datetime | None) -> dict[str, str] | None:
    return {"N": f"{value.timestamp():.6f}"} if value is not None else None


def _dt(item: dict[str, Any], name: str) -> datetime | None:
    value = item.get(name)
    return datetime.fromtimestamp(float(Decimal(value["N"])), UTC) if value else None


def _item(key: ApiKey) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key_id": {"S": key.key_id},
        "tenant": {"S": key.tenant},
        "name": {"S": key.name},
        "scopes": {"L": [{"S": scope} for scope in sorted(key.scopes)]},
        "secret_hash": {"S": key.secret_hash},
        "created_at": _n(key.created_at),
    }
    for name in ("expires_at", "revoked_at", "last_used_at"):
        value = _n(getattr(key, name))
        if value is not None:
            item[name] = value
    return item


def _key(item: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=item["key_id"]["S"],
        tenant=item["tenant"]["S"],
        name=item.get("name", {}).get("S", ""),
        scopes=frozenset(s["S"] for s in item.get("scopes", {}).get("L", [])),
        secret_hash=item["secret_hash"]["S"],
        created_at=_dt(item, "created_at") or datetime.fromtimestamp(0, UTC),
        expires_at=_dt(item, "expires_at"),
        revoked_at=_dt(item, "revoked_at"),
        last_used_at=_dt(item, "last_used_at"),
    )


class DynamoDbApiKeyStore:
    """`ApiKeyStore` on one DynamoDB table.

    Example::

        store = DynamoDbApiKeyStore("agent-memory-api-keys", region="us-east-1")
        store.get("0123456789abcdef")
    """

    blocking = True

    def __init__(
        self,
        table: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        timeout_seconds: float = 1.0,
        client: Any = None,
    ) -> None:
        self.table = table
        self._dynamodb = LazyAwsClient(
            "dynamodb", region=region, timeout_seconds=timeout_seconds, endpoint_url=endpoint_url, client=client
        )

    def create(self, key: ApiKey) -> None:
        self._call(
            "put_item",
            TableName=self.table,
            Item=_item(key),
            ConditionExpression="attribute_not_exists(key_id)",
            conflict=f"API key {key.key_id} exists",
        )

    def get(self, key_id: str) -> ApiKey | None:
        response = self._call("get_item", TableName=self.table, Key={"key_id": {"S": key_id}}, ConsistentRead=True)
        item = response.get("Item")
        return _key(item) if item else None

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"TableName": self.table}
        operation = "scan"
        if tenant is not None:
            operation = "query"
            arguments |= {
                "IndexName": TENANT_INDEX,
                "KeyConditionExpression": "tenant = :t",
                "ExpressionAttributeValues": {":t": {"S": tenant}},
            }
        while True:
            page = self._call(operation, **arguments)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        keys = [_key(item) for item in items]
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def revoke(self, key_id: str, when: datetime) -> ApiKey:
        response = self._call(
            "update_item",
            TableName=self.table,
            Key={"key_id": {"S": key_id}},
            UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
            ConditionExpression="attribute_exists(key_id)",
            ExpressionAttributeValues={":now": _n(when)},
            ReturnValues="ALL_NEW",
            conflict=None,
            missing=f"no API key {key_id}",
        )
        return _key(response["Attributes"])

    def touch(self, key_id: str, when: datetime) -> None:
        self._call(
            "update_item",
            TableName=self.table,
            Key={"key_id": {"S": key_id}},
            UpdateExpression="SET last_used_at = :now",
            ConditionExpression="attribute_exists(key_id)",  # never resurrect a deleted item
            ExpressionAttributeValues={":now": _n(when)},
            conflict=None,
            missing=f"no API key {key_id}",
        )

    def _call(
        self, operation: str, *, conflict: str | None = None, missing: str | None = None, **arguments: Any
    ) -> Any:
        """One DynamoDB call; a failed condition is `conflict` (ConflictError) or `missing` (NotFoundError)."""

        def failed_condition(code: str) -> None:
            if code == "ConditionalCheckFailedException":
                if conflict is not None:
                    raise ConflictError(conflict)
                if missing is not None:
                    raise NotFoundError(missing)

        return call_aws(
            "api_keys", f"DynamoDB {operation}", lambda: getattr(self._dynamodb.get(), operation)(**arguments),
            on_client_error=failed_condition,
        )  # fmt: skip


__all__ = ["TENANT_INDEX", "DynamoDbApiKeyStore"]
