"""The OpenSearch store's side of the shared search flow (services/ranking.py): its CandidateSource and
the keyword request body. Ranking, scores and totals are the flow's; this module only asks the engine.

The keyword query mirrors the embedded store's (adapters/sqlite_keyword_index.py) clause for clause, so
both score alike: every loose word and every quoted phrase is a `match_phrase` on `body` (the text
KEYWORD_TEXT_OVER_CONTEXT times and the context once, `domain.keywords.body_values`), summed (a bool of
`should` clauses, at least one must match); each quoted phrase is also a non-scoring `filter` on `text`,
since phrases are required in the record's own text; the filters are non-scoring too. A one-word
`match_phrase` is a term query on the analysed word ("Match phrase" docs), so words and phrases go through
the index's own analyzer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent_memory.adapters.opensearch_long_term import (
    MAX_RESULTS,
    SOURCE_FIELDS,
    distance_from_score,
    filter_query,
    knn_body,
    list_body,
)
from agent_memory.domain.keywords import KeywordQuery
from agent_memory.domain.search import Candidates

if TYPE_CHECKING:
    from agent_memory.adapters.opensearch_long_term import OpenSearchLongTermStore
    from agent_memory.domain.filters import SearchQuery


def keyword_body(query: SearchQuery, keywords: KeywordQuery, *, start: int, size: int) -> dict[str, Any]:
    """BM25 over `text` and `context` for one page of filtered matches (see the module docstring)."""
    should: list[dict[str, Any]] = []
    for tokens in [*((word,) for word in keywords.words), *keywords.phrases]:
        should.append({"match_phrase": {"body": " ".join(tokens)}})
    bool_query = filter_query(query.tenant, query.filters)["bool"]
    bool_query["filter"] = [
        *bool_query["filter"],
        *({"match_phrase": {"text": " ".join(phrase)}} for phrase in keywords.phrases),
    ]
    bool_query["must"] = [{"bool": {"should": should}}]
    return {
        "from": start,
        "size": size,
        "track_total_hits": True,
        "_source": SOURCE_FIELDS,
        "query": {"bool": bool_query},
    }


def _happened(record: dict[str, Any]) -> datetime:
    """When a record happened, for the time match: event_date, else created_at."""
    value = record.get("event_date") or record["created_at"]
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class OpenSearchCandidates:
    """The CandidateSource of one search. Hits carry their documents, so records and dates come from the
    hits already fetched, with no further request."""

    def __init__(self, store: OpenSearchLongTermStore) -> None:
        self._store = store
        self._sources: dict[str, dict[str, Any]] = {}

    def check_query_vector(self, dimensions: int) -> None:
        self._store._check_dims(dimensions, "query vector")

    def vector_candidates(self, query: SearchQuery, size: int | None) -> Candidates[str]:
        wanted = MAX_RESULTS if size is None else min(size, MAX_RESULTS)
        response = self._store._search(query.tenant, knn_body(query, wanted))
        hits = self._keep(response["hits"]["hits"], lambda hit: distance_from_score(float(hit["_score"])))
        if query.distance_threshold is not None:
            return Candidates(hits, int(response["hits"]["total"]["value"]))
        # Without a threshold every filtered record is a match; a k-NN total stops at k.
        return Candidates(hits, self._store._count(query.tenant, filter_query(query.tenant, query.filters)))

    def keyword_candidates(
        self, query: SearchQuery, keywords: KeywordQuery, *, start: int, size: int | None
    ) -> Candidates[str]:
        room = MAX_RESULTS - start
        if room <= 0:
            return Candidates()
        body = keyword_body(query, keywords, start=start, size=room if size is None else min(size, room))
        response = self._store._search(query.tenant, body)
        hits = self._keep(response["hits"]["hits"], lambda hit: float(hit["_score"]))
        # max_score is the best score over all matches, not just this page.
        best = response["hits"].get("max_score")
        return Candidates(hits, int(response["hits"]["total"]["value"]), None if best is None else float(best))

    def dates(self, tenant: str, keys: Sequence[str]) -> dict[str, datetime]:
        return {key: _happened(self._sources[key]["record"]) for key in keys if key in self._sources}

    def records(self, tenant: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {key: self._sources[key]["record"] for key in keys if key in self._sources}

    def listing(self, query: SearchQuery) -> tuple[list[dict[str, Any]], int]:
        response = self._store._search(query.tenant, list_body(query))
        keys = self._keep(response["hits"]["hits"], lambda hit: 0.0)
        return [self._sources[key]["record"] for key, _ in keys], int(response["hits"]["total"]["value"])

    def _keep(self, hits: Sequence[dict[str, Any]], value: Any) -> list[tuple[str, float]]:
        """(memory_id, value) per hit, best first; an AOSS duplicate still waiting for cleanup counts once."""
        kept: list[tuple[str, float]] = []
        seen: set[str] = set()
        for hit in hits:
            key = hit["_source"]["memory_id"]
            if key in seen:
                continue
            seen.add(key)
            self._sources.setdefault(key, hit["_source"])
            kept.append((key, value(hit)))
        return kept
