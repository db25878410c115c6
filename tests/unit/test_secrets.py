"""Secrets Manager and SSM through Powertools (moto in-process): read, cached, refreshed, named when missing;
and the settings that keep plain secrets out of a Lambda function's environment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from agent_memory.adapters.secrets import RotatingSecret, SecretLocation, SecretReader
from agent_memory.bootstrap import Container
from agent_memory.config import Settings
from agent_memory.domain.errors import ConfigurationError

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield {"sm": boto3.client("secretsmanager", region_name=REGION), "ssm": boto3.client("ssm", region_name=REGION)}


class FakeNow:
    """Replaces the clock of Powertools' parameter cache (it compares `datetime.now()` with each entry's ttl)."""

    offset = timedelta(0)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:
        return datetime.now(tz) + cls.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[FakeNow]:
    import aws_lambda_powertools.utilities.parameters.base as base

    class Clock(FakeNow):
        offset = timedelta(0)

    monkeypatch.setattr(base, "datetime", Clock)
    return Clock


def reader(max_age: int = 300) -> SecretReader:
    return SecretReader(region=REGION, max_age_seconds=max_age, timeout_seconds=2.0)


def test_a_secrets_manager_secret_is_read_by_name_and_by_arn(aws: dict[str, Any]) -> None:
    arn = aws["sm"].create_secret(Name="openai-key", SecretString="sk-one\n")["ARN"]

    by_name = reader().read(SecretLocation.parse("OPENAI_API_KEY_SECRET", "openai-key"))
    by_arn = reader().read(SecretLocation.parse("OPENAI_API_KEY_SECRET", arn))

    assert by_name == by_arn == "sk-one"


def test_an_ssm_secure_string_is_read_decrypted(aws: dict[str, Any]) -> None:
    aws["ssm"].put_parameter(Name="/am/redis-token", Value="token-1", Type="SecureString")

    value = reader().read(SecretLocation.parse("REDIS_AUTH_TOKEN_SECRET", "ssm:/am/redis-token"))

    assert value == "token-1"


def test_a_value_is_cached_until_max_age_then_read_again(aws: dict[str, Any], clock: type[FakeNow]) -> None:
    aws["sm"].create_secret(Name="openai-key", SecretString="sk-old")
    secret = RotatingSecret(reader(max_age=300), SecretLocation.parse("OPENAI_API_KEY_SECRET", "openai-key"))
    assert secret.get() == "sk-old"

    aws["sm"].put_secret_value(SecretId="openai-key", SecretString="sk-new")  # rotation
    clock.offset = timedelta(seconds=299)
    assert secret.get() == "sk-old"  # within max_age: the cache answers, no call to AWS

    clock.offset = timedelta(seconds=301)
    assert secret.get() == "sk-new"


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
