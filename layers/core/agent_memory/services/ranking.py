"""Ranking, once for every LongTermStore: mode dispatch, candidate pools, scores, hybrid fusion, totals.

A store supplies only what its engine does (`ports.CandidateSource`: vector candidates, keyword
candidates, dates, records, a filtered listing, built by its own query builder) and answers
`LongTermStore.search` with `search(source, query)`. So the same input ranks and scores the same on
SQLite and OpenSearch; the contract suite (tests/integration/test_long_term_stores.py) checks it.

Scores (the AMS result fields; `dist = 1 - score` except in semantic mode, where dist is the cosine
distance and score `max(0, 1 - dist)`):

    keyword_norm  = raw / best_raw                          best over all matches, not one page
    semantic_norm = (sim - min_sim) / (max_sim - min_sim)   sim = max(0, 1 - dist), min/max over the
                                                            vector pool; 1.0 when they are all equal
    hybrid score  = alpha * semantic_norm + (1 - alpha) * keyword_norm

A side that did not return the candidate contributes 0. When the query text names a period
(`SearchQuery.time_window`, from domain/temporal.py), candidates dated inside it (event_date, else
created_at, with TIME_MATCH_GRACE after the period since memories are usually written after the fact)
get TIME_MATCH_WEIGHT more, and every score is divided by 1 + TIME_MATCH_WEIGHT to stay in [0, 1]:

    score = (alpha * semantic_norm + (1 - alpha) * keyword_norm + TIME_MATCH_WEIGHT * in_period)
            / (1 + TIME_MATCH_WEIGHT)

On LoCoMo the time match adds about two points of recall@10 (bench/locomo.py).

This is the convex combination with min-max normalisation studied by Bruch et al., "An Analysis of
Fusion Functions for Hybrid Retrieval" (2022), which beat reciprocal-rank fusion there. Min-max on the
vector side matters for modern embedding models whose cosine similarities crowd into a narrow band
(0.7-0.9): without it the keyword side would decide almost every ordering whatever alpha says. Keyword
scores keep their natural zero (raw / max), as in the paper's "theoretical min" variant for BM25. A
candidate missing from the vector pool ranks below every pooled one, so 0 is the right value for it once
the pool is min-max scaled.

Totals are true: semantic counts the filtered records within the distance threshold (all of them
without one), keyword every match, hybrid the union of both sides (without a threshold every filtered
record is a vector match, so the filtered count).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from agent_memory.domain.errors import InvalidInputError
from agent_memory.domain.keywords import parse_keyword_query
from agent_memory.domain.models import MemoryRecordResult, SearchMode
from agent_memory.domain.search import Candidates
from agent_memory.domain.temporal import TimeWindow

if TYPE_CHECKING:
    from agent_memory.domain.filters import SearchQuery
    from agent_memory.ports import CandidateSource

K = TypeVar("K", bound=Hashable)

# Hybrid search asks each side for at least this many candidates, so that fusion can promote a
# document that one side ranks low but the other ranks high.
HYBRID_MIN_POOL = 100

# A candidate dated inside the period the query names gets this much on top of its fused score.
TIME_MATCH_WEIGHT = 0.3
# Memories are written after what they describe: a record up to a week after the period still matches.
TIME_MATCH_GRACE = timedelta(days=7)


# -- the flow -------------------------------------------------------------------------------------------


def search(source: CandidateSource[K], query: SearchQuery) -> tuple[list[MemoryRecordResult], int]:
    """One page of `query`'s results, best first, and the true total of matches.

    Raises:
        InvalidInputError: semantic or hybrid mode without a query vector.
        ConfigurationError: the query vector's dimension is not the store's.
    """
    if query.mode in ("semantic", "hybrid"):
        if query.vector is None:
            raise InvalidInputError(f"{query.mode} search needs a query vector")
        source.check_query_vector(len(query.vector))
    if query.mode == "list":
        payloads, total = source.listing(query)
        return [_result(payload, 0.0, None, None) for payload in payloads], total
    if query.mode == "semantic":
        return _semantic(source, query)
    if query.mode == "keyword":
        return _keyword(source, query)
    return _hybrid(source, query)


def _semantic(source: CandidateSource[K], query: SearchQuery) -> tuple[list[MemoryRecordResult], int]:
    side = source.vector_candidates(query, query.offset + query.limit)
    scored = [(key, dist, similarity(dist)) for key, dist in side.hits[query.offset :]]
    return _results(source, query.tenant, scored, SearchMode.SEMANTIC), side.total


def _keyword(source: CandidateSource[K], query: SearchQuery) -> tuple[list[MemoryRecordResult], int]:
    keywords = parse_keyword_query(query.text)
    if keywords.is_empty:
        return [], 0
    side = source.keyword_candidates(query, keywords, start=query.offset, size=query.limit)
    norms = keyword_scores(dict(side.hits), side.best)
    scored = [(key, 1.0 - norms[key], norms[key]) for key, _ in side.hits]
    return _results(source, query.tenant, scored, SearchMode.KEYWORD), side.total


def _hybrid(source: CandidateSource[K], query: SearchQuery) -> tuple[list[MemoryRecordResult], int]:
    pool = hybrid_pool_size(query.limit, query.offset)
    # With a threshold the total is the union of both sides, so both are asked for every match.
    whole = query.distance_threshold is not None
    vector = source.vector_candidates(query, None if whole else pool)
    keywords = parse_keyword_query(query.text)
    keyword: Candidates[K] = Candidates()
    if not keywords.is_empty:
        keyword = source.keyword_candidates(query, keywords, start=0, size=None if whole else pool)
    vector_pool = dict(vector.hits[:pool])
    keyword_pool = keyword_scores(dict(keyword.hits[:pool]), keyword.best)
    time_matched = None
    if query.time_window is not None:
        time_matched = in_period(query.time_window, source.dates(query.tenant, [*vector_pool, *keyword_pool]))
    fused = fuse_hybrid(vector_pool, keyword_pool, query.alpha, time_matched=time_matched)
    page = [(key, 1.0 - score, score) for key, score in fused[query.offset : query.offset + query.limit]]
    return _results(source, query.tenant, page, SearchMode.HYBRID), hybrid_total(vector, keyword, whole)


def hybrid_total(vector: Candidates[Any], keyword: Candidates[Any], thresholded: bool) -> int:
    """Matches of either side. Without a threshold every filtered record is a vector match. With one,
    the union is exact when both sides came back whole, else known only within what they returned."""
    if not thresholded:
        return vector.total
    overlap = len({key for key, _ in vector.hits} & {key for key, _ in keyword.hits})
    return vector.total + keyword.total - overlap


def _results(
    source: CandidateSource[K], tenant: str, scored: Sequence[tuple[K, float, float]], mode: SearchMode
) -> list[MemoryRecordResult]:
    payloads = source.records(tenant, [key for key, _, _ in scored])
    return [_result(payloads[key], dist, score, mode) for key, dist, score in scored if key in payloads]


def _result(
    payload: Mapping[str, Any], dist: float, score: float | None, mode: SearchMode | None
) -> MemoryRecordResult:
    return MemoryRecordResult.model_validate({**payload, "dist": dist, "score": score, "score_type": mode})


# -- the formulas ---------------------------------------------------------------------------------------


def hybrid_pool_size(limit: int, offset: int) -> int:
    return max(limit + offset, HYBRID_MIN_POOL)


def similarity(dist: float) -> float:
    """AMS semantic score for a cosine distance (0..2): max(0, 1 - dist)."""
    return max(0.0, 1.0 - dist)


def keyword_scores(raw: Mapping[K, float], max_raw: float | None = None) -> dict[K, float]:
    """Raw BM25 scores divided by the best raw score over all matches (not just one page)."""
    top = max_raw if max_raw is not None else max(raw.values(), default=0.0)
    if top <= 0:
        return dict.fromkeys(raw, 1.0)
    return {key: min(1.0, value / top) for key, value in raw.items()}


def in_period(window: TimeWindow | None, dates: Mapping[K, datetime]) -> set[K]:
    """Keys whose date falls in `window` (widened by TIME_MATCH_GRACE); empty without a window."""
    if window is None:
        return set()
    widened = window.widened(TIME_MATCH_GRACE)
    return {key for key, when in dates.items() if widened.holds(when)}


def fuse_hybrid(
    vector_dists: Mapping[K, float],
    keyword_norm: Mapping[K, float],
    alpha: float,
    *,
    time_matched: Collection[K] | None = None,
) -> list[tuple[K, float]]:
    """(key, score) for the union of both candidate sets, best first; ties keep vector order.

    `vector_dists` maps candidate → cosine distance; `keyword_norm` maps candidate → normalised keyword
    score in [0, 1] (see `keyword_scores`); `time_matched` is None when the query names no period,
    else the candidates dated inside it (see `in_period`). The result's dist is `1 - score`.

    >>> fuse_hybrid({"a": 0.1, "b": 0.5}, {"b": 1.0}, alpha=0.3)
    [('b', 0.7), ('a', 0.3)]
    >>> fused = fuse_hybrid({"a": 0.1, "b": 0.5}, {"b": 1.0}, alpha=0.3, time_matched={"a"})
    >>> [(key, round(score, 3)) for key, score in fused]
    [('b', 0.538), ('a', 0.462)]
    """
    sims = {key: similarity(dist) for key, dist in vector_dists.items()}
    low = min(sims.values(), default=0.0)
    high = max(sims.values(), default=0.0)
    span = high - low
    fused: dict[K, float] = {}
    for key, sim in sims.items():
        fused[key] = alpha * ((sim - low) / span if span > 0 else 1.0)
    for key, kw in keyword_norm.items():
        fused[key] = fused.get(key, 0.0) + (1.0 - alpha) * kw
    if time_matched is not None:
        for key in fused:
            fused[key] = (fused[key] + (TIME_MATCH_WEIGHT if key in time_matched else 0.0)) / (1 + TIME_MATCH_WEIGHT)
    order = {key: i for i, key in enumerate(fused)}
    ranked = sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))
    return [(key, min(1.0, max(0.0, score))) for key, score in ranked]
