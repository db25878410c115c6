"""Reading the period a search text names (domain/temporal.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent_memory.domain.temporal import TimeWindow, time_reference


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("What did Gina find on 1 February, 2023?", (day(2023, 2, 1), day(2023, 2, 2))),
        ("the 21st of March 2024 party", (day(2024, 3, 21), day(2024, 3, 22))),
        ("Who did Maria have dinner with on May 3, 2023?", (day(2023, 5, 3), day(2023, 5, 4))),
        ("painting shown on October 13th 2023", (day(2023, 10, 13), day(2023, 10, 14))),
        ("logs from 2024-02-29", (day(2024, 2, 29), day(2024, 3, 1))),
        ("What setback did Melanie face in October 2023?", (day(2023, 10, 1), day(2023, 11, 1))),
        ("trip in Sept. 2022", (day(2022, 9, 1), day(2022, 10, 1))),
        ("what happened in December 2023", (day(2023, 12, 1), day(2024, 1, 1))),
        ("How many times has Melanie gone to the beach in 2023?", (day(2023, 1, 1), day(2024, 1, 1))),
        # the most specific expression wins over the month or year it contains
        ("on 7 July, 2023 (in 2023)", (day(2023, 7, 7), day(2023, 7, 8))),
    ],
)
def test_absolute_dates_name_their_period(text: str, window: tuple[datetime, datetime]) -> None:
    assert time_reference(text) == TimeWindow(*window)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "When did Melanie go camping in June?",  # no year: which June is a guess
        "What did John do last week?",
        "Call 2023 people",  # a bare number is not a year reference
        "on 31 February, 2023",  # no such day
        "in 0042",  # not a plausible year
    ],
)
def test_no_absolute_date_means_no_window(text: str | None) -> None:
    assert time_reference(text) is None


def test_window_holds_its_start_but_not_its_end() -> None:
    window = TimeWindow(day(2023, 7, 1), day(2023, 8, 1))
    assert window.holds(day(2023, 7, 1)) and not window.holds(day(2023, 8, 1))
