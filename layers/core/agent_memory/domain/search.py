"""A long-term search request (AMS `SearchRequest`) and the recency re-rank it can ask for (§5.9)."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from agent_memory.domain.filters import SearchFilters
from agent_memory.domain.models import DomainModel, MemoryRecordResult, SearchMode
from agent_memory.domain.validation import MAX_SEARCH_WINDOW

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Candidates(Generic[K]):
    """One side of a search as a store's engine answers it (see `CandidateSource` in ports.py).

    `hits` are (key, value) best first: the cosine distance on the vector side, the raw BM25 score on
    the keyword side; keys are the store's own (a row id, a document id). `total` counts every match,
    not only the hits returned; `best` is the best raw keyword score over all matches.
    """

    hits: list[tuple[K, float]] = field(default_factory=list)
    total: int = 0
    best: float | None = None

    @property
    def complete(self) -> bool:
        """True when every match is among the hits."""
        return len(self.hits) >= self.total


class RecencyWeights(DomainModel):
    semantic_weight: float = 0.8
    recency_weight: float = 0.2
    freshness_weight: float = 0.6
    novelty_weight: float = 0.4
    half_life_last_access_days: float = 7.0
    half_life_created_days: float = 30.0


class SearchRequest(SearchFilters):
    """The filters (inherited from SearchFilters) plus what to search for and how to rank it."""

    model_config = ConfigDict(allow_inf_nan=False)

    text: str | None = None
    search_mode: SearchMode = SearchMode.SEMANTIC
    # 0.5, not AMS's 0.7: measured best on LoCoMo (bench/locomo.py); the 0.14 client never sends it.
    hybrid_alpha: float = Field(default=0.5, ge=0, le=1)
    text_scorer: str | None = Field(default=None, description="Accepted for compatibility; BM25 is used")
    distance_threshold: float | None = Field(default=None, ge=0, le=2)
    limit: int = Field(default=10, ge=1, le=100)
    offset: int = Field(default=0, ge=0, description=f"offset + limit is at most {MAX_SEARCH_WINDOW}")
    recency_boost: bool | None = None
    recency_semantic_weight: float | None = Field(default=None, ge=0)
    recency_recency_weight: float | None = Field(default=None, ge=0)
    recency_freshness_weight: float | None = Field(default=None, ge=0)
    recency_novelty_weight: float | None = Field(default=None, ge=0)
    recency_half_life_last_access_days: float | None = Field(default=None, gt=0)
    recency_half_life_created_days: float | None = Field(default=None, gt=0)
    server_side_recency: bool | None = None

    @field_validator("offset")
    @classmethod
    def _within_window(cls, offset: int, info: ValidationInfo) -> int:
        if offset + info.data.get("limit", 0) > MAX_SEARCH_WINDOW:
            raise ValueError(f"offset + limit must be at most {MAX_SEARCH_WINDOW}, the deepest page a store serves")
        return offset

    def filters(self) -> SearchFilters:
        """Just the filters, as the stores take them."""
        return SearchFilters(**{name: getattr(self, name) for name in SearchFilters.model_fields})

    def recency(self) -> RecencyWeights | None:
        if self.recency_boost is False:
            return None
        defaults = RecencyWeights()
        return RecencyWeights(
            semantic_weight=_pick(self.recency_semantic_weight, defaults.semantic_weight),
            recency_weight=_pick(self.recency_recency_weight, defaults.recency_weight),
            freshness_weight=_pick(self.recency_freshness_weight, defaults.freshness_weight),
            novelty_weight=_pick(self.recency_novelty_weight, defaults.novelty_weight),
            half_life_last_access_days=_pick(
                self.recency_half_life_last_access_days, defaults.half_life_last_access_days
            ),
            half_life_created_days=_pick(self.recency_half_life_created_days, defaults.half_life_created_days),
        )

    @property
    def store_mode(self) -> Literal["semantic", "keyword", "hybrid", "list"]:
        if not (self.text or "").strip():
            return "list"
        return self.search_mode.value


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


def recency_score(record: MemoryRecordResult, weights: RecencyWeights, now: datetime) -> float:
    """semantic_weight·(1−dist) + recency_weight·clamp01(fw·2^(−Δaccess/h1) + nw·2^(−Δcreated/h2))."""
    days_accessed = max(0.0, (now - record.last_accessed).total_seconds() / 86400)
    days_created = max(0.0, (now - record.created_at).total_seconds() / 86400)
    freshness = math.pow(2, -days_accessed / weights.half_life_last_access_days)
    novelty = math.pow(2, -days_created / weights.half_life_created_days)
    recency = min(1.0, max(0.0, weights.freshness_weight * freshness + weights.novelty_weight * novelty))
    return weights.semantic_weight * (1 - record.dist) + weights.recency_weight * recency


def rerank_by_recency(
    results: list[MemoryRecordResult], weights: RecencyWeights, now: datetime
) -> list[MemoryRecordResult]:
    """Stable re-sort of one page; `dist` and `score` are left as the store computed them."""
    return sorted(results, key=lambda r: -recency_score(r, weights, now))
