"""Chat completions through the official `openai` SDK: OpenAI, any OpenAI-compatible server, or Azure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent_memory.adapters.openai_client import AzureOpenAITarget, LazyOpenAIClient, openai_errors
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.ports import ChatMessage, Completion

if TYPE_CHECKING:
    from agent_memory.adapters.secrets import RotatingSecret


class OpenAILanguageModel:
    """A `LanguageModel` backed by `POST {base_url}/chat/completions` (with `azure`, by the deployment
    named `model` on that Azure OpenAI resource).

    >>> llm = OpenAILanguageModel(api_key="sk-...", model="gpt-4o-mini")
    >>> llm.complete([ChatMessage(role="user", content="Say hi")]).text
    'Hi!'
    """

    def __init__(
        self,
        api_key: str | RotatingSecret,
        base_url: str = "https://api.openai.com/v1",
        model: str = "gpt-4o-mini",
        timeout_seconds: float = 20.0,
        azure: AzureOpenAITarget | None = None,
        http_client: Any = None,
    ) -> None:
        self.model = model
        self._timeout_seconds = timeout_seconds
        self._client = LazyOpenAIClient(
            api_key=api_key,
            base_url=base_url,
            timeout_seconds=timeout_seconds,
            azure=azure,
            http_client=http_client,
            dependency="llm",
        )

    def complete(
        self, messages: Sequence[ChatMessage], *, json_mode: bool = False, max_tokens: int | None = None
    ) -> Completion:
        """One completion. With `json_mode`, OpenAI requires the word "JSON" somewhere in `messages`.

        Raises:
            DependencyUnavailableError: the server failed, timed out, refused, or answered without text.
        """
        options: dict[str, Any] = {}
        if json_mode:
            options["response_format"] = {"type": "json_object"}
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        with openai_errors("llm", self._timeout_seconds):
            response = self._client.call(
                lambda client: client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    **options,
                )
            )
        try:
            choice = response.choices[0]
            text = choice.message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise DependencyUnavailableError("llm", f"malformed chat completion: {exc!r}") from exc
        if not isinstance(text, str):
            # A refusal or a tool call: there is no text to use, and an empty one would be a silent drop.
            reason = getattr(choice, "finish_reason", None)
            raise DependencyUnavailableError("llm", f"answered without text (finish_reason={reason})")
        total_tokens = getattr(response.usage, "total_tokens", 0)
        return Completion(text=text, total_tokens=int(total_tokens or 0))
