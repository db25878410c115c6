"""OpenAILanguageModel over httpx MockTransport, and complete_json over a scripted LanguageModel."""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx
import pytest
from pydantic import BaseModel

from agent_memory.adapters.openai_llm import OpenAILanguageModel
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.ports import ChatMessage, Completion
from agent_memory.services.structured_output import complete_json

USER = [ChatMessage(role="user", content="List the topics as JSON.")]


def llm_answering(*answers: dict, status: int = 200) -> tuple[OpenAILanguageModel, list[dict]]:
    bodies: list[dict] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(status, json=queue.pop(0))

    client = httpx.Client(transport=httpx.MockTransport(handle))
    return OpenAILanguageModel(api_key="sk-test", model="gpt-test", client=client), bodies


def chat(content: str | None, total_tokens: int = 7) -> dict:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"total_tokens": total_tokens},
    }


def test_complete_returns_the_text_and_token_usage():
    # Given a model answering "hello"
    llm, bodies = llm_answering(chat("hello", total_tokens=12))

    # When asked
    completion = llm.complete(USER)

    # Then text and usage come back, and the request is a plain chat request
    assert completion == Completion(text="hello", total_tokens=12)
    assert bodies == [{"model": "gpt-test", "messages": [{"role": "user", "content": USER[0].content}]}]


def test_complete_in_json_mode_asks_for_a_json_object_and_passes_max_tokens():
    # Given a model
    llm, bodies = llm_answering(chat("{}"))

    # When asked in JSON mode with a token cap
    llm.complete(USER, json_mode=True, max_tokens=50)

    # Then the request says so
    assert bodies[0]["response_format"] == {"type": "json_object"}
    assert bodies[0]["max_tokens"] == 50


def test_complete_refuses_an_answer_without_text():
    # Given a model whose answer has no content (a refusal or a tool call)
    llm, _ = llm_answering(chat(None))

    # When/Then: an error, never an empty completion
    with pytest.raises(DependencyUnavailableError, match="without text") as info:
        llm.complete(USER)
    assert info.value.dependency == "llm"


def test_complete_reports_a_malformed_response():
    llm, _ = llm_answering({"unexpected": True})
    with pytest.raises(DependencyUnavailableError, match="malformed chat completion"):
        llm.complete(USER)


def test_complete_reports_the_status_of_a_rejected_request():
    # Given a server that rejects the request
    llm, bodies = llm_answering({"error": {"message": "model not found"}}, status=404)

    # When/Then: one attempt, and the error says why
    with pytest.raises(DependencyUnavailableError, match="HTTP 404: model not found"):
        llm.complete(USER)
    assert len(bodies) == 1


# --- complete_json ----------------------------------------------------------------------------------


class ScriptedLLM:
    model = "scripted"

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[list[ChatMessage]] = []

    def complete(
        self, messages: Sequence[ChatMessage], *, json_mode: bool = False, max_tokens: int | None = None
    ) -> Completion:
        assert json_mode
        self.calls.append(list(messages))
        return Completion(text=self.answers.pop(0))


class Topics(BaseModel):
    topics: list[str]


def test_complete_json_returns_the_validated_answer():
    llm = ScriptedLLM('{"topics": ["food"]}')
    assert complete_json(llm, USER, Topics.model_validate) == Topics(topics=["food"])


@pytest.mark.parametrize(
    "bad_answer",
    ["Sure! Here are the topics: food", '["food"]', '{"topics": "food"}'],
    ids=["not-json", "not-an-object", "fails-validation"],
)
def test_complete_json_retries_a_bad_answer_showing_the_model_its_mistake(bad_answer):
    # Given a model whose first answer is unusable
    llm = ScriptedLLM(bad_answer, '{"topics": ["food"]}')

    # When a structured answer is requested
    result = complete_json(llm, USER, Topics.model_validate)

    # Then the second answer is used, and the retry showed the bad answer and asked for a correction
    assert result == Topics(topics=["food"])
    retry = llm.calls[1]
    assert retry[: len(USER)] == USER
    assert retry[len(USER)] == ChatMessage(role="assistant", content=bad_answer)
    assert retry[-1].role == "user" and "not valid" in retry[-1].content


def test_complete_json_gives_up_after_the_attempts_with_a_clear_error():
    # Given a model that never answers JSON
    llm = ScriptedLLM("no", "still no", "never")

    # When/Then: exactly three attempts, then an error naming the last problem
    with pytest.raises(DependencyUnavailableError, match="no valid structured answer after 3 attempts"):
        complete_json(llm, USER, Topics.model_validate)
    assert len(llm.calls) == 3


def test_complete_json_does_not_retry_when_the_llm_itself_is_unavailable():
    # Given an LLM that is down (its adapter already retried)
    class DownLLM(ScriptedLLM):
        def complete(self, messages, *, json_mode=False, max_tokens=None):
            self.calls.append(list(messages))
            raise DependencyUnavailableError("llm", "HTTP 503: overloaded")

    llm = DownLLM()

    # When/Then
    with pytest.raises(DependencyUnavailableError, match="overloaded"):
        complete_json(llm, USER, Topics.model_validate)
    assert len(llm.calls) == 1


def test_the_retry_pause_is_jittered_unless_the_server_names_one():
    import httpx

    from agent_memory.adapters.openai_http import _retry_pause

    pauses = {_retry_pause(httpx.Response(429)) for _ in range(20)}
    assert all(0.25 <= p < 0.5 for p in pauses) and len(pauses) > 1
    assert _retry_pause(httpx.Response(429, headers={"retry-after": "3"})) == 3.0
