"""Scoring rules shared by every LongTermStore, so SQLite and OpenSearch rank and score alike.

Two jobs, both about turning engine output into the AMS result fields:

* `parse_keyword_query` reads user text the way AMS keyword search does: quoted phrases are required,
  the other words are OR'ed. It returns plain tokens, never engine syntax, so punctuation in user text
  (`"a" OR (b* -c) NEAR:`) cannot reach a query parser. Each adapter quotes tokens for its engine.
* `fuse_hybrid` combines the vector and keyword sides of a hybrid search (convex combination).

Hybrid formula (see `fuse_hybrid`): for every candidate of either side

    semantic_norm = (sim - min_sim) / (max_sim - min_sim)   sim = max(0, 1 - dist), min/max over the
                                                            vector candidates; 1.0 when they are all equal
    keyword_norm  = raw / max_raw                           the keyword-mode score, in (0, 1]
    score         = alpha * semantic_norm + (1 - alpha) * keyword_norm,   dist = 1 - score

A side that did not return the candidate contributes 0. When the query text names a period
(`SearchQuery.time_window`, from domain/temporal.py), candidates dated inside it (event_date, else
created_at, with TIME_MATCH_GRACE after the period since memories are usually written after the fact)
get TIME_MATCH_WEIGHT more, and every score is divided by 1 + TIME_MATCH_WEIGHT to stay in [0, 1]:

    score = (alpha * semantic_norm + (1 - alpha) * keyword_norm + TIME_MATCH_WEIGHT * in_period)
            / (1 + TIME_MATCH_WEIGHT)

On LoCoMo the time match adds about two points of recall@10 (bench/locomo.py).

A side that did not return the candidate contributes 0. This is the convex combination with min-max
normalisation studied by Bruch et al., "An Analysis of Fusion Functions for Hybrid Retrieval" (2022),
which beat reciprocal-rank fusion there. Min-max on the vector side matters for modern embedding
models whose cosine similarities crowd into a narrow band (0.7-0.9): without it the keyword side
would decide almost every ordering whatever alpha says. Keyword scores keep their natural zero
(raw / max), as in the paper's "theoretical min" variant for BM25. A candidate missing from the vector
pool ranks below every pooled one, so 0 is the right value for it once the pool is min-max scaled.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from agent_memory.domain.temporal import TimeWindow

# Word characters in any script; everything else (quotes, operators, brackets, colons) separates.
_TOKEN = re.compile(r"\w+", re.UNICODE)
_PHRASE = re.compile(r'"([^"]*)"')

# Hybrid search asks each side for at least this many candidates, so that fusion can promote a
# document that one side ranks low but the other ranks high.
HYBRID_MIN_POOL = 100

# Keyword relevance: a record's own words count this many times its conversation context's
# (SQLite: FTS5 bm25 column weights; OpenSearch: a field boost). See services/long_term.py.
KEYWORD_TEXT_OVER_CONTEXT = 2.0

# A candidate dated inside the period the query names gets this much on top of its fused score.
TIME_MATCH_WEIGHT = 0.3
# Memories are written after what they describe: a record up to a week after the period still matches.
TIME_MATCH_GRACE = timedelta(days=7)

K = TypeVar("K", bound=Hashable)

# English stop words (the NLTK list minus negations). Dropped from the loose words of a keyword query:
# on LoCoMo they raise keyword recall@10 from 0.581 to 0.616 and cut the rows BM25 must score.
STOPWORDS = frozenset(
    [
     "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
     "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
     "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having",
     "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it",
     "its", "itself", "just", "me", "more", "most", "my", "myself", "now", "of", "off", "on", "once", "only", "or",
     "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such",
     "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this",
     "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where",
     "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
     "yourselves", "s", "t", "d", "ll", "m", "o", "re", "ve", "y",
    ]
)


@dataclass(frozen=True)
class KeywordQuery:
    """Loose words (any may match) and required phrases (each a list of words, all must match)."""

    words: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...]

    @property
    def is_empty(self) -> bool:
        return not self.words and not self.phrases


def parse_keyword_query(text: str | None) -> KeywordQuery:
    """Split user text into loose words and quoted phrases, dropping every other character.

    >>> parse_keyword_query('"New York" pizza OR (b* -c)')
    KeywordQuery(words=('pizza', 'b', 'c'), phrases=(('New', 'York'),))
    >>> parse_keyword_query("what did the user eat?")
    KeywordQuery(words=('user', 'eat'), phrases=())
    """
    if not text:
        return KeywordQuery((), ())
    phrases: list[tuple[str, ...]] = []
    for match in _PHRASE.finditer(text):
        tokens = tuple(_TOKEN.findall(match.group(1)))
        if tokens and tokens not in phrases:
            phrases.append(tokens)
    rest = _PHRASE.sub(" ", text)
    words: list[str] = []
    for token in _TOKEN.findall(rest):
        if token not in words:
            words.append(token)
    # Stop words carry no evidence, but a query made only of them ("who was it?") keeps them.
    content = [w for w in words if w.lower() not in STOPWORDS]
    if content or phrases:
        words = content
    return KeywordQuery(tuple(words), tuple(phrases))


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
