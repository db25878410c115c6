"""Moved: ranking lives in services/ranking.py and keyword parsing in domain/keywords.py.

Kept only so that adapters not yet on the shared flow (`services.ranking.search`) keep importing; remove
once every LongTermStore answers through it.
"""

from agent_memory.domain.keywords import (
    KEYWORD_TEXT_OVER_CONTEXT,
    STOPWORDS,
    KeywordQuery,
    parse_keyword_query,
)
from agent_memory.services.ranking import (
    HYBRID_MIN_POOL,
    TIME_MATCH_GRACE,
    TIME_MATCH_WEIGHT,
    fuse_hybrid,
    hybrid_pool_size,
    in_period,
    keyword_scores,
    similarity,
)

__all__ = [
    "HYBRID_MIN_POOL",
    "KEYWORD_TEXT_OVER_CONTEXT",
    "STOPWORDS",
    "TIME_MATCH_GRACE",
    "TIME_MATCH_WEIGHT",
    "KeywordQuery",
    "fuse_hybrid",
    "hybrid_pool_size",
    "in_period",
    "keyword_scores",
    "parse_keyword_query",
    "similarity",
]
