"""Chat completions from Amazon Bedrock's Converse API (one request shape for every Bedrock chat model)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from agent_memory.adapters.bedrock_runtime import describe_bedrock_error, make_bedrock_runtime_client
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.ports import ChatMessage, Completion

# Converse has no "any JSON object" mode (its outputConfig needs a schema, and not every model takes
# one), so JSON mode is an instruction; complete_json validates and retries whatever comes back.
_JSON_INSTRUCTION = "Answer with one JSON object and nothing else: no prose before or after it, no code fence."
_FENCED = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL)
# A conversation must open with a user turn; a transcript that opens with the assistant gets this one.
_OPENING_TURN = "(The conversation so far follows.)"


class BedrockLanguageModel:
    """A `LanguageModel` backed by bedrock-runtime `Converse`; `model` is a model id or an inference
    profile (e.g. `us.amazon.nova-lite-v1:0`).

    >>> llm = BedrockLanguageModel(model="us.amazon.nova-lite-v1:0", region="us-east-1")
    >>> llm.complete([ChatMessage(role="user", content="Say hi")]).text
    'Hi!'
    """

    def __init__(
        self,
        model: str,
        region: str = "us-east-1",
        timeout_seconds: float = 20.0,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        self.model = model
        self._timeout_seconds = timeout_seconds
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._lock = threading.Lock()

    def _bedrock(self) -> Any:
        """The client, built on the first call: importing boto3 and building a client takes a few hundred
        ms, which a cold request that never calls the LLM should not pay (the container builds the
        adapter with the working-memory service)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_bedrock_runtime_client(
                        self._region, self._timeout_seconds, endpoint_url=self._endpoint_url, dependency="llm"
                    )
        return self._client

    def complete(
        self, messages: Sequence[ChatMessage], *, json_mode: bool = False, max_tokens: int | None = None
    ) -> Completion:
        """One completion.

        Raises:
            DependencyUnavailableError: Bedrock failed, timed out, throttled after the retry, refused the
                request, or answered without text.
        """
        system, turns = converse_messages(messages)
        if json_mode:
            system.append({"text": _JSON_INSTRUCTION})
        request: dict[str, Any] = {"modelId": self.model, "messages": turns}
        if system:
            request["system"] = system
        if max_tokens is not None:
            request["inferenceConfig"] = {"maxTokens": max_tokens}
        client = self._bedrock()
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        try:
            response = client.converse(**request)
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise DependencyUnavailableError("llm", f"timed out after {self._timeout_seconds:g}s") from exc
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailableError("llm", f"bedrock {_status(exc)}{describe_bedrock_error(exc)}") from exc
        try:
            blocks = response["output"]["message"]["content"]
            texts = [block["text"] for block in blocks if "text" in block]
        except (KeyError, TypeError) as exc:
            raise DependencyUnavailableError("llm", f"malformed converse response: {exc!r}") from exc
        text = "".join(texts).strip()
        if not text:
            # A tool call, a guardrail or a content filter: no text to use, and "" would be a silent drop.
            reason = response.get("stopReason")
            raise DependencyUnavailableError("llm", f"answered without text (stopReason={reason})")
        if json_mode:
            fenced = _FENCED.match(text)
            text = fenced.group(1) if fenced else text
        usage = response.get("usage") or {}
        return Completion(text=text, total_tokens=int(usage.get("totalTokens") or 0))


def converse_messages(messages: Sequence[ChatMessage]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """`(system, messages)` in Converse's shape: system prompts apart, turns alternating user/assistant
    from a user turn (Converse refuses anything else), consecutive turns of one role joined, empty
    texts dropped (Converse refuses those too).

    >>> converse_messages([ChatMessage(role="system", content="Be brief."),
    ...                    ChatMessage(role="user", content="a"), ChatMessage(role="user", content="b")])
    ([{'text': 'Be brief.'}], [{'role': 'user', 'content': [{'text': 'a'}, {'text': 'b'}]}])
    """
    system: list[dict[str, str]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not message.content.strip():
            continue
        if message.role == "system":
            system.append({"text": message.content})
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if not turns and role == "assistant":
            turns.append({"role": "user", "content": [{"text": _OPENING_TURN}]})
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].append({"text": message.content})
        else:
            turns.append({"role": role, "content": [{"text": message.content}]})
    return system, turns


def _status(exc: Exception) -> str:
    """`HTTP 429 ` for a service error, so the message reads like the OpenAI adapter's."""
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"HTTP {status} " if status else ""
