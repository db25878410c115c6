"""Secrets Manager and SSM on moto's server (over real HTTP), through the reader's own JSON client and through a
boto3 client: read, cached, refreshed, named when missing; and the settings that keep plain secrets out of a
Lambda function's environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent_memory.adapters._aws_json import AwsJsonClient
from agent_memory.adapters.secrets import RotatingSecret, SecretLocation, SecretReader
from agent_memory.bootstrap import Container
from agent_memory.config import Settings
from agent_memory.domain.errors import ConfigurationError
from tests.fixtures.aws_sdk import aws_sdk_imported_by
from tests.fixtures.moto_secrets import SecretsAws

REGION = "us-east-1"


@pytest.fixture
def aws(secrets_aws: SecretsAws) -> dict[str, Any]:
    return {"sm": secrets_aws.sm, "ssm": secrets_aws.ssm}


class FakeClock:
    """The reader's clock (seconds), moved by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def reader(max_age: int = 300, clock: FakeClock | None = None) -> SecretReader:
    if clock is None:
        return SecretReader(region=REGION, max_age_seconds=max_age, timeout_seconds=2.0)
    return SecretReader(region=REGION, max_age_seconds=max_age, timeout_seconds=2.0, clock=clock)


def test_a_secrets_manager_secret_is_read_by_name_and_by_arn(aws: dict[str, Any]) -> None:
    arn = aws["sm"].create_secret(Name="openai-key", SecretString="sk-one\n")["ARN"]

    by_name = reader().read(SecretLocation.parse("OPENAI_API_KEY_SECRET", "openai-key"))
    by_arn = reader().read(SecretLocation.parse("OPENAI_API_KEY_SECRET", arn))

    assert by_name == by_arn == "sk-one"


def test_an_ssm_secure_string_is_read_decrypted(aws: dict[str, Any]) -> None:
    aws["ssm"].put_parameter(Name="/am/redis-token", Value="token-1", Type="SecureString")

    value = reader().read(SecretLocation.parse("REDIS_AUTH_TOKEN_SECRET", "ssm:/am/redis-token"))

    assert value == "token-1"


def test_a_value_is_cached_until_max_age_then_read_again(aws: dict[str, Any]) -> None:
    aws["sm"].create_secret(Name="openai-key", SecretString="sk-old")
    clock = FakeClock()
    location = SecretLocation.parse("OPENAI_API_KEY_SECRET", "openai-key")
    secret = RotatingSecret(reader(max_age=300, clock=clock), location)
    assert secret.get() == "sk-old"

    aws["sm"].put_secret_value(SecretId="openai-key", SecretString="sk-new")  # rotation
    clock.seconds += 299
    assert secret.get() == "sk-old"  # within max_age: the cache answers, no call to AWS

    clock.seconds += 2
    assert secret.get() == "sk-new"


def test_the_reader_uses_the_json_client_and_a_given_boto3_client_reads_the_same(
    aws: dict[str, Any], secrets_aws: SecretsAws
) -> None:
    # Given credentials in the environment (as on Lambda), the reader's own client is the standard library's
    aws["sm"].create_secret(Name="openai-key", SecretString="sk-one")
    aws["ssm"].put_parameter(Name="/am/token", Value="token-1", Type="SecureString")
    own = reader()
    given = SecretReader(region=REGION, max_age_seconds=300, timeout_seconds=2.0, clients={
        "secretsmanager": aws["sm"], "ssm": aws["ssm"]})  # fmt: skip
    for location in (SecretLocation.parse("OPENAI_API_KEY_SECRET", "openai-key"),
                     SecretLocation.parse("REDIS_AUTH_TOKEN_SECRET", "ssm:/am/token")):  # fmt: skip
        assert own.read(location) == given.read(location)
    assert isinstance(own._clients["secretsmanager"], AwsJsonClient)
    assert isinstance(own._clients["ssm"], AwsJsonClient)
    assert own._clients["ssm"].url == secrets_aws.endpoint + "/"  # AWS_ENDPOINT_URL_SSM, as botocore reads it
    missing = SecretLocation.parse("OPENAI_API_KEY_SECRET", "gone")
    for each in (own, given):
        with pytest.raises(ConfigurationError, match="could not be read: ResourceNotFoundException"):
            each.read(missing)


def test_a_binary_secret_is_refused(aws: dict[str, Any]) -> None:
    aws["sm"].create_secret(Name="blob", SecretBinary=b"\x00\x01")
    with pytest.raises(ConfigurationError, match=r"\(Secrets Manager secret 'blob'\) holds binary data"):
        reader().read(SecretLocation.parse("OPENAI_API_KEY_SECRET", "blob"))


def test_no_answer_is_a_configuration_error_naming_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.redis_process import free_port

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")):  # fmt: skip
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=r"OPENAI_API_KEY_SECRET .* could not be read: AwsTransportError"):
        reader().read(SecretLocation.parse("OPENAI_API_KEY_SECRET", "openai-key"))


def test_a_secret_read_with_environment_credentials_imports_no_aws_sdk(aws: dict[str, Any]) -> None:
    # Given credentials in the environment, as on Lambda, when a fresh process reads a secret (boto3,
    # botocore and Powertools are installed here), then it imported none of boto3, botocore or urllib3
    aws["sm"].create_secret(Name="redis-token", SecretString="token-1")
    code = (
        "from agent_memory.adapters.secrets import SecretLocation, SecretReader\n"
        "reader = SecretReader(region='us-east-1', max_age_seconds=300, timeout_seconds=2.0)\n"
        "assert reader.read(SecretLocation.parse('REDIS_AUTH_TOKEN_SECRET', 'redis-token')) == 'token-1'"
    )
    assert aws_sdk_imported_by(code, {k: v for k, v in os.environ.items() if k.startswith("AWS_")}) == []


