"""ApiKeyAuthorizer as deployed: AUTH_MODE=api_key, keys in DynamoDB (moto's server over HTTP), the event file
events/authorizer_api_key.json through the real handler and Powertools; what API Gateway makes of each answer
(401 for the `Unauthorized` exception, the request passed on with the tenant in the context otherwise)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_memory import bootstrap
from agent_memory.bootstrap import Container
from agent_memory.cli import FakeLambdaContext, load_module
from agent_memory.domain.errors import ConfigurationError
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_settings
from tests.fixtures.moto_dynamodb import REGION

REPO = Path(__file__).resolve().parents[2]
HANDLER_FILE = REPO / "functions" / "authorizer" / "authorizer_handler.py"
EVENT = REPO / "events" / "authorizer_api_key.json"


@pytest.fixture
def authorizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dynamodb_table: tuple[str, str]
) -> Iterator[tuple[Any, ApiKeyService]]:
    endpoint, table = dynamodb_table
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ApiKeyAuthorizerFunction")
    settings = make_settings(
        tmp_path, auth_mode="api_key", api_keys_table=table, dynamodb_endpoint_url=endpoint, aws_region=REGION
    )
    container = Container(settings)
    monkeypatch.setattr(bootstrap, "_container", container)
    yield load_module(HANDLER_FILE).handler, ApiKeyService(container.api_key_store)


def event(**headers: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EVENT.read_text())
    loaded["headers"] = {k: v for k, v in loaded["headers"].items() if k != "authorization"} | headers
    return loaded


def context() -> FakeLambdaContext:
    return FakeLambdaContext(function_name="ApiKeyAuthorizerFunction", timeout_seconds=5)


def test_the_event_file_key_is_unknown_so_the_gateway_answers_401(authorizer: tuple[Any, Any]) -> None:
    handler, _ = authorizer
    with pytest.raises(Exception, match=r"^Unauthorized$"):  # the one message API Gateway maps to 401
        handler(json.loads(EVENT.read_text()), context())


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_a_valid_key_is_allowed_with_its_tenant_in_the_context(authorizer: tuple[Any, Any], header: str) -> None:
    handler, keys = authorizer
    record, key = keys.create("acme", name="agent", scopes=["memory:read"])
    value = f"Bearer {key}" if header == "authorization" else key

    answer = handler(event(**{header: value}), context())

    assert answer == {
        "isAuthorized": True,
        "context": {"tenant": "acme", "subject": f"key:{record.key_id}", "key_id": record.key_id,
                    "scopes": "memory:read"},
    }  # fmt: skip


def test_header_names_in_any_case_are_read(authorizer: tuple[Any, Any]) -> None:
    handler, keys = authorizer
    _, key = keys.create("acme")

    answer = handler(event(Authorization=f"Bearer {key}"), context())

    assert answer["isAuthorized"] is True and answer["context"]["tenant"] == "acme"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no credential
        {"authorization": "Basic dXNlcjpwYXNz"},  # not a bearer token
        {"authorization": "Bearer not-a-key"},  # malformed
        {"x-api-key": "am_0123456789abcdef_" + "A" * 43},  # well-formed, unknown
    ],
)
def test_a_missing_or_bad_credential_is_unauthorized(authorizer: tuple[Any, Any], headers: dict[str, str]) -> None:
    handler, _ = authorizer
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        handler(event(**headers), context())


def test_a_revoked_or_expired_key_is_unauthorized(authorizer: tuple[Any, Any]) -> None:
    handler, keys = authorizer
    revoked, revoked_key = keys.create("acme")
    keys.revoke(revoked.key_id)
    _, wrong_secret = keys.create("acme")
    wrong_secret = wrong_secret[:-4] + ("AAAA" if not wrong_secret.endswith("AAAA") else "BBBB")

    for key in (revoked_key, wrong_secret):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            handler(event(authorization=f"Bearer {key}"), context())


def test_an_unreachable_key_table_lets_the_function_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    # Given a table endpoint where nothing listens (the function will answer 503 with Retry-After)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    settings = make_settings(tmp_path, auth_mode="api_key", api_keys_table="t", aws_region=REGION,
                             dynamodb_endpoint_url="http://127.0.0.1:9", dynamodb_timeout_seconds=0.5)
    monkeypatch.setattr(bootstrap, "_container", Container(settings))
    handler = load_module(HANDLER_FILE).handler

    answer = handler(event(authorization="Bearer am_0123456789abcdef_" + "A" * 43), context())

    # Then the request passes this gate without a tenant: nothing is granted on the authorizer's word
    assert answer == {"isAuthorized": True, "context": {"unverified": "true"}}


def test_an_authorizer_outside_api_key_mode_refuses_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(bootstrap, "_container", Container(make_settings(tmp_path, auth_mode="disabled")))
    handler = load_module(HANDLER_FILE).handler

    with pytest.raises(ConfigurationError, match="AUTH_MODE=api_key"):
        handler(event(), context())


def test_importing_the_authorizer_loads_no_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import authorizer_handler; "
        "print(','.join(m for m in ('boto3', 'redis', 'fastapi', 'agent_memory.bootstrap') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(HANDLER_FILE.parent)], capture_output=True,
                            text=True, check=True, cwd=REPO, timeout=60)
    assert result.stdout.strip() == ""


def test_in_a_lambda_environment_the_collector_is_paused_until_the_first_answer_even_a_refusal(
    tmp_path: Path,
) -> None:
    # Given a fresh process marked as a Lambda execution environment, and a wiring the authorizer refuses
    # (AUTH_MODE=disabled: its first invocation raises), when the handler module is imported and invoked
    import subprocess
    import sys

    child = (
        "import gc, json, sys; sys.path.insert(0, sys.argv[1]); import authorizer_handler\n"
        "from agent_memory.cli import FakeLambdaContext\n"
        "state = {'on_after_import': gc.isenabled()}\n"
        "try:\n"
        "    authorizer_handler.handler(json.load(open(sys.argv[2])), FakeLambdaContext())\n"
        "except Exception as exc:\n"
        "    state['raised'] = type(exc).__name__\n"
        "state |= {'on_after_first': gc.isenabled(), 'frozen': gc.get_freeze_count() > 0}\n"
        "print(json.dumps(state))"
    )
    env = {"PATH": "/usr/bin:/bin", "AGENT_MEMORY_DATA_DIR": str(tmp_path), "AUTH_MODE": "disabled",
           "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "CRITICAL",
           "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", child, str(HANDLER_FILE.parent), str(EVENT)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # Then the collector was off from the import and is back on, frozen, after the failed invocation
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "on_after_import": False, "raised": "ConfigurationError", "on_after_first": True, "frozen": True
    }  # fmt: skip
