"""The four extraction strategies of AMS (§3.4): what each asks the LLM, and how its answer is checked.

A strategy turns a conversation into `Extracted` memories, or raises: StructuredOutputError when the
LLM never gave a valid answer (after retries with the error fed back), InvalidInputError when the
session's strategy configuration can never work (a custom prompt that fails the injection check).

Grounding is the prompt's job, as in AMS, but the prompt gets what it needs: every message with its
own timestamp, so "yesterday" in a message from 3 May becomes 2 May, not the day the task runs.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent_memory.domain.errors import InvalidInputError
from agent_memory.domain.models import MemoryMessage, MemoryStrategyConfig, UtcDatetime, format_datetime
from agent_memory.ports import ChatMessage, LanguageModel
from agent_memory.services.structured_output import complete_json

logger = logging.getLogger(__name__)

# The conversation shown to the LLM: the newest messages up to this many characters (about 15k tokens).
MAX_CONVERSATION_CHARS = 60_000
MAX_MEMORIES = 100
MAX_MEMORY_CHARS = 2_000
MAX_CUSTOM_MEMORY_CHARS = 1_000

_OUTPUT_SHAPE = """Answer with one JSON object and nothing else:
{"memories": [{"type": "semantic" or "episodic", "text": "...", "topics": ["..."], "entities": ["..."],
"event_date": "ISO-8601 date-time of the event, or null"}]}
Use {"memories": []} when there is nothing worth remembering."""

_GROUNDING = """Each memory must stand on its own, read months later without the conversation:
- Write the application's user as "User", never by name or as "I"/"you"; replace every other pronoun
  (he, she, it, they, there, that) with the person, thing or place it refers to.
- Make every relative time absolute using the timestamp of the message that says it ("yesterday" in a
  message dated 2024-05-03 is 2024-05-02; "next month" is the month and year), and put it in event_date.
- Name what definite references point to ("the meeting" -> which meeting)."""

DISCRETE_PROMPT = """You extract long-term memories from a conversation between a user and an assistant.
Extract:
- semantic memories: lasting facts and preferences about the user or their world (type "semantic");
- episodic memories: things that happened or will happen at a particular time (type "episodic").
Skip greetings, small talk, and what the assistant said unless the user confirmed it.

{grounding}

{shape}

Session: {session}
Conversation (each line: [timestamp] ROLE: text):
{conversation}"""

PREFERENCES_PROMPT = """You extract the user's preferences from a conversation: likes, dislikes, habits,
choices, settings and ways they want things done. Every memory has type "semantic". Ignore other facts.

{grounding}

{shape}

Session: {session}
Conversation (each line: [timestamp] ROLE: text):
{conversation}"""

SUMMARY_PROMPT = """Summarize this conversation between a user and an assistant in at most {max_words} words:
the user's goals, the facts and decisions that matter later, and open questions. Write "User" for the
user; make relative dates absolute from the message timestamps.
Answer with one JSON object and nothing else: {{"summary": "..."}}

