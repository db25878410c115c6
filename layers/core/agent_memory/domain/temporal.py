"""Absolute dates named in search text ("in July 2023", "on 7 July, 2023"), for hybrid search's time match.

People ask memory questions about when things happened: "What did Maria donate in December 2023?".
Neither the vector nor the keyword side can read that as a time, since a record's text rarely repeats
its own date. `time_reference` finds the first absolute date expression in the text and returns the
period it names; hybrid search then favours candidates dated inside it (see services/ranking.py).

Only absolute expressions are read: a day with month and year, a month with year, or a year after
"in"/"during". Relative ones ("last week", "in June" without a year) need a reference date and would
guess; they are left to the vector and keyword sides.

>>> window = time_reference("What did Gina find for her store on 1 February, 2023?")
>>> window.start.isoformat(), window.end.isoformat()
('2023-02-01T00:00:00+00:00', '2023-02-02T00:00:00+00:00')
>>> time_reference("When did Melanie go camping in June?") is None
True
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
            ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
            ("october", "oct"), ("november", "nov"), ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(\d{4})"

# Most specific first: "7 July, 2023" must not be read as "July 2023".
_DAY_MONTH_YEAR = re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE)
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.IGNORECASE)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTH_YEAR = re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE)
_YEAR_ONLY = re.compile(r"\b(?:in|during|of|throughout)\s+(\d{4})\b", re.IGNORECASE)


class TimeWindow(NamedTuple):
    """A half-open period [start, end) in UTC."""

    start: datetime
    end: datetime

    def widened(self, after: timedelta) -> TimeWindow:
        return TimeWindow(self.start, self.end + after)

    def holds(self, when: datetime) -> bool:
        return self.start <= when < self.end


def _day(year: int, month: int, day: int) -> TimeWindow | None:
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return TimeWindow(start, start + timedelta(days=1))


def _month(year: int, month: int) -> TimeWindow:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if month == 12 else datetime(year, month + 1, 1, tzinfo=UTC)
    return TimeWindow(start, end)


def _plausible(year: int) -> bool:
    return 1900 <= year <= 2200


def time_reference(text: str | None) -> TimeWindow | None:
    """The period named by the first absolute date expression in `text`, or None."""
    if not text:
        return None
    if match := _DAY_MONTH_YEAR.search(text):
        day, month, year = int(match.group(1)), _MONTHS[match.group(2).lower()], int(match.group(3))
        if _plausible(year):
            return _day(year, month, day)
    if match := _MONTH_DAY_YEAR.search(text):
        month, day, year = _MONTHS[match.group(1).lower()], int(match.group(2)), int(match.group(3))
        if _plausible(year):
            return _day(year, month, day)
    if match := _ISO_DATE.search(text):
        year, month, day = (int(g) for g in match.groups())
        if _plausible(year) and 1 <= month <= 12:
            return _day(year, month, day)
    if match := _MONTH_YEAR.search(text):
        month, year = _MONTHS[match.group(1).lower()], int(match.group(2))
        if _plausible(year):
            return _month(year, month)
    if match := _YEAR_ONLY.search(text):
        year = int(match.group(1))
        if _plausible(year):
            return TimeWindow(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
    return None
