"""The OpenAI adapters over real HTTP against the scripted stub server (tests/fixtures/openai_stub.py)."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.openai_client import AzureOpenAITarget
from agent_memory.adapters.openai_embedder import OpenAIEmbedder
from agent_memory.adapters.openai_llm import OpenAILanguageModel
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError
from agent_memory.ports import ChatMessage
from agent_memory.services.structured_output import complete_json

USER = [ChatMessage(role="user", content="Summarise as JSON.")]


def embedder(stub, **kwargs) -> OpenAIEmbedder:
    return OpenAIEmbedder(api_key="sk-stub", base_url=stub.base_url, **kwargs)


def llm(stub, **kwargs) -> OpenAILanguageModel:
    return OpenAILanguageModel(api_key="sk-stub", base_url=stub.base_url, model="gpt-stub", **kwargs)


# --- embeddings -------------------------------------------------------------------------------------


def test_embeddings_follow_the_index_even_when_the_server_answers_out_of_order(openai_stub):
    # Given a server listing embeddings in reverse order (each with its correct `index`)
    openai_stub.reverse_embedding_order = True
    texts = ["the cat sat", "stock markets fell", "protein per day"]

    # When the texts are embedded
    vectors = embedder(openai_stub, dimensions=64).embed_documents(texts)

    # Then vector i belongs to text i
    assert vectors == FakeEmbedder(dimensions=64).embed_documents(texts)  # JSON round-trips floats exactly


def test_embeddings_default_to_1536_dimensions_without_sending_the_parameter(openai_stub):
    # Given an embedder for text-embedding-3-small with no configured dimensions
    # When a query is embedded
    vector = embedder(openai_stub).embed_query("hello")

    # Then the model's native size comes back and the request did not name one
    assert len(vector) == 1536
    path, body = openai_stub.requests[0]
    assert path == "/v1/embeddings"
    assert "dimensions" not in body
    assert body["model"] == "text-embedding-3-small"


def test_embeddings_ask_for_the_configured_dimensions_with_the_api_key(openai_stub):
    # When an embedder configured for 256 dimensions embeds
    vector = embedder(openai_stub, dimensions=256).embed_query("hello")

    # Then the request asked for 256 with the bearer key, and 256 came back
    assert openai_stub.requests[0][1]["dimensions"] == 256
    assert openai_stub.headers[0]["authorization"] == "Bearer sk-stub"
    assert len(vector) == 256


def test_embeddings_of_other_models_never_send_dimensions_but_check_them(openai_stub):
    # Given a compatible server whose model is not an OpenAI text-embedding-3 (such servers often
    # reject the `dimensions` field), configured with the size its model produces
    openai_stub.native_dimensions = 48
    local = embedder(openai_stub, model="nomic-embed-text", dimensions=48)
    # Then the request names no size and the answer is checked against the configured one
    assert len(local.embed_query("hello")) == 48
    assert "dimensions" not in openai_stub.requests[0][1]
    with pytest.raises(ConfigurationError, match="returned 48-dimensional vectors, not 64"):
        embedder(openai_stub, model="nomic-embed-text", dimensions=64).embed_query("hello")


def test_embeddings_large_batches_travel_in_several_requests(openai_stub):
    # Given texts too large for one request (~300k tokens per request at most)
    texts = [f"{i} " + "word " * 24_000 for i in range(3)]

    # When they are embedded
    vectors = embedder(openai_stub, dimensions=32).embed_documents(texts)

    # Then they were split and every text got its own vector, in order
    assert [len(body["input"]) for _, body in openai_stub.requests] == [2, 1]
    assert vectors == FakeEmbedder(dimensions=32).embed_documents(texts)  # JSON round-trips floats exactly


def test_embeddings_retry_once_after_a_server_error(openai_stub):
    # Given a server failing once
    openai_stub.script_embeddings({"status": 500})

    # When a query is embedded
    vector = embedder(openai_stub, dimensions=16).embed_query("hello")

    # Then the retry's answer is returned
    assert openai_stub.paths() == ["/v1/embeddings"] * 2
    assert vector == pytest.approx(FakeEmbedder(dimensions=16).embed_query("hello"))


def test_embeddings_fail_cleanly_after_two_server_errors(openai_stub):
    openai_stub.script_embeddings({"status": 503}, {"status": 503})
    with pytest.raises(DependencyUnavailableError, match="HTTP 503") as info:
        embedder(openai_stub, dimensions=16).embed_query("hello")
    assert info.value.dependency == "embedder"
    assert len(openai_stub.requests) == 2


def test_embeddings_time_out_as_dependency_unavailable(openai_stub):
    # Given a server slower than the embedder's timeout
    openai_stub.script_embeddings({"delay": 30})

    # When/Then
    with pytest.raises(DependencyUnavailableError, match="timed out"):
        embedder(openai_stub, dimensions=16, timeout_seconds=0.3).embed_query("hello")


def test_embeddings_report_a_body_that_is_not_json(openai_stub):
    openai_stub.script_embeddings({"body": "<html>bad gateway</html>"})
    with pytest.raises(DependencyUnavailableError, match="not JSON"):
        embedder(openai_stub, dimensions=16).embed_query("hello")


# --- chat completions -------------------------------------------------------------------------------


def test_chat_returns_the_scripted_answer_and_its_token_usage(openai_stub):
    # Given a scripted answer
    openai_stub.script_chat("a short summary")

    # When the model is asked in JSON mode
    completion = llm(openai_stub).complete(USER, json_mode=True)

    # Then the answer, a usage count and the JSON request format went through
    assert completion.text == "a short summary"
    assert completion.total_tokens > 0
    path, body = openai_stub.requests[0]
    assert path == "/v1/chat/completions"
    assert body["model"] == "gpt-stub"
    assert body["response_format"] == {"type": "json_object"}


def test_chat_answers_the_default_when_nothing_is_scripted(openai_stub):
    assert llm(openai_stub).complete(USER).text == "stub summary"


def test_chat_retries_once_after_a_server_error(openai_stub):
    openai_stub.script_chat({"status": 500}, "recovered")
    assert llm(openai_stub).complete(USER).text == "recovered"
    assert openai_stub.paths() == ["/v1/chat/completions"] * 2


def test_chat_does_not_retry_a_bad_request(openai_stub):
    openai_stub.script_chat({"status": 400, "message": "bad messages"}, "never sent")
    with pytest.raises(DependencyUnavailableError, match="HTTP 400: bad messages") as info:
        llm(openai_stub).complete(USER)
    assert info.value.dependency == "llm"
    assert len(openai_stub.requests) == 1


def test_chat_times_out_as_dependency_unavailable(openai_stub):
    openai_stub.script_chat({"delay": 30, "content": "too late"})
    with pytest.raises(DependencyUnavailableError, match="timed out"):
        llm(openai_stub, timeout_seconds=0.3).complete(USER)


def test_chat_retries_a_rate_limit_after_the_pause_the_server_names(openai_stub):
    # Given a server that answers 429 with Retry-After: 1, then the answer
    openai_stub.script_chat({"status": 429, "retry_after": "1"}, "after the pause")

    # When the model is asked (a 20 s budget: a pause of up to 2 s fits)
    started = time.monotonic()
    completion = llm(openai_stub, timeout_seconds=20).complete(USER)

    # Then the retry came after the named second, and its answer is used
    assert completion.text == "after the pause"
    assert time.monotonic() - started >= 1.0
    assert len(openai_stub.requests) == 2


def test_chat_fails_at_once_when_the_named_pause_does_not_fit_the_timeout(openai_stub):
    # Given a rate limit whose Retry-After is longer than the call's budget could wait
    openai_stub.script_chat({"status": 429, "retry_after": "30", "message": "slow down"}, "never sent")

    # When/Then: one request, and the caller hears of the rate limit now rather than after 30 s
    started = time.monotonic()
    with pytest.raises(DependencyUnavailableError, match="HTTP 429: slow down"):
        llm(openai_stub, timeout_seconds=20).complete(USER)
    assert time.monotonic() - started < 2.0
    assert len(openai_stub.requests) == 1


def test_chat_retries_a_slow_answer_but_stays_within_the_timeout(openai_stub):
    # Given a server that never answers in time
    openai_stub.script_chat({"delay": 30}, {"delay": 30})

    # When a model with a 3 s timeout asks
    started = time.monotonic()
    with pytest.raises(DependencyUnavailableError, match="timed out after 3s"):
        llm(openai_stub, timeout_seconds=3).complete(USER)

    # Then it tried twice, and both attempts and the pause together took no longer than the timeout
    elapsed = time.monotonic() - started
    assert len(openai_stub.requests) == 2
    assert 2.4 <= elapsed <= 3.5


class Summary(BaseModel):
    summary: str


def test_complete_json_recovers_from_an_answer_that_is_not_json(openai_stub):
    # Given a model whose first answer is prose, and its second valid JSON
    openai_stub.script_chat("Here is your summary: cats", json.dumps({"summary": "cats"}))

    # When a structured answer is requested
    result = complete_json(llm(openai_stub), USER, Summary.model_validate)

    # Then the valid answer is returned, after a retry that showed the model its prose
    assert result == Summary(summary="cats")
    retry_messages = openai_stub.requests[1][1]["messages"]
    assert {"role": "assistant", "content": "Here is your summary: cats"} in retry_messages


def test_complete_json_gives_up_cleanly_after_three_bad_answers(openai_stub):
    openai_stub.script_chat("nope", "{}", '{"summary": 3}')
    with pytest.raises(DependencyUnavailableError, match="after 3 attempts"):
        complete_json(llm(openai_stub), USER, Summary.model_validate)
    assert len(openai_stub.requests) == 3


# --- wiring -----------------------------------------------------------------------------------------


def test_embedding_base_url_sends_embeddings_there_and_chat_to_openai_base_url(openai_stub, tmp_path):
    from agent_memory.bootstrap import Container
    from tests.fixtures.app import make_settings

    # Given embeddings served by one OpenAI-compatible server and the LLM by another address
    settings = make_settings(
        tmp_path,
        embedding_provider="openai",
        embedding_model="text-embedding-3-small",
        embedding_base_url=openai_stub.base_url,
        openai_base_url="http://127.0.0.1:9/v1",  # discard port: nothing listens
        openai_api_key="sk-stub",
    )
    container = Container(settings)
    # When each model is used
    assert len(container.embedder.embed_query("hello")) == 1536
    with pytest.raises(DependencyUnavailableError):
        container.language_model.complete(USER)  # type: ignore[union-attr]
    # Then only the embedding request reached the embedding server
    assert openai_stub.paths() == ["/v1/embeddings"]


# --- Azure OpenAI -----------------------------------------------------------------------------------


def azure(stub) -> AzureOpenAITarget:
    return AzureOpenAITarget(endpoint=stub.azure_endpoint, api_version="2024-10-21")


def test_azure_chat_goes_to_the_deployment_with_the_api_version_and_api_key(openai_stub):
    # Given an Azure OpenAI model whose deployment is "chat-deploy"
    model = OpenAILanguageModel(api_key="azure-key", model="chat-deploy", azure=azure(openai_stub))

    # When it is asked
    completion = model.complete(USER, json_mode=True)

    # Then the request took Azure's URL shape and its key header, and the deployment answered
    assert completion.text == "stub summary"
    path, body = openai_stub.requests[0]
    assert path == "/openai/deployments/chat-deploy/chat/completions?api-version=2024-10-21"
    assert openai_stub.headers[0]["api-key"] == "azure-key"
    assert "authorization" not in openai_stub.headers[0]
    assert body["response_format"] == {"type": "json_object"}


def test_azure_embeddings_go_to_the_deployment(openai_stub):
    embed = OpenAIEmbedder(api_key="azure-key", model="text-embedding-3-small", dimensions=32, azure=azure(openai_stub))
    assert embed.embed_query("hello") == pytest.approx(FakeEmbedder(dimensions=32).embed_query("hello"))
    assert openai_stub.paths() == ["/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21"]


def test_azure_errors_are_translated_like_openai_ones(openai_stub):
    openai_stub.script_chat({"status": 400, "message": "content filtered"})
    model = OpenAILanguageModel(api_key="azure-key", model="chat-deploy", azure=azure(openai_stub))
    with pytest.raises(DependencyUnavailableError, match="HTTP 400: content filtered") as info:
        model.complete(USER)
    assert info.value.dependency == "llm"


def test_llm_provider_azure_builds_an_azure_client_from_settings(openai_stub, tmp_path):
    from agent_memory.bootstrap import Container
    from tests.fixtures.app import make_settings

    # Given LLM_PROVIDER=azure with an endpoint, an API version and a deployment as GENERATION_MODEL
    settings = make_settings(
        tmp_path,
        llm_provider="azure",
        azure_openai_endpoint=openai_stub.azure_endpoint,
        openai_api_version="2025-01-01-preview",
        generation_model="summaries",
        openai_api_key="azure-key",
    )
    container = Container(settings)

    # When the container's model is used
    assert container.language_model.complete(USER).text == "stub summary"  # type: ignore[union-attr]

    # Then it spoke Azure, and health names the provider
    assert openai_stub.paths() == ["/openai/deployments/summaries/chat/completions?api-version=2025-01-01-preview"]
    assert container.backends()["llm"] == "azure:summaries"


def test_azure_settings_are_checked_at_start_up(tmp_path):
    from tests.fixtures.app import make_settings

    with pytest.raises(ValueError, match="AZURE_OPENAI_ENDPOINT"):
        make_settings(tmp_path, llm_provider="azure", generation_model="d", openai_api_key="k")
    with pytest.raises(ValueError, match="needs GENERATION_MODEL"):
        make_settings(tmp_path, llm_provider="azure", azure_openai_endpoint="https://r.openai.azure.com",
                      openai_api_key="k")
    with pytest.raises(ValueError, match="needs OPENAI_API_KEY"):
        make_settings(tmp_path, embedding_provider="azure", azure_openai_endpoint="https://r.openai.azure.com")
