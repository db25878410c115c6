"""Pure domain rules and service logic: filters, recency, tokens, summarization split, forgetting policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from agent_memory.domain.filters import DateTimeFilter, EnumFilter, SearchFilters, TagFilter
from agent_memory.domain.models import MemoryMessage, MemoryRecord, MemoryRecordResult, WorkingMemory
from agent_memory.domain.search import RecencyWeights, SearchRequest, rerank_by_recency
from agent_memory.ports import ChatMessage, Completion
from agent_memory.services import tokens
from agent_memory.services.maintenance import ForgetPolicy, select_for_forgetting
from agent_memory.services.summarization import SummarizationStatus, split_for_summary, summarize_if_needed

NOW = datetime(2026, 1, 31, tzinfo=UTC)


def _record(id_: str, **fields: object) -> MemoryRecordResult:
    return MemoryRecordResult(id=id_, text=f"text {id_}", dist=fields.pop("dist", 0.0), **fields)  # type: ignore[arg-type]


# --- models ---------------------------------------------------------------------------------------


def test_datetimes_parse_leniently_and_serialize_with_z() -> None:
    for raw in ("2025-01-01T00:00:00Z", "2025-01-01T00:00:00", 1735689600, "2025-01-01T01:00:00+01:00"):
        message = MemoryMessage(role="user", content="x", created_at=raw)  # type: ignore[arg-type]
        assert message.model_dump(mode="json")["created_at"] == "2025-01-01T00:00:00Z"


def test_unknown_fields_are_ignored_and_ids_assigned() -> None:
    memory = WorkingMemory.model_validate({"session_id": "s", "new_session": True, "messages": [
        {"role": "user", "content": "hi", "id": ""}]})
    assert memory.messages[0].id and not hasattr(memory, "new_session")


def test_commas_in_tags_are_rejected() -> None:
    with pytest.raises(ValidationError, match="commas"):
        MemoryRecord(text="x", topics=["a,b"])


def test_content_hash_depends_on_scope_and_text_only() -> None:
    a = MemoryRecord(id="1", text="t", user_id="u")
    assert a.content_hash() == MemoryRecord(id="2", text="t", user_id="u").content_hash()
    assert a.content_hash() != MemoryRecord(id="1", text="t", user_id="v").content_hash()


# --- filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag_filter", "values", "expected"),
    [
        (TagFilter(eq="a"), ["a", "b"], True),
        (TagFilter(ne="a"), ["a"], False),
        (TagFilter(any=["x", "b"]), ["a", "b"], True),
        (TagFilter(all=["a", "b"]), ["a"], False),  # AND, not AMS's OR
        (TagFilter(all=["a", "b"]), ["b", "a", "c"], True),
        (TagFilter(in_=["a"]), ["a"], True),
        (TagFilter(not_in=["a", "z"]), ["b"], True),
        (TagFilter(none=["a"]), ["a", "b"], False),
        (TagFilter(startswith="ws:"), ["ws:abc"], True),
        (TagFilter(eq="a", not_in=["b"]), ["a", "b"], False),  # every operator applies
    ],
)
def test_tag_filter_semantics(tag_filter: TagFilter, values: list[str], expected: bool) -> None:
    assert tag_filter.matches(values) is expected


@pytest.mark.parametrize(
    "raw",
    [{}, {"any": []}, {"startswith": "a", "eq": "b"}, {"eq": "a", "ne": "a"}],
)
def test_invalid_tag_filters_are_rejected(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TagFilter.model_validate(raw)


def test_enum_filter_checks_values() -> None:
    with pytest.raises(ValidationError, match="not a memory type"):
        EnumFilter(eq="dream")
    assert EnumFilter(any=["semantic", "episodic"]).matches(["episodic"])


def test_gte_and_lte_together_form_a_range() -> None:
    window = DateTimeFilter(gte=NOW - timedelta(days=2), lte=NOW)
    assert window.matches(NOW - timedelta(days=1))
    assert not window.matches(NOW - timedelta(days=3))
    assert not window.matches(NOW + timedelta(seconds=1))
    assert not DateTimeFilter(between=[NOW, NOW + timedelta(1)], inclusive="neither").matches(NOW)


def test_search_filters_and_all_set_filters() -> None:
    filters = SearchFilters(namespace=TagFilter(eq="ns"), topics=TagFilter(any=["food"]))
    assert filters.matches(MemoryRecord(text="x", namespace="ns", topics=["food"]))
    assert not filters.matches(MemoryRecord(text="x", namespace="ns", topics=["work"]))
    assert not filters.matches(MemoryRecord(text="x", topics=["food"]))


def test_empty_search_text_is_a_listing() -> None:
    assert SearchRequest(text="  ", search_mode="hybrid").store_mode == "list"
    assert SearchRequest(text="tea").store_mode == "semantic"
    assert SearchRequest(recency_boost=False).recency() is None


# --- recency --------------------------------------------------------------------------------------


def test_recency_rerank_prefers_fresh_records_at_equal_distance() -> None:
    stale = _record("stale", dist=0.2, created_at=NOW - timedelta(days=300), last_accessed=NOW - timedelta(days=300))
    fresh = _record("fresh", dist=0.2, created_at=NOW, last_accessed=NOW)
    ranked = rerank_by_recency([stale, fresh], RecencyWeights(), NOW)
    assert [r.id for r in ranked] == ["fresh", "stale"]
    assert ranked[0].dist == 0.2  # dist is left as the store computed it


def test_semantic_weight_dominates_by_default() -> None:
    near_old = _record("near", dist=0.05, created_at=NOW - timedelta(days=60), last_accessed=NOW - timedelta(days=60))
    far_new = _record("far", dist=0.6, created_at=NOW, last_accessed=NOW)
    assert [r.id for r in rerank_by_recency([far_new, near_old], RecencyWeights(), NOW)] == ["near", "far"]


# --- tokens ---------------------------------------------------------------------------------------


def test_token_counting_uses_the_bundled_cl100k() -> None:
    assert tokens.count_text("hello world") == 2  # cl100k; the 4-chars fallback would say 3


def test_fits_within_bounds_by_bytes_then_counts() -> None:
    short = [MemoryMessage(role="user", content="hello world")]
    assert tokens.fits_within(short, 17)  # 17 bytes: no tokenization needed
    long = [MemoryMessage(role="user", content="word " * 40)]  # 206 bytes, 42 tokens
    assert tokens.fits_within(long, 50) and not tokens.fits_within(long, 30)
    wide = [MemoryMessage(role="user", content="漢" * 10)]  # 3 bytes a character: the bound is bytes
    assert not tokens.fits_within(wide, 5)


def test_context_window_precedence() -> None:
    assert tokens.context_window("gpt-4", 1000, 16000) == 1000
    assert tokens.context_window("gpt-4", None, 16000) == 8192
    assert tokens.context_window("claude-3-haiku", None, 16000) == 200000
    assert tokens.context_window(None, None, 16000) == 16000


def test_percentages_cap_at_100_and_need_a_window() -> None:
    assert tokens.context_percentages(50, 100, 0.7) == (50.0, pytest.approx(50 / 70 * 100))
    assert tokens.context_percentages(500, 100, 0.7) == (100.0, 100.0)
    assert tokens.context_percentages(5, None, 0.7) == (None, None)


# --- summarization --------------------------------------------------------------------------------


def _conversation(n: int) -> list[MemoryMessage]:
    return [MemoryMessage(role="user", content=f"message {i} " + "word " * 20) for i in range(n)]


def test_split_keeps_newest_within_40_percent_and_at_least_one() -> None:
    messages = _conversation(10)
    older, kept = split_for_summary(messages, window=200)
    assert older + kept == messages
    assert tokens.total_tokens(kept) <= 80 and kept[-1] is messages[-1]
    _, only_last = split_for_summary(messages, window=10)
    assert only_last == [messages[-1]]


class ScriptedLLM:
    model = "scripted"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    def complete(
        self, messages: list[ChatMessage], *, json_mode: bool = False, max_tokens: int | None = None
    ) -> Completion:
        self.prompts.append(messages[0].content)
        return Completion(text=self.answer, total_tokens=42)


def test_summarize_folds_older_messages_into_context() -> None:
    memory = WorkingMemory(session_id="s", messages=_conversation(10), context="before")
    llm = ScriptedLLM("new summary")
    result = summarize_if_needed(memory, window=200, threshold=0.7, llm=llm)
    assert result.status is SummarizationStatus.SUMMARIZED
    assert result.memory.context == "new summary" and result.memory.tokens == 42
    assert "before" in llm.prompts[0] and "message 0" in llm.prompts[0]
    assert summarize_if_needed(memory, window=100000, threshold=0.7, llm=llm).status is SummarizationStatus.NOT_NEEDED


def test_blank_llm_answer_never_drops_messages() -> None:
    memory = WorkingMemory(session_id="s", messages=_conversation(10))
    result = summarize_if_needed(memory, window=200, threshold=0.7, llm=ScriptedLLM("  "))
    assert result.status is SummarizationStatus.SKIPPED_LLM_UNAVAILABLE and result.memory.messages == memory.messages


# --- forgetting -----------------------------------------------------------------------------------


def test_forgetting_policy_age_inactivity_pins_and_budget() -> None:
    old = NOW - timedelta(days=100)
    records = [
        _record("old-idle", created_at=old, last_accessed=old),
        _record("old-active", created_at=old, last_accessed=NOW),
        _record("pinned", created_at=old, last_accessed=old, pinned=True),
        _record("new1", created_at=NOW - timedelta(days=1), last_accessed=NOW - timedelta(days=1)),
        _record("new2", created_at=NOW, last_accessed=NOW),
    ]
    both = ForgetPolicy(max_age_days=30, max_inactive_days=30)
    assert select_for_forgetting(records, both, set(), NOW) == ["old-idle"]
    assert select_for_forgetting(records, ForgetPolicy(max_age_days=30), {"old-idle"}, NOW) == ["old-active"]
    assert set(select_for_forgetting(records, ForgetPolicy(budget=2), set(), NOW)) == {"old-idle", "old-active"}
    allow = ForgetPolicy(max_age_days=30, memory_type_allowlist=["episodic"])
    assert select_for_forgetting(records, allow, set(), NOW) == []
