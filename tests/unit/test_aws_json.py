"""adapters/_aws_json.py signs as botocore signs (SigV4), and picks its endpoint only where boto3 would
pick the same one."""

from __future__ import annotations

import datetime

import pytest
from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from agent_memory.adapters import _aws_json

NOW = datetime.datetime(2026, 12, 2, 2, 30, 5, tzinfo=datetime.UTC)
BODY = b'{"TableName":"agent-memory-api-keys","Key":{"key_id":{"S":"0123456789abcdef"}},"ConsistentRead":true}'
HEADERS = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}


def botocore_signature(url: str, credentials: tuple[str, str, str | None], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(method="POST", url=url, data=BODY, headers=dict(HEADERS))
    botocore_auth.SigV4Auth(Credentials(*credentials), "dynamodb", "eu-west-1").add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("credentials", [("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FQoGZX//t="),
                                         ("AKIDEXAMPLE", "secret", None)])  # fmt: skip
@pytest.mark.parametrize("url", ["https://dynamodb.eu-west-1.amazonaws.com/", "http://127.0.0.1:5000/",
                                 "https://dynamodb.eu-west-1.amazonaws.com:443/"])  # fmt: skip
def test_the_signature_is_botocores(
    url: str, credentials: tuple[str, str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = _aws_json.sigv4_headers(url=url, body=BODY, headers=HEADERS, service="dynamodb", region="eu-west-1",
                                      credentials=credentials, now=NOW)  # fmt: skip
    assert headers["Authorization"] == botocore_signature(url, credentials, monkeypatch)
    assert headers["X-Amz-Date"] == "20261202T023005Z"
    assert headers.get("X-Amz-Security-Token") == credentials[2]


def test_the_regional_endpoint_only_where_boto3_would_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_USE_FIPS_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_USE_DUALSTACK_ENDPOINT", raising=False)
    assert _aws_json.regional_endpoint("dynamodb", "us-east-1") == "https://dynamodb.us-east-1.amazonaws.com"
    assert _aws_json.regional_endpoint("dynamodb", "ap-southeast-4") == "https://dynamodb.ap-southeast-4.amazonaws.com"
    assert _aws_json.regional_endpoint("sqs", "eu-west-1") == "https://sqs.eu-west-1.amazonaws.com"
    # Other partitions and endpoint variants are boto3's to resolve
    assert _aws_json.regional_endpoint("dynamodb", "cn-north-1") is None
    assert _aws_json.regional_endpoint("dynamodb", "us-gov-west-1") is None
    assert _aws_json.regional_endpoint("dynamodb", "") is None
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    assert _aws_json.regional_endpoint("dynamodb", "us-east-1") is None


def test_boto3_is_used_without_credentials_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_memory.adapters._aws import aws_client

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    client = aws_client("dynamodb", region="us-east-1", timeout_seconds=1.0)
    assert not isinstance(client, _aws_json.AwsJsonClient)
    assert client.meta.service_model.service_name == "dynamodb"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = aws_client("dynamodb", region="us-east-1", timeout_seconds=1.0)
    assert isinstance(client, _aws_json.AwsJsonClient)
    assert client.url == "https://dynamodb.us-east-1.amazonaws.com/"
    sqs = aws_client("sqs", region="us-east-1", timeout_seconds=1.0)
    assert isinstance(sqs, _aws_json.AwsJsonClient)
    assert sqs.url == "https://sqs.us-east-1.amazonaws.com/"
    # and every other service stays on boto3
    for service in ("secretsmanager", "ssm"):
        assert isinstance(aws_client(service, region="us-east-1", timeout_seconds=1.0), _aws_json.AwsJsonClient)
    bedrock = aws_client("bedrock-runtime", region="us-east-1", timeout_seconds=1.0)
    assert not isinstance(bedrock, _aws_json.AwsJsonClient)


@pytest.mark.parametrize(
    ("service", "variable"),
    [("dynamodb", "AWS_ENDPOINT_URL_DYNAMODB"), ("secretsmanager", "AWS_ENDPOINT_URL_SECRETS_MANAGER"),
     ("ssm", "AWS_ENDPOINT_URL_SSM"), ("sqs", "AWS_ENDPOINT_URL")],
)  # fmt: skip
def test_an_endpoint_named_in_the_environment_is_used_as_botocore_uses_it(
    service: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_memory.adapters._aws import aws_client

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv(variable, "http://127.0.0.1:4566")
    client = aws_client(service, region="us-east-1", timeout_seconds=1.0)
    assert isinstance(client, _aws_json.AwsJsonClient)
    assert client.url == "http://127.0.0.1:4566/"
    # an endpoint_url given in code wins, as it does for boto3; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops the variable
    given = aws_client(service, region="us-east-1", timeout_seconds=1.0, endpoint_url="http://127.0.0.1:9")
    assert given.url == "http://127.0.0.1:9/"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert aws_client(service, region="us-east-1", timeout_seconds=1.0).url.startswith(f"https://{service}.")


@pytest.mark.parametrize("setting", ["HTTPS_PROXY", "http_proxy"])
def test_botocore_settings_in_the_environment_keep_boto3(setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given credentials in the environment and a setting only botocore honours, then boto3 is used
    from agent_memory.adapters._aws import aws_client

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv(setting, "http://127.0.0.1:3128")
    assert not isinstance(aws_client("dynamodb", region="us-east-1", timeout_seconds=1.0), _aws_json.AwsJsonClient)
