"""The LLM and embedding keys from Secrets Manager (moto's server) against the scripted OpenAI-compatible stub:
the key is sent, a rotated key that the server refuses (401) is fetched again once, and a key refused
after that is a 503."""

from __future__ import annotations

from typing import Any

import pytest

from agent_memory.adapters.openai_embedder import OpenAIEmbedder
from agent_memory.adapters.openai_llm import OpenAILanguageModel
from agent_memory.adapters.secrets import RotatingSecret, SecretLocation, SecretReader
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError
from agent_memory.ports import ChatMessage
from tests.fixtures.moto_secrets import SecretsAws
from tests.fixtures.openai_stub import OpenAIStub

REGION = "us-east-1"
HI = [ChatMessage(role="user", content="hi")]


@pytest.fixture
def secrets(secrets_aws: SecretsAws) -> Any:
    return secrets_aws.sm


class Clock:
    """The secret reader's clock (seconds), moved by hand."""

    seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def rotating(name: str, clock: Clock | None = None) -> RotatingSecret:
    reader = SecretReader(region=REGION, max_age_seconds=300, timeout_seconds=2.0, clock=clock or Clock())
    return RotatingSecret(reader, SecretLocation.parse("OPENAI_API_KEY_SECRET", name))


def bearer_keys(stub: OpenAIStub) -> list[str]:
    return [headers["authorization"].removeprefix("Bearer ") for headers in stub.headers]


def test_the_llm_sends_the_key_from_the_secret(secrets: Any, openai_stub: OpenAIStub) -> None:
    secrets.create_secret(Name="openai-key", SecretString="sk-one")
    openai_stub.accepted_api_keys = {"sk-one"}
    llm = OpenAILanguageModel(api_key=rotating("openai-key"), base_url=openai_stub.base_url, timeout_seconds=5)

    assert llm.complete(HI).text == "stub summary"
    assert bearer_keys(openai_stub) == ["sk-one"]


def test_a_rotated_llm_key_is_fetched_again_after_a_401(secrets: Any, openai_stub: OpenAIStub) -> None:
    # Given an LLM that has cached sk-old
    secrets.create_secret(Name="openai-key", SecretString="sk-old")
    llm = OpenAILanguageModel(api_key=rotating("openai-key"), base_url=openai_stub.base_url, timeout_seconds=5)
    llm.complete(HI)

    # When the key is rotated: the secret holds sk-new and the server accepts only that
    secrets.put_secret_value(SecretId="openai-key", SecretString="sk-new")
    openai_stub.accepted_api_keys = {"sk-new"}
    completion = llm.complete(HI)

    # Then one 401 with the cached key, one refetch, and the call succeeds with the new key
    assert completion.text == "stub summary"
    assert bearer_keys(openai_stub) == ["sk-old", "sk-old", "sk-new"]


def test_a_key_refused_after_the_refetch_is_a_503(secrets: Any, openai_stub: OpenAIStub) -> None:
    secrets.create_secret(Name="openai-key", SecretString="sk-revoked")
    openai_stub.accepted_api_keys = {"sk-other"}
    llm = OpenAILanguageModel(api_key=rotating("openai-key"), base_url=openai_stub.base_url, timeout_seconds=5)

    with pytest.raises(DependencyUnavailableError, match="llm unavailable: HTTP 401: Incorrect API key provided"):
        llm.complete(HI)
    assert bearer_keys(openai_stub) == ["sk-revoked", "sk-revoked"]  # one refetch, not a loop


def test_a_rotated_llm_key_is_used_once_the_cache_expires_without_a_401(
    secrets: Any, openai_stub: OpenAIStub
) -> None:
    clock = Clock()
    secrets.create_secret(Name="openai-key", SecretString="sk-old")
    llm = OpenAILanguageModel(api_key=rotating("openai-key", clock), base_url=openai_stub.base_url, timeout_seconds=5)
    llm.complete(HI)
    secrets.put_secret_value(SecretId="openai-key", SecretString="sk-new")  # both keys still valid

    llm.complete(HI)  # within the max age: the cached key
    clock.seconds += 301
    llm.complete(HI)  # past it: read again before the request, no 401 needed

    assert bearer_keys(openai_stub) == ["sk-old", "sk-old", "sk-new"]


def test_a_rotated_embedding_key_is_fetched_again_after_a_401(secrets: Any, openai_stub: OpenAIStub) -> None:
    secrets.create_secret(Name="embed-key", SecretString="sk-old")
    embedder = OpenAIEmbedder(api_key=rotating("embed-key"), base_url=openai_stub.base_url, dimensions=8)
    embedder.embed_query("warm the cache")

    secrets.put_secret_value(SecretId="embed-key", SecretString="sk-new")
    openai_stub.accepted_api_keys = {"sk-new"}
    vector = embedder.embed_query("after rotation")

    assert len(vector) == 8
    assert bearer_keys(openai_stub) == ["sk-old", "sk-old", "sk-new"]


def test_a_missing_key_secret_is_a_configuration_error_naming_it(secrets: Any, openai_stub: OpenAIStub) -> None:
    llm = OpenAILanguageModel(api_key=rotating("no-such-key"), base_url=openai_stub.base_url, timeout_seconds=5)

    with pytest.raises(ConfigurationError, match=r"OPENAI_API_KEY_SECRET \(Secrets Manager secret 'no-such-key'\)"):
        llm.complete(HI)
    assert openai_stub.requests == []  # nothing sent without a key