def test_refresh_reads_past_the_cache(aws: dict[str, Any]) -> None:
    aws["sm"].create_secret(Name="openai-key", SecretString="sk-old")
    secret = RotatingSecret(reader(max_age=300), SecretLocation.parse("OPENAI_API_KEY_SECRET", "openai-key"))
    secret.get()
    aws["sm"].put_secret_value(SecretId="openai-key", SecretString="sk-new")

    assert secret.refresh() == "sk-new"
    assert secret.get() == "sk-new"


@pytest.mark.parametrize(
    ("reference", "named"),
    [("no-such-secret", "Secrets Manager secret 'no-such-secret'"), ("ssm:/no/such", "SSM parameter '/no/such'")],
)
def test_a_missing_secret_is_a_configuration_error_naming_the_setting_and_the_secret(
    aws: dict[str, Any], reference: str, named: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        reader().read(SecretLocation.parse("OPENAI_API_KEY_SECRET", reference))

    assert raised.value.detail.startswith(f"OPENAI_API_KEY_SECRET ({named}) could not be read")
    assert "ParameterNotFound" in raised.value.detail or "ResourceNotFoundException" in raised.value.detail


def test_an_empty_secret_is_refused(aws: dict[str, Any]) -> None:
    aws["sm"].create_secret(Name="blank", SecretString="  ")

    empty = r"EMBEDDING_API_KEY_SECRET \(Secrets Manager secret 'blank'\) is empty"
    with pytest.raises(ConfigurationError, match=empty):
        reader().read(SecretLocation.parse("EMBEDDING_API_KEY_SECRET", "blank"))


def test_an_empty_reference_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY_SECRET is empty"):
        SecretLocation.parse("OPENAI_API_KEY_SECRET", "ssm:")


# --- settings -------------------------------------------------------------------------------------


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def on_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ApiFunction")


LAMBDA_BASE: dict[str, object] = {"auth_mode": "api_key"}  # AUTH_MODE=disabled is refused on Lambda too


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"openai_api_key": "sk-plain"}, "OPENAI_API_KEY is refused on Lambda: .* set OPENAI_API_KEY_SECRET"),
        ({"embedding_api_key": "sk-plain"}, "EMBEDDING_API_KEY is refused on Lambda: .* EMBEDDING_API_KEY_SECRET"),
        ({"redis_url": "rediss://:tok@cache:6379/0"}, "password inside REDIS_URL is refused on Lambda: .* "
                                                     "REDIS_AUTH_TOKEN_SECRET"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("on_lambda")
def test_plain_secrets_are_refused_on_lambda_naming_the_secret_setting(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(**LAMBDA_BASE, **values)


@pytest.mark.usefixtures("on_lambda")
def test_secret_settings_are_accepted_on_lambda_and_turn_the_llm_on() -> None:
    settings = _settings(
        **LAMBDA_BASE,
        openai_api_key_secret="openai-key",
        redis_url="rediss://cache:6379/0",
        redis_auth_token_secret="ssm:/am/redis",
        embedding_provider="openai",
    )

    assert settings.llm_enabled


def test_locally_plain_keys_work_as_before() -> None:
    assert _settings(openai_api_key="sk-local", redis_url="redis://:pw@localhost:6379/0").llm_enabled


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"openai_api_key": "a", "openai_api_key_secret": "b"}, "OPENAI_API_KEY or OPENAI_API_KEY_SECRET, not both"),
        ({"redis_url": "redis://:pw@h:6379", "redis_auth_token_secret": "t"}, "keep only the secret"),
        ({"embedding_provider": "openai"}, "needs OPENAI_API_KEY or OPENAI_API_KEY_SECRET"),
    ],
)
def test_ambiguous_or_missing_key_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(**values)


def test_the_embedding_key_defaults_to_the_llm_secret_and_its_own_secret_wins(tmp_path: Path) -> None:
    shared = Container(_settings(AGENT_MEMORY_DATA_DIR=tmp_path, openai_api_key_secret="llm-key"))
    own = Container(_settings(AGENT_MEMORY_DATA_DIR=tmp_path, openai_api_key_secret="llm-key",
                              embedding_api_key_secret="ssm:/embed"))  # fmt: skip

    assert shared._embedding_api_key() is shared._llm_api_key()  # one secret, one cache entry
    assert own._embedding_api_key().location == SecretLocation("EMBEDDING_API_KEY_SECRET", "ssm", "/embed")


def test_startup_names_a_missing_secret(aws: dict[str, Any], tmp_path: Path) -> None:
    container = Container(_settings(AGENT_MEMORY_DATA_DIR=tmp_path, openai_api_key_secret="gone",
                                    long_term_memory=False, embedding_provider="fake"))  # fmt: skip

    with pytest.raises(ConfigurationError, match=r"OPENAI_API_KEY_SECRET \(Secrets Manager secret 'gone'\)"):
        container.check_startup()


@pytest.mark.parametrize("command", [["init"], ["serve", "--port", "1"]])
def test_serve_and_init_refuse_to_start_naming_the_missing_secret(
    aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:  # fmt: skip
    from agent_memory import bootstrap, cli

    container = Container(_settings(AGENT_MEMORY_DATA_DIR=tmp_path, redis_url="redis://127.0.0.1:1/0",
                                    redis_auth_token_secret="ssm:/am/gone", embedding_provider="fake"))  # fmt: skip
    monkeypatch.setattr(bootstrap, "_container", container)

    assert cli.main(command) == 2
    message = "cannot start: REDIS_AUTH_TOKEN_SECRET (SSM parameter '/am/gone') could not be read"
    assert message in capsys.readouterr().err
