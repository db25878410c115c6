"""A DynamoDB, SQS, Secrets Manager and SSM client of the standard library: one signed JSON POST per call,
for the calls a cold start's first request makes.

Why: with AUTH_MODE=api_key every cold start's first request reads its key from DynamoDB, a stack whose
Redis AUTH token or LLM key is a secret reads it from Secrets Manager or SSM, and a first working-memory
PUT of a stack with extraction on queues its task in SQS; boto3 makes such a request wait ~0.2 s of CPU
for itself: importing botocore (urllib3's URL regexes alone are ~30 ms), then building a client (listing
~400 service model directories, loading the service model and the endpoint rules). These APIs are JSON
1.0 or 1.1 over HTTPS with a SigV4 signature (SQS's since 2023; botocore uses it too), which this
module sends with `http.client`, `hmac` and `json`: `get_item(TableName=..., Key=...)`,
`send_message(QueueUrl=..., MessageBody=...)` and every other operation take boto3's low-level arguments
and return its response dicts, whose shapes are the wire format. SQS is "query compatible": its errors
carry their former code in `x-amzn-query-error`, which becomes the error's code, as botocore makes it.

It is used only where it behaves as boto3 would (`aws_client` in `_aws.py` decides): credentials in the
environment (Lambda sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, the first source
botocore reads too), the `aws` partition's regional endpoint, an `endpoint_url` (moto, LocalStack) or the
endpoint botocore's variables name (AWS_ENDPOINT_URL_<SERVICE ID>, AWS_ENDPOINT_URL), no FIPS or
dual-stack endpoint or proxy asked for (AWS_CA_BUNDLE is honoured, as botocore does). Like the boto3
clients here: a timeout on connect and on every read, and one retry (botocore's "standard" mode with
`max_attempts=2`) after a jittered backoff, on a connection failure, a 5xx, a throttling error or a
response whose CRC32 does not match. Its failures are `AwsServiceError` (the service answered an error,
`.response` as botocore's ClientError has it) and `AwsTransportError`, which
`call_aws` maps to the same domain errors as botocore's.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import ssl
import threading
import time
import zlib
from typing import Any
from urllib.parse import urlsplit

# service -> (X-Amz-Target prefix, JSON protocol version, the service id in AWS_ENDPOINT_URL_<ID>)
JSON_TARGETS = {
    "dynamodb": ("DynamoDB_20120810", "1.0", "DYNAMODB"),
    "sqs": ("AmazonSQS", "1.0", "SQS"),
    "secretsmanager": ("secretsmanager", "1.1", "SECRETS_MANAGER"),
    "ssm": ("AmazonSSM", "1.1", "SSM"),
}
_QUERY_COMPATIBLE = frozenset({"sqs"})  # errors also carry their query-protocol code (x-amzn-query-error)
_ENDPOINT_VARIANTS = ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
_THROTTLING = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "RequestTimeout", "RequestTimeoutException",
}  # fmt: skip  (botocore's standard retry mode: its throttling and transient error codes)


class AwsServiceError(Exception):
    """The service answered with an error; `.response` has botocore's ClientError shape."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
        self.code = code
        self.status = status


class AwsTransportError(Exception):
    """No usable answer: the connection failed or timed out, or the body did not match its checksum."""


def environment_credentials() -> tuple[str, str, str | None] | None:
    """(access key, secret key, session token) from the environment, botocore's first credential source."""
    access_key, secret_key = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        return None
    return access_key, secret_key, os.environ.get("AWS_SESSION_TOKEN") or None


def proxy_in_environment() -> bool:
    """Whether the environment asks botocore for a proxy, which this client does not do: boto3 is used then."""
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


def configured_endpoint(service: str) -> str | None:
    """The endpoint the environment names for `service`, as botocore reads it: AWS_ENDPOINT_URL_<SERVICE
    ID> (AWS_ENDPOINT_URL_SECRETS_MANAGER), else AWS_ENDPOINT_URL; neither with
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    service_id = JSON_TARGETS[service][2] if service in JSON_TARGETS else service.upper()
    return os.environ.get(f"AWS_ENDPOINT_URL_{service_id}") or os.environ.get("AWS_ENDPOINT_URL") or None


def regional_endpoint(service: str, region: str) -> str | None:
    """https://<service>.<region>.amazonaws.com for the `aws` partition; None where boto3 should decide
    (other partitions, FIPS or dual-stack endpoints asked for)."""
    if any(os.environ.get(name, "").lower() == "true" for name in _ENDPOINT_VARIANTS):
        return None
    if not region or region.startswith(("cn-", "us-iso", "eu-isoe", "us-gov")) or "-" not in region:
        return None
    return f"https://{service}.{region}.amazonaws.com"


def sigv4_headers(
    *, url: str, body: bytes, headers: dict[str, str], service: str, region: str,
    credentials: tuple[str, str, str | None], now: datetime.datetime,
) -> dict[str, str]:  # fmt: skip
    """`headers` plus Host, X-Amz-Date, X-Amz-Security-Token and the SigV4 Authorization of a POST to `url`
    (path "/", no query), every header signed, as botocore's SigV4Auth signs them."""
    access_key, secret_key, token = credentials
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    signed = {**headers, "Host": host, "X-Amz-Date": amz_date}
    if token:
        signed["X-Amz-Security-Token"] = token
    canonical = {name.lower(): " ".join(value.split()) for name, value in signed.items()}
    names = sorted(canonical)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    request = "\n".join([
        "POST", parts.path or "/", "", "".join(f"{n}:{canonical[n]}\n" for n in names), ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ])  # fmt: skip
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    key = f"AWS4{secret_key}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


