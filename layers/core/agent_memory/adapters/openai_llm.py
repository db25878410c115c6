"""Chat completions from an OpenAI-compatible `/chat/completions` endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from agent_memory.adapters.openai_http import build_http_client, post_openai_json
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.ports import ChatMessage, Completion


class OpenAILanguageModel:
    """A `LanguageModel` backed by `POST {base_url}/chat/completions`.

    >>> llm = OpenAILanguageModel(api_key="sk-...", model="gpt-4o-mini")
    >>> llm.complete([ChatMessage(role="user", content="Say hi")]).text
    'Hi!'
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.openai.com/v1",
        model: str = "gpt-4o-mini",
        timeout_seconds: float = 20.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._timeout_seconds = timeout_seconds
        self._client = client or build_http_client(timeout_seconds)

    def complete(
        self, messages: Sequence[ChatMessage], *, json_mode: bool = False, max_tokens: int | None = None
    ) -> Completion:
        """One completion. With `json_mode`, OpenAI requires the word "JSON" somewhere in `messages`."""
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if json_mode:
            payload["response_format"] = {"type": "json_object"}
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        body = post_openai_json(
            self._client,
            self._url,
            payload,
            api_key=self._api_key,
            timeout_seconds=self._timeout_seconds,
            dependency="llm",
        )
        try:
            choice = body["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise DependencyUnavailableError("llm", f"malformed chat completion: {exc!r}") from exc
        if not isinstance(text, str):
            # A refusal or a tool call: there is no text to use, and an empty one would be a silent drop.
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            raise DependencyUnavailableError("llm", f"answered without text (finish_reason={reason})")
        usage = body.get("usage")
        total_tokens = usage.get("total_tokens", 0) if isinstance(usage, dict) else 0
        return Completion(text=text, total_tokens=int(total_tokens or 0))
