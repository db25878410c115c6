"""Progressive summarization of a session that outgrew its context window (AMS contract §5.2).

When the messages' tokens exceed `threshold × window`, the newest messages that fit in 40% of the
window are kept and the older ones are folded, with the previous summary, into `context` by the LLM.
Without an LLM, or when the LLM fails, nothing is dropped: the caller stores the messages unchanged
and reports why no summary was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.ports import ChatMessage
from agent_memory.services.tokens import fits_within, message_tokens

if TYPE_CHECKING:
    from agent_memory.domain.models import MemoryMessage, WorkingMemory
    from agent_memory.ports import LanguageModel

KEEP_FRACTION = 0.4
# Bounds on what is sent to the LLM, in characters, so one huge message cannot blow its window.
MAX_CHARS_PER_MESSAGE = 4000
MAX_CHARS_TOTAL = 60000

SUMMARY_PROMPT = """You maintain a running summary of a conversation between a user and an assistant.
Merge the previous summary and the new messages into one concise summary. Keep facts, names, dates,
decisions, preferences and open questions; drop pleasantries. Write plain prose, no preamble.

Previous summary:
{previous}

New messages (oldest first):
{messages}

Updated summary:"""


class SummarizationStatus(StrEnum):
    NOT_NEEDED = "not-needed"
    SUMMARIZED = "summarized"
    SKIPPED_NO_LLM = "skipped; reason=no-llm-configured"
    SKIPPED_LLM_UNAVAILABLE = "skipped; reason=llm-unavailable"
    DISABLED = "skipped; reason=disabled"


@dataclass(frozen=True)
class SummarizationResult:
    memory: WorkingMemory
    status: SummarizationStatus


def split_for_summary(
    messages: list[MemoryMessage], window: int
) -> tuple[list[MemoryMessage], list[MemoryMessage]]:
    """(to_summarize, to_keep): keep the newest messages within 40% of the window, at least one."""
    budget = int(window * KEEP_FRACTION)
    kept: list[MemoryMessage] = []
    used = 0
    for message in reversed(messages):
        cost = message_tokens(message)
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    if not kept and messages:
        kept = [messages[-1]]
    kept.reverse()
    return messages[: len(messages) - len(kept)], kept


def _render(messages: list[MemoryMessage]) -> str:
    lines: list[str] = []
    used = 0
    for message in messages:
        line = f"{message.role}: {message.content[:MAX_CHARS_PER_MESSAGE]}"
        if used + len(line) > MAX_CHARS_TOTAL:
            break
        lines.append(line)
        used += len(line)
    return "\n".join(lines)


def summarize_if_needed(
    memory: WorkingMemory,
    *,
    window: int,
    threshold: float,
    llm: LanguageModel | None,
    enabled: bool = True,
) -> SummarizationResult:
    if fits_within(memory.messages, int(window * threshold)):
        return SummarizationResult(memory, SummarizationStatus.NOT_NEEDED)
    if not enabled:
        return SummarizationResult(memory, SummarizationStatus.DISABLED)
    if llm is None:
        return SummarizationResult(memory, SummarizationStatus.SKIPPED_NO_LLM)
    older, kept = split_for_summary(memory.messages, window)
    prompt = SUMMARY_PROMPT.format(previous=memory.context or "(none)", messages=_render(older))
    try:
        completion = llm.complete([ChatMessage(role="user", content=prompt)])
    except DependencyUnavailableError:
        return SummarizationResult(memory, SummarizationStatus.SKIPPED_LLM_UNAVAILABLE)
    summary = completion.text.strip()
    if not summary:
        return SummarizationResult(memory, SummarizationStatus.SKIPPED_LLM_UNAVAILABLE)
    summarized = memory.model_copy(
        update={
            "context": summary,
            "messages": kept,
            "tokens": memory.tokens + completion.total_tokens,
        }
    )
    return SummarizationResult(summarized, SummarizationStatus.SUMMARIZED)