def _pascal(operation: str) -> str:
    return "".join(word.capitalize() for word in operation.split("_"))


class AwsJsonClient:
    """boto3's low-level client interface for a JSON service (DynamoDB, SQS, Secrets Manager, SSM), over one
    kept-alive connection per thread.

    Example::

        client = AwsJsonClient("dynamodb", region="us-east-1", timeout_seconds=1.0,
                               credentials=environment_credentials())
        client.get_item(TableName="agent-memory-api-keys", Key={"key_id": {"S": "0123456789abcdef"}})
    """

    def __init__(
        self, service: str, *, region: str, timeout_seconds: float, credentials: tuple[str, str, str | None],
        endpoint_url: str | None = None, max_attempts: int = 2,
    ) -> None:  # fmt: skip
        endpoint = endpoint_url or configured_endpoint(service) or regional_endpoint(service, region)
        if endpoint is None or service not in JSON_TARGETS:
            raise ValueError(f"no JSON endpoint for {service} in {region!r}")
        self.url = endpoint.rstrip("/") + "/"
        self._parts = urlsplit(self.url)
        self._service = service
        self._region = region
        self._timeout = timeout_seconds
        self._credentials = credentials
        self._max_attempts = max_attempts
        self._local = threading.local()

    def __getattr__(self, operation: str) -> Any:
        if operation.startswith("_"):
            raise AttributeError(operation)

        def call(**arguments: Any) -> dict[str, Any]:
            return self.call(_pascal(operation), arguments)

        return call

    def call(self, operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """POST one operation ("GetItem"); retried once on what botocore's standard mode retries."""
        body = json.dumps(arguments, separators=(",", ":")).encode()
        target = f"{JSON_TARGETS[self._service][0]}.{operation}"
        for attempt in range(1, self._max_attempts + 1):
            try:
                return self._send(target, body)
            except (AwsServiceError, AwsTransportError) as exc:
                retryable = isinstance(exc, AwsTransportError) or exc.status >= 500 or exc.code in _THROTTLING
                if not retryable or attempt == self._max_attempts:
                    raise
            time.sleep(random.random() * 2 ** (attempt - 1))  # botocore's standard backoff, base 1 s
        raise AssertionError("unreachable")

    def _send(self, target: str, body: bytes) -> dict[str, Any]:
        plain = {"Content-Type": f"application/x-amz-json-{JSON_TARGETS[self._service][1]}", "X-Amz-Target": target}
        if self._service in _QUERY_COMPATIBLE:
            plain["x-amzn-query-mode"] = "true"  # as botocore asks: the error's query code in x-amzn-query-error
        headers = sigv4_headers(
            url=self.url, body=body, service=self._service, region=self._region, credentials=self._credentials,
            headers=plain, now=datetime.datetime.now(datetime.UTC),
        )  # fmt: skip
        reused = getattr(self._local, "connection", None) is not None
        try:
            response, data = self._exchange(headers, body)
        except (ConnectionError, http.client.RemoteDisconnected) as exc:
            if not reused:
                raise AwsTransportError(type(exc).__name__) from exc
            # A kept-alive connection the server closed while idle (a frozen Lambda's, say): a new one at once
            try:
                response, data = self._exchange(headers, body)
            except (OSError, http.client.HTTPException) as again:
                raise AwsTransportError(type(again).__name__) from again
        except (OSError, http.client.HTTPException) as exc:  # refused, timed out, cut short
            raise AwsTransportError(type(exc).__name__) from exc
        crc = response.getheader("x-amz-crc32")
        if crc is not None and zlib.crc32(data) != int(crc):
            raise AwsTransportError("CRC32 mismatch")
        try:
            parsed: dict[str, Any] = json.loads(data) if data else {}
        except ValueError as exc:
            raise AwsTransportError("unparsable response") from exc
        if response.status >= 300:
            code = str(parsed.get("__type", "") or response.getheader("x-amzn-ErrorType", "") or response.status)
            code = code.split(":", 1)[0].rsplit("#", 1)[-1]
            query_code, _, kind = (response.getheader("x-amzn-query-error") or "").partition(";")
            if query_code and kind:  # botocore's reading of a query-compatible service's error
                code = query_code
            message = str(parsed.get("message") or parsed.get("Message") or "")
            raise AwsServiceError(code, message, response.status)
        return parsed

    def _exchange(self, headers: dict[str, str], body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        connection = self._connection()
        try:
            connection.request("POST", self._parts.path or "/", body=body, headers=headers)
            response = connection.getresponse()
            return response, response.read()
        except BaseException:
            connection.close()
            self._local.connection = None
            raise

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            host, port = self._parts.hostname or "", self._parts.port
            if self._parts.scheme == "https":
                # botocore's verify: AWS_CA_BUNDLE when set, else the trusted roots
                context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
                connection = http.client.HTTPSConnection(host, port, timeout=self._timeout, context=context)
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
            self._local.connection = connection
        return connection


__all__ = [
    "AwsJsonClient", "AwsServiceError", "AwsTransportError", "configured_endpoint", "environment_credentials",
    "proxy_in_environment", "regional_endpoint", "sigv4_headers",
]  # fmt: skip
