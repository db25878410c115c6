"""How keyword search reads user text, for every LongTermStore alike.

`parse_keyword_query` reads user text the way AMS keyword search does: quoted phrases are required, the
other words are OR'ed, English stop words are dropped from the loose words. It returns plain tokens,
never engine syntax, so punctuation in user text (`"a" OR (b* -c) NEAR:`) cannot reach a query parser;
each store's query builder turns the tokens into its engine's query.

Every store analyses text the same way: Unicode word tokens, lower-cased, diacritics removed, Porter
stemmed (so "hiking" finds "hikes"); a record's own text weighs KEYWORD_TEXT_OVER_CONTEXT times its
conversation context (`body_values`); relevance is BM25 on that body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Word characters in any script; everything else (quotes, operators, brackets, colons) separates.
_TOKEN = re.compile(r"\w+", re.UNICODE)
_PHRASE = re.compile(r'"([^"]*)"')

# Keyword relevance: a record's own words count this many times its conversation context's (by term
# frequency, see `body_values`). See services/conversation_context.py.
KEYWORD_TEXT_OVER_CONTEXT = 2.0
_TEXT_REPEATS = int(KEYWORD_TEXT_OVER_CONTEXT)
assert _TEXT_REPEATS == KEYWORD_TEXT_OVER_CONTEXT, "the text weight is a repetition count"

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


def body_values(text: str, context: str | None) -> list[str]:
    """What every store indexes for BM25: the text KEYWORD_TEXT_OVER_CONTEXT times, then the context.

    So a word's frequency is twice its count in the text plus its count in the context, saturated once,
    with one length norm and one document frequency per record (BM25F with integer weights), as SQLite
    FTS5's column weights scored. Summing two per-field BM25 scores instead measured 6 points worse on
    LoCoMo keyword recall@10 (0.671 against 0.731).

    >>> body_values("likes tea", "Q: drinks?")
    ['likes tea', 'likes tea', 'Q: drinks?']
    """
    return [text] * _TEXT_REPEATS + ([context] if context else [])


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
