"""BedrockLanguageModel over real HTTP: a boto3 bedrock-runtime client against the scripted Converse server
(tests/fixtures/converse_stub.py), SigV4-signed with fake credentials."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel

from agent_memory.adapters.bedrock_llm import BedrockLanguageModel
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.ports import ChatMessage
from agent_memory.services.structured_output import complete_json

MODEL = "us.amazon.nova-lite-v1:0"
CONVERSATION = [
    ChatMessage(role="system", content="You extract facts."),
    ChatMessage(role="user", content="I moved to Berlin."),
    ChatMessage(role="user", content="List the facts as JSON."),
]


def llm(stub, **kwargs) -> BedrockLanguageModel:
    return BedrockLanguageModel(model=MODEL, region="eu-west-1", endpoint_url=stub.url, **kwargs)


def test_converse_sends_system_turns_and_the_token_cap_and_returns_text_and_usage(converse_stub):
    # Given a scripted answer
    converse_stub.script("the facts")

    # When the model is asked with a system prompt, two user messages and a token cap
    completion = llm(converse_stub).complete(CONVERSATION, max_tokens=300)

    # Then the request is Converse's shape, signed, for the model; the answer and its usage come back
    [(model_id, body)] = converse_stub.requests
    assert model_id == MODEL
    assert body == {
        "messages": [
            {"role": "user", "content": [{"text": "I moved to Berlin."}, {"text": "List the facts as JSON."}]}
        ],
        "system": [{"text": "You extract facts."}],
        "inferenceConfig": {"maxTokens": 300},
    }
    assert converse_stub.headers[0]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/eu-west-1/bedrock/aws4_request" in converse_stub.headers[0]["authorization"]
    assert completion.text == "the facts"
    assert completion.total_tokens == 9 + 2  # the stub counts words: 9 in, 2 out


def test_json_mode_asks_for_json_in_the_system_prompt_and_unwraps_a_code_fence(converse_stub):
    # Given a model that wraps its JSON in a fence, as many Bedrock models do
    converse_stub.script('```json\n{"facts": ["lives in Berlin"]}\n```')

    # When asked in JSON mode
    completion = llm(converse_stub).complete(CONVERSATION, json_mode=True)

    # Then the instruction went along and the text is the bare object
    system = converse_stub.requests[0][1]["system"]
    assert system[0] == {"text": "You extract facts."} and "JSON object" in system[-1]["text"]
    assert json.loads(completion.text) == {"facts": ["lives in Berlin"]}


class Facts(BaseModel):
    facts: list[str]


def test_complete_json_recovers_from_prose_through_converse(converse_stub):
    converse_stub.script("Sure, here are the facts: Berlin", '{"facts": ["lives in Berlin"]}')
    assert complete_json(llm(converse_stub), CONVERSATION, Facts.model_validate) == Facts(facts=["lives in Berlin"])
    retry = converse_stub.requests[1][1]["messages"]
    assert [turn["role"] for turn in retry] == ["user", "assistant", "user"]
    assert retry[1]["content"] == [{"text": "Sure, here are the facts: Berlin"}]


@pytest.mark.parametrize("status", [429, 500])
def test_a_throttled_or_failed_call_is_retried_once(converse_stub, status):
    converse_stub.script({"status": status}, "recovered")
    assert llm(converse_stub).complete(CONVERSATION).text == "recovered"
    assert len(converse_stub.requests) == 2


@pytest.mark.parametrize(("status", "code"), [(429, "ThrottlingException"), (500, "InternalServerException")])
def test_a_call_failing_twice_is_dependency_unavailable_with_the_code(converse_stub, status, code):
    converse_stub.script({"status": status, "message": "try later"}, {"status": status, "message": "try later"})
    with pytest.raises(DependencyUnavailableError, match=f"HTTP {status} {code}: try later") as info:
        llm(converse_stub).complete(CONVERSATION)
    assert info.value.dependency == "llm"
    assert len(converse_stub.requests) == 2


def test_a_rejected_request_is_not_retried(converse_stub):
    converse_stub.script({"status": 400, "message": "model not enabled"}, "never sent")
    with pytest.raises(DependencyUnavailableError, match="ValidationException: model not enabled"):
        llm(converse_stub).complete(CONVERSATION)
    assert len(converse_stub.requests) == 1


def test_a_slow_answer_times_out_within_the_timeout(converse_stub):
    # Given a server that never answers in time
    converse_stub.script({"delay": 30}, {"delay": 30})

    # When a model with a 4 s budget asks
    started = time.monotonic()
    with pytest.raises(DependencyUnavailableError, match="timed out after 4s"):
        llm(converse_stub, timeout_seconds=4).complete(CONVERSATION)

    # Then it tried twice and gave up within the budget
    assert len(converse_stub.requests) == 2
    assert time.monotonic() - started <= 4.5


def test_a_short_timeout_gets_one_attempt(converse_stub):
    converse_stub.script({"delay": 30}, "never sent")
    with pytest.raises(DependencyUnavailableError, match=r"timed out after 0\.5s"):
        llm(converse_stub, timeout_seconds=0.5).complete(CONVERSATION)
    assert len(converse_stub.requests) == 1


def test_an_answer_without_text_is_an_error_not_an_empty_completion(converse_stub):
    tool_call = {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}
    converse_stub.script({"content": [tool_call], "stop": "tool_use"})
    with pytest.raises(DependencyUnavailableError, match=r"without text \(stopReason=tool_use\)"):
        llm(converse_stub).complete(CONVERSATION)


def test_a_body_that_is_not_json_is_dependency_unavailable(converse_stub):
    converse_stub.script({"body": "<html>bad gateway</html>"})
    with pytest.raises(DependencyUnavailableError) as info:
        llm(converse_stub).complete(CONVERSATION)
    assert info.value.dependency == "llm"


def test_llm_provider_bedrock_builds_the_converse_model_from_settings(converse_stub, tmp_path):
    from agent_memory.bootstrap import Container
    from tests.fixtures.app import make_settings

    # Given LLM_PROVIDER=bedrock, no OpenAI key, and the endpoint override pointing at the stub
    settings = make_settings(
        tmp_path, llm_provider="bedrock", generation_model=MODEL, bedrock_endpoint_url=converse_stub.url,
        aws_region="eu-west-1",
    )
    container = Container(settings)

    # When the container's model is used
    completion = container.language_model.complete(CONVERSATION)  # type: ignore[union-attr]

    # Then the stub answered it, and the LLM features are on
    assert completion.text == "stub answer" and converse_stub.model_ids() == [MODEL]
    assert container.features()["llm"] is True and container.backends()["llm"] == f"bedrock:{MODEL}"


def test_llm_provider_bedrock_needs_a_generation_model(tmp_path):
    from tests.fixtures.app import make_settings

    with pytest.raises(ValueError, match="LLM_PROVIDER=bedrock needs GENERATION_MODEL"):
        make_settings(tmp_path, llm_provider="bedrock")
