"""adapters/_aws_json.py against a real HTTP server on loopback that answers as DynamoDB does: what it
retries (once, as botocore's standard mode does), what it does not, and how each failure reaches the
API-key store's callers; and how each service's calls are framed (target, JSON version, SQS's query mode)."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agent_memory.adapters._aws_json import AwsJsonClient, AwsServiceError, AwsTransportError
from agent_memory.adapters.dynamodb_api_keys import DynamoDbApiKeyStore
from agent_memory.domain.errors import DependencyUnavailableError
from tests.fixtures.aws_sdk import aws_sdk_imported_by

CREDENTIALS = ("AKIDEXAMPLE", "secret", "token")
ITEM = {"Item": {"key_id": {"S": "0123456789abcdef"}}}


class FakeDynamoDb:
    """Answers each POST with the next scripted (status, body, crc-ok) and records what it was sent."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, Any], bool]] = []
        self.requests: list[dict[str, Any]] = []
        self.close_after_each = False
        self.response_headers: dict[str, str] = {}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append({"target": self.headers["X-Amz-Target"], "body": json.loads(body),
                                      "authorization": self.headers["Authorization"],
                                      "content_type": self.headers["Content-Type"],
                                      "query_mode": self.headers.get("x-amzn-query-mode")})  # fmt: skip
                status, answer, crc_ok = fake.script.pop(0) if fake.script else (200, ITEM, True)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amz-crc32", str(zlib.crc32(data) + (0 if crc_ok else 1)))
                for name, value in fake.response_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                # Closed without saying so (no "Connection: close"), as an idle keep-alive is dropped
                self.close_connection = fake.close_after_each

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def dynamodb() -> Iterator[tuple[FakeDynamoDb, str]]:
    fake = FakeDynamoDb()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client(endpoint: str) -> AwsJsonClient:
    return AwsJsonClient("dynamodb", region="us-east-1", timeout_seconds=1.0, credentials=CREDENTIALS,
                         endpoint_url=endpoint)  # fmt: skip


def test_a_call_is_one_signed_json_post_of_botos_arguments(dynamodb: tuple[FakeDynamoDb, str]) -> None:
    fake, endpoint = dynamodb
    answer = client(endpoint).get_item(TableName="keys", Key={"key_id": {"S": "0123456789abcdef"}}, ConsistentRead=True)
    assert answer == ITEM
    assert fake.requests == [{
        "target": "DynamoDB_20120810.GetItem",
        "body": {"TableName": "keys", "Key": {"key_id": {"S": "0123456789abcdef"}}, "ConsistentRead": True},
        "authorization": fake.requests[0]["authorization"],
        "content_type": "application/x-amz-json-1.0",
        "query_mode": None,
    }]  # fmt: skip
    assert fake.requests[0]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


@pytest.mark.parametrize("failure", [
    (500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "oops"}, True),
    (400, {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}, True),
    (200, ITEM, False),  # a body that does not match its CRC32
])  # fmt: skip
def test_a_transient_failure_is_retried_once(dynamodb: tuple[FakeDynamoDb, str], failure: Any) -> None:
    fake, endpoint = dynamodb
    fake.script = [failure]
    assert client(endpoint).get_item(TableName="keys", Key={}) == ITEM
    assert len(fake.requests) == 2


def test_twice_is_the_last_try(dynamodb: tuple[FakeDynamoDb, str]) -> None:
    fake, endpoint = dynamodb
    fake.script = [(503, {"__type": "ServiceUnavailable"}, True)] * 3
    with pytest.raises(AwsServiceError) as raised:
        client(endpoint).get_item(TableName="keys", Key={})
    assert raised.value.code == "ServiceUnavailable" and len(fake.requests) == 2


def test_a_client_error_is_not_retried_and_keeps_its_code(dynamodb: tuple[FakeDynamoDb, str]) -> None:
    fake, endpoint = dynamodb
    fake.script = [(400, {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                          "message": "Requested resource not found"}, True)]  # fmt: skip
    store = DynamoDbApiKeyStore("keys", region="us-east-1", client=client(endpoint))
    with pytest.raises(DependencyUnavailableError, match="DynamoDB get_item failed: ResourceNotFoundException"):
        store.get("0123456789abcdef")
    assert len(fake.requests) == 1


def test_a_closed_kept_alive_connection_is_replaced_at_once(dynamodb: tuple[FakeDynamoDb, str]) -> None:
    # Given a server that drops each connection after answering without saying so (as an idle keep-alive
    # is dropped while a Lambda environment is frozen), then every call still succeeds with no retry allowed
    fake, endpoint = dynamodb
    fake.close_after_each = True
    dynamo = AwsJsonClient("dynamodb", region="us-east-1", timeout_seconds=1.0, credentials=CREDENTIALS,
                           endpoint_url=endpoint, max_attempts=1)  # fmt: skip
    for _ in range(3):
        assert dynamo.get_item(TableName="keys", Key={}) == ITEM
    assert len(fake.requests) == 3


