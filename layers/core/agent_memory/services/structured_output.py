"""Getting a validated JSON object out of a language model, or a clear failure; never a partial one."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from agent_memory.domain.errors import StructuredOutputError
from agent_memory.ports import ChatMessage, LanguageModel

T = TypeVar("T")


def complete_json(
    llm: LanguageModel,
    messages: Sequence[ChatMessage],
    validate: Callable[[dict], T],
    attempts: int = 3,
    *,
    max_tokens: int | None = None,
) -> T:
    """Ask in JSON mode until `validate` accepts the answer, at most `attempts` times.

    `validate` turns the decoded object into the result or raises ValueError (pydantic's
    ValidationError is one). After a rejected answer the model sees it and the reason, which fixes
    most slips on the next try. Failures of the LLM itself are not retried here: the adapter already did.
    After the last rejected answer it raises StructuredOutputError (a DependencyUnavailableError), so a
    caller that treats the LLM as down needs nothing new, and one that must tell the two apart can.

    >>> topics = complete_json(llm, messages, lambda d: Topics.model_validate(d))
    """
    conversation = list(messages)
    problem = "no attempt made"
    for _ in range(attempts):
        answer = llm.complete(conversation, json_mode=True, max_tokens=max_tokens).text
        try:
            decoded = json.loads(answer)
            if not isinstance(decoded, dict):
                raise ValueError(f"expected a JSON object, got {type(decoded).__name__}")
            return validate(decoded)
        except ValueError as exc:  # JSONDecodeError and pydantic's ValidationError included
            problem = _short(exc)
        conversation += [
            ChatMessage(role="assistant", content=answer),
            ChatMessage(
                role="user",
                content=f"That answer was not valid: {problem}\nReply with only the corrected JSON object.",
            ),
        ]
    raise StructuredOutputError(f"gave no valid structured answer after {attempts} attempts: {problem}", attempts)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]
