"""OpenAILanguageModel over the SDK with a scripted transport, the retry budget, and complete_json over a
scripted LanguageModel."""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx2
import openai
import pytest
from pydantic import BaseModel

from agent_memory.adapters.openai_client import RetryBudget, refuse_unaffordable_retry
from agent_memory.adapters.openai_llm import OpenAILanguageModel
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.ports import ChatMessage, Completion
from agent_memory.services.structured_output import complete_json

USER = [ChatMessage(role="user", content="List the topics as JSON.")]


def llm_answering(*answers: dict, status: int = 200) -> tuple[OpenAILanguageModel, list[dict]]:
    bodies: list[dict] = []
    queue = list(answers)

    def handle(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(status, json=queue.pop(0))

    client = openai.DefaultHttpxClient(transport=httpx2.MockTransport(handle))
    return OpenAILanguageModel(api_key="sk-test", model="gpt-test", http_client=client), bodies


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


# --- the retry budget (adapters/openai_client.py) --------------------------------------------------


@pytest.mark.parametrize("timeout", [2.0, 3.0, 10.0, 20.0, 120.0])
def test_two_attempts_and_the_pause_between_them_fit_in_the_timeout(timeout):
    budget = RetryBudget.within(timeout)
    assert budget.max_retries == 1
    assert budget.max_pause >= 0.5  # the SDK's own first pause (0.375-0.5 s) always fits
    assert 2 * budget.attempt_timeout + budget.max_pause == pytest.approx(timeout)


def test_a_timeout_too_short_for_two_attempts_gets_one():
    assert RetryBudget.within(1.5) == RetryBudget(attempt_timeout=1.5, max_retries=0, max_pause=0.0)


@pytest.mark.parametrize(
    ("status", "headers", "refused"),
    [
        (429, {"retry-after": "1.5"}, False),  # fits in a 2 s pause: the SDK waits it out
        (429, {"retry-after": "3"}, True),
        (503, {"retry-after-ms": "2500"}, True),
        (429, {"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"}, True),  # a date: too far to wait
        (500, {}, False),  # no named pause: the SDK's jittered 0.375-0.5 s
        (400, {"retry-after": "30"}, False),  # not retried anyway: left as it is
    ],
)
def test_a_retry_the_budget_cannot_wait_for_is_refused(status, headers, refused):
    response = httpx2.Response(status, headers=headers)
    refuse_unaffordable_retry(max_pause=2.0)(response)
    assert (response.headers.get("x-should-retry") == "false") is refused


def test_a_rate_limit_is_retried_once_with_the_sdk_and_then_reported():
    # Given a server that rate-limits every request (no Retry-After)
    llm, bodies = llm_answering({"error": {"message": "slow down"}}, {"error": {"message": "slow down"}}, status=429)

    # When/Then: two attempts (the SDK's retry), then the status and message
    with pytest.raises(DependencyUnavailableError, match="HTTP 429: slow down"):
        llm.complete(USER)
    assert len(bodies) == 2


def test_the_sdk_is_imported_at_the_first_call_not_when_the_adapter_is_built():
    # In a fresh interpreter (this one has imported openai already): the container builds the adapter
    # with the working-memory service, so a request that never calls the LLM must not pay for the SDK.
    import subprocess
    import sys

    code = """if True:
        import sys
        from agent_memory.adapters.openai_embedder import OpenAIEmbedder
        from agent_memory.adapters.openai_llm import OpenAILanguageModel
        llm = OpenAILanguageModel(api_key="k", base_url="http://127.0.0.1:9/v1")
        OpenAIEmbedder(api_key="k", dimensions=8)
        print("openai" in sys.modules)
        llm._client.get()
        print("openai" in sys.modules)
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["False", "True"]