def test_no_answer_is_a_transport_error_then_a_503() -> None:
    from tests.fixtures.redis_process import free_port

    dead = client(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(AwsTransportError, match="ConnectionRefusedError"):
        dead.get_item(TableName="keys", Key={})
    store = DynamoDbApiKeyStore("keys", region="us-east-1", client=dead)
    with pytest.raises(DependencyUnavailableError, match="api_keys unavailable: DynamoDB get_item failed"):
        store.get("0123456789abcdef")


def test_the_key_read_with_environment_credentials_imports_no_aws_sdk(dynamodb: tuple[FakeDynamoDb, str]) -> None:
    # Given credentials in the environment, as on Lambda, when a fresh process reads a key through the
    # store (boto3 and botocore are installed here), then it never imported them: the cold start's saving
    fake, endpoint = dynamodb
    fake.script = [(200, {}, True)]  # no such key
    code = (
        "from agent_memory.adapters.dynamodb_api_keys import DynamoDbApiKeyStore\n"
        f"store = DynamoDbApiKeyStore('keys', region='us-east-1', endpoint_url={endpoint!r})\n"
        "assert store.get('0123456789abcdef') is None"
    )
    assert aws_sdk_imported_by(code, {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}) == []
    assert fake.requests[0]["target"] == "DynamoDB_20120810.GetItem"


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    """(cert, key) PEM files for 127.0.0.1, signed by themselves."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return str(cert_path), str(key_path)


def test_https_verifies_the_server_against_the_trusted_roots_or_aws_ca_bundle(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB behind TLS with a certificate no public root signed
    import ssl

    cert, key = _self_signed(tmp_path)
    fake = FakeDynamoDb()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"https://127.0.0.1:{server.server_address[1]}"
        # When AWS_CA_BUNDLE does not name its certificate, then the call fails verification: no answer
        monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
        with pytest.raises(AwsTransportError, match="SSLCertVerificationError"):
            client(endpoint).get_item(TableName="keys", Key={})
        assert fake.requests == []
        # When it does (as botocore reads it), then the call goes through
        monkeypatch.setenv("AWS_CA_BUNDLE", cert)
        assert client(endpoint).get_item(TableName="keys", Key={}) == ITEM
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("service", "call", "target", "content_type", "query_mode"),
    [
        ("dynamodb", ("get_item", {"TableName": "t", "Key": {}}), "DynamoDB_20120810.GetItem", "1.0", None),
        ("sqs", ("send_message", {"QueueUrl": "q", "MessageBody": "b"}), "AmazonSQS.SendMessage", "1.0", "true"),
        ("secretsmanager", ("get_secret_value", {"SecretId": "s"}), "secretsmanager.GetSecretValue", "1.1", None),
        ("ssm", ("get_parameter", {"Name": "/p", "WithDecryption": True}), "AmazonSSM.GetParameter", "1.1", None),
    ],
)  # fmt: skip
def test_each_service_gets_its_target_and_protocol_version(
    dynamodb: tuple[FakeDynamoDb, str], service: str, call: tuple[str, dict[str, Any]], target: str,
    content_type: str, query_mode: str | None,
) -> None:  # fmt: skip
    # As botocore sends them: SQS, query compatible, also asks for its errors' query codes
    fake, endpoint = dynamodb
    fake.script = [(200, {}, True)]
    operation, arguments = call
    sent = AwsJsonClient(service, region="us-east-1", timeout_seconds=1.0, credentials=CREDENTIALS,
                         endpoint_url=endpoint)  # fmt: skip
    getattr(sent, operation)(**arguments)
    [request] = fake.requests
    assert (request["target"], request["content_type"], request["query_mode"]) == (
        target, f"application/x-amz-json-{content_type}", query_mode
    )  # fmt: skip
    assert request["body"] == arguments
    assert f"/us-east-1/{service}/aws4_request" in request["authorization"]


@pytest.mark.parametrize(
    ("query_error", "code"),
    [("AWS.SimpleQueueService.NonExistentQueue;Sender", "AWS.SimpleQueueService.NonExistentQueue"),
     ("", "QueueDoesNotExist"), ("NoKindGiven", "QueueDoesNotExist")],
)  # fmt: skip
def test_a_query_compatible_error_takes_its_query_code_as_botocore_does(
    dynamodb: tuple[FakeDynamoDb, str], query_error: str, code: str
) -> None:
    fake, endpoint = dynamodb
    fake.script = [(400, {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "gone"}, True)]
    if query_error:
        fake.response_headers = {"x-amzn-query-error": query_error}
    sqs = AwsJsonClient("sqs", region="us-east-1", timeout_seconds=1.0, credentials=CREDENTIALS, endpoint_url=endpoint)
    with pytest.raises(AwsServiceError) as raised:
        sqs.send_message(QueueUrl="q", MessageBody="b")
    assert (raised.value.code, raised.value.response["Error"]["Code"], raised.value.status) == (code, code, 400)