Conversation (each line: [timestamp] ROLE: text):
{conversation}"""


@dataclass(frozen=True)
class Conversation:
    """What a strategy sees of a session: its scope and its messages, oldest first."""

    session_id: str
    namespace: str | None
    user_id: str | None
    messages: Sequence[MemoryMessage]

    def transcript(self, limit: int = MAX_CONVERSATION_CHARS) -> str:
        """One `[timestamp] ROLE: text` line per message; the newest lines that fit in `limit`."""
        lines: list[str] = []
        size = 0
        for message in reversed(self.messages):
            line = f"[{format_datetime(message.created_at)}] {message.role.upper()}: {message.content}"
            if lines and size + len(line) > limit:
                break
            lines.append(line[:limit])
            size += len(line) + 1
        return "\n".join(reversed(lines))

    def describe(self) -> str:
        parts = [f"session_id={self.session_id}"]
        if self.namespace:
            parts.append(f"namespace={self.namespace}")
        if self.user_id:
            parts.append(f"user_id={self.user_id}")
        if self.messages:
            parts.append(f"latest message at {format_datetime(self.messages[-1].created_at)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Extracted:
    memory_type: Literal["semantic", "episodic"]
    text: str
    topics: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    event_date: datetime | None = None


def _tags(values: Any) -> list[str]:
    """Topics/entities: strings, trimmed, deduplicated, without commas (the stores' tag separator)."""
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("must be a list of strings")
    cleaned: list[str] = []
    for value in values:
        tag = " ".join(value.replace(",", " ").split())[:100]
        if tag and tag not in cleaned:
            cleaned.append(tag)
    return cleaned[:20]


class _Memory(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["semantic", "episodic"]
    text: str = Field(min_length=1, max_length=MAX_MEMORY_CHARS)
    topics: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    event_date: UtcDatetime | None = None

    @field_validator("text", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("topics", "entities", mode="before")
    @classmethod
    def _clean_tags(cls, value: Any) -> list[str]:
        return _tags(value)

    @field_validator("event_date", mode="before")
    @classmethod
    def _blank_date(cls, value: Any) -> Any:
        return None if value in ("", "null", "None") else value


class _Memories(BaseModel):
    model_config = ConfigDict(extra="ignore")

    memories: list[_Memory] = Field(max_length=MAX_MEMORIES)


def parse_memories(answer: dict[str, Any]) -> list[Extracted]:
    """The AMS extraction shape, validated; ValueError (fed back to the LLM) when it is not that shape.

    >>> parse_memories({"memories": [{"type": "semantic", "text": " User likes tea ", "topics": ["tea, drinks"]}]})
    [Extracted(memory_type='semantic', text='User likes tea', topics=['tea drinks'], entities=[], event_date=None)]
    """
    parsed = _Memories.model_validate(answer)
    return [Extracted(m.type, m.text, m.topics, m.entities, m.event_date) for m in parsed.memories]


class Strategy:
    """One extraction strategy; `extract` is the only entry point."""

    name = "discrete"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def extract(self, llm: LanguageModel, conversation: Conversation) -> list[Extracted]:
        prompt = DISCRETE_PROMPT.format(
            grounding=_GROUNDING, shape=_OUTPUT_SHAPE, session=conversation.describe(),
            conversation=conversation.transcript(),
        )
        return complete_json(llm, [ChatMessage(role="user", content=prompt)], parse_memories)


class DiscreteStrategy(Strategy):
    name = "discrete"


class PreferencesStrategy(Strategy):
    name = "preferences"

    def extract(self, llm: LanguageModel, conversation: Conversation) -> list[Extracted]:
        prompt = PREFERENCES_PROMPT.format(
            grounding=_GROUNDING, shape=_OUTPUT_SHAPE, session=conversation.describe(),
            conversation=conversation.transcript(),
        )

        def semantic_only(answer: dict[str, Any]) -> list[Extracted]:
            memories = parse_memories(answer)
            if any(m.memory_type != "semantic" for m in memories):
                raise ValueError('every preference must have type "semantic"')
            return memories

        return complete_json(llm, [ChatMessage(role="user", content=prompt)], semantic_only)


class SummaryStrategy(Strategy):
    name = "summary"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        words = config.get("max_summary_length", 500)
        if not isinstance(words, int) or isinstance(words, bool) or not 10 <= words <= 5000:
            raise InvalidInputError(f"summary max_summary_length must be an integer 10..5000, got {words!r}")
        self.max_words = words
        extra = config.get("topics", [])
        try:
            self.topics = _tags(extra)
        except ValueError as exc:
            raise InvalidInputError(f"summary topics {exc}") from None

    def extract(self, llm: LanguageModel, conversation: Conversation) -> list[Extracted]:
        prompt = SUMMARY_PROMPT.format(max_words=self.max_words, conversation=conversation.transcript())

        def summary(answer: dict[str, Any]) -> list[Extracted]:
            text = answer.get("summary")
            if not isinstance(text, str) or not text.strip():
                raise ValueError('the answer has no "summary" text')
            text = " ".join(text.split())
            # Some slack: models count words loosely, and a slightly long summary beats a failed task.
            if len(text.split()) > self.max_words * 1.25:
                raise ValueError(f"the summary has {len(text.split())} words; at most {self.max_words}")
            return [Extracted("semantic", text, topics=["summary", *self.topics])]

        return complete_json(llm, [ChatMessage(role="user", content=prompt)], summary)


# AMS prompt_security: the shapes of prompt injection and template abuse a custom prompt must not have.
_INJECTION = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"ignore\s+(all\s+)?(the\s+)?(previous|prior|above|earlier)\s+(instructions|prompts?|rules)",
        r"disregard\s+(all\s+)?(the\s+)?(previous|prior|above|earlier|your)",
        r"forget\s+(all\s+)?(your|the|previous)\s+(instructions|rules)",
        r"you\s+are\s+now\b",
        r"\b(reveal|print|show|repeat)\s+(me\s+)?(your|the)\s+(system\s+)?(prompt|instructions)",
        r"\bsystem\s*prompt\b",
        r"\b(api[_\s-]?key|password|secret|credentials?)\b",
        r"<\s*/?\s*(system|assistant|im_start|im_end)\b",
        r"\bexec\s*\(|\beval\s*\(|\bimport\s+os\b|__\w+__",
    )
]
CUSTOM_VARIABLES = frozenset(
    {"message", "current_datetime", "session_id", "namespace", "user_id", "model_name", "context", "topics",
     "entities"}
)
# Words a custom strategy's memory must not contain (AMS filters them out of custom outputs).
_FORBIDDEN_OUTPUT = re.compile(r"\b(system|instructions?|password|token|secret|api[_\s-]?key)\b", re.IGNORECASE)


def check_custom_prompt(prompt: Any, config: dict[str, Any]) -> str:
    """The custom prompt when it is safe to format; InvalidInputError naming the problem otherwise.

    >>> check_custom_prompt("Facts about {user_id} in: {message}", {})
    'Facts about {user_id} in: {message}'
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInputError("custom strategy needs a non-empty custom_prompt")
    if len(prompt) > 10_000:
        raise InvalidInputError("custom_prompt is longer than 10000 characters")
    for pattern in _INJECTION:
        if pattern.search(prompt):
            raise InvalidInputError(f"custom_prompt looks like prompt injection ({pattern.pattern[:40]}...)")
    allowed = CUSTOM_VARIABLES | {k for k in config if isinstance(k, str) and k.isidentifier()}
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(prompt) if name is not None]
    except ValueError as exc:
        raise InvalidInputError(f"custom_prompt is not a valid template: {exc}") from None
    for name in fields:
        if not name.isidentifier():  # attribute or index access: {x.__class__}, {x[0]}, positional {}
            raise InvalidInputError(f"custom_prompt variable {{{name}}} is not a plain name")
        if name not in allowed:
            raise InvalidInputError(f"custom_prompt uses unknown variable {{{name}}}; allowed: {sorted(allowed)}")
    return prompt


class CustomStrategy(Strategy):
    name = "custom"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.prompt = check_custom_prompt(config.get("custom_prompt"), config)

    def extract(self, llm: LanguageModel, conversation: Conversation) -> list[Extracted]:
        transcript = conversation.transcript()
        values: dict[str, Any] = {
            k: v for k, v in self.config.items() if k != "custom_prompt" and isinstance(v, str | int | float)
        }
        values.update(
            message=transcript,
            current_datetime=format_datetime(conversation.messages[-1].created_at) if conversation.messages else "",
            session_id=conversation.session_id,
            namespace=conversation.namespace or "",
            user_id=conversation.user_id or "",
            model_name=llm.model,
            context="",
            topics="",
            entities="",
        )
        prompt = self.prompt.format_map(values)
        if "{message}" not in self.prompt:
            prompt += f"\n\nConversation (each line: [timestamp] ROLE: text):\n{transcript}"
        prompt += "\n\n" + _OUTPUT_SHAPE
        memories = complete_json(llm, [ChatMessage(role="user", content=prompt)], parse_memories)
        kept = [m for m in memories if len(m.text) <= MAX_CUSTOM_MEMORY_CHARS and not _FORBIDDEN_OUTPUT.search(m.text)]
        if len(kept) < len(memories):
            logger.warning("custom strategy output filtered: dropped=%d kept=%d", len(memories) - len(kept), len(kept))
        return kept


_STRATEGIES: dict[str, type[Strategy]] = {
    "discrete": DiscreteStrategy,
    "summary": SummaryStrategy,
    "preferences": PreferencesStrategy,
    "custom": CustomStrategy,
}


def strategy_for(config: MemoryStrategyConfig) -> Strategy:
    """The strategy a session asked for; InvalidInputError when its configuration cannot work."""
    return _STRATEGIES[config.strategy](dict(config.config))


__all__ = [
    "Conversation",
    "CustomStrategy",
    "DiscreteStrategy",
    "Extracted",
    "PreferencesStrategy",
    "Strategy",
    "SummaryStrategy",
    "check_custom_prompt",
    "parse_memories",
    "strategy_for",
]
