"""Hash claims (adapters/opensearch_dedup.py) against a fake index that behaves like OpenSearch's per-`_id`
write rules: `op_type=create` answers 409 on an existing id, `if_seq_no`/`if_primary_term` 409 on a moved
one. The 20-writer race itself runs on the real node (tests/integration/test_long_term_stores.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opensearchpy.exceptions import ConflictError, NotFoundError

from agent_memory.adapters.opensearch_dedup import HashClaims, claim_id
from agent_memory.domain.models import MemoryRecord


class FakeClaimsIndex:
    def __init__(self) -> None:
        self.docs: dict[str, tuple[dict[str, Any], int]] = {}  # _id -> (source, seq_no)
        self.seq = 0

    def index(self, *, index: str, id: str, body: dict[str, Any], **conditions: Any) -> dict[str, Any]:
        current = self.docs.get(id)
        if conditions.get("op_type") == "create" and current is not None:
            raise ConflictError(409, "version_conflict_engine_exception", {})
        if "if_seq_no" in conditions and (current is None or current[1] != conditions["if_seq_no"]):
            raise ConflictError(409, "version_conflict_engine_exception", {})
        self.seq += 1
        self.docs[id] = (dict(body), self.seq)
        return {"_seq_no": self.seq, "_primary_term": 1}

    def get(self, *, index: str, id: str) -> dict[str, Any]:
        if id not in self.docs:
            raise NotFoundError(404, "not_found", {})
        source, seq = self.docs[id]
        return {"_source": source, "_seq_no": seq, "_primary_term": 1}

    def delete(self, *, index: str, id: str, if_seq_no: int, if_primary_term: int) -> None:
        if id not in self.docs or self.docs[id][1] != if_seq_no:
            raise ConflictError(409, "version_conflict_engine_exception", {})
        del self.docs[id]


@contextmanager
def calling(_: str) -> Iterator[None]:
    yield


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def claims(index: FakeClaimsIndex, clock: Clock) -> HashClaims:
    return HashClaims(index, "memories", calling, grace_seconds=10.0, clock=clock, sleep=clock.sleep)


def test_the_first_writer_wins_and_a_later_one_learns_the_owner() -> None:
    index, clock = FakeClaimsIndex(), Clock()
    first = MemoryRecord(id="a", text="tea", memory_hash="h")
    won = claims(index, clock).claim("t1", "h", "a", record=lambda _: None, stored=list)
    assert (won.owner, won.won) == ("a", True)
    lost = claims(index, clock).claim(
        "t1", "h", "b", record=lambda i: first if i == "a" else None, stored=lambda: [first]
    )
    assert (lost.owner, lost.won) == ("a", False)
    assert index.docs[claim_id("t1", "h")][0]["owner"] == "a"


def test_a_claim_whose_owner_is_still_writing_is_waited_for() -> None:
    # Given a claim taken a moment ago whose record appears after three polls
    index, clock = FakeClaimsIndex(), Clock()
    claims(index, clock).claim("t1", "h", "a", record=lambda _: None, stored=list)
    owner = MemoryRecord(id="a", text="tea", memory_hash="h")
    polls = iter([None, None, None, owner])
    # When another writer claims the same content
    lost = claims(index, clock).claim("t1", "h", "b", record=lambda _: next(polls), stored=lambda: [owner])
    # Then it waited (without taking the claim over) and was told the owner
    assert (lost.owner, lost.won) == ("a", False)
    assert index.docs[claim_id("t1", "h")][0]["owner"] == "a"


def test_a_claim_left_by_a_crashed_writer_is_taken_over_after_the_grace() -> None:
    index, clock = FakeClaimsIndex(), Clock()
    claims(index, clock).claim("t1", "h", "a", record=lambda _: None, stored=list)  # "a" never writes
    won = claims(index, clock).claim("t1", "h", "b", record=lambda _: None, stored=list)
    assert (won.owner, won.won) == ("b", True)
    assert clock.now > 1_000.0 + 10.0  # not before the grace ran out
    assert index.docs[claim_id("t1", "h")][0]["owner"] == "b"


def test_a_claim_whose_owner_now_holds_other_content_is_taken_over_at_once() -> None:
    index, clock = FakeClaimsIndex(), Clock()
    claims(index, clock).claim("t1", "h", "a", record=lambda _: None, stored=list)
    replaced = MemoryRecord(id="a", text="coffee now", memory_hash="other")
    won = claims(index, clock).claim("t1", "h", "b", record=lambda _: replaced, stored=list)
    assert (won.owner, won.won, clock.now) == ("b", True, 1_000.0)


def test_content_stored_without_a_claim_still_wins_and_the_claim_points_at_it() -> None:
    index, clock = FakeClaimsIndex(), Clock()
    older = MemoryRecord(id="old", text="tea", memory_hash="h")
    lost = claims(index, clock).claim("t1", "h", "new", record=lambda _: None, stored=lambda: [older])
    assert (lost.owner, lost.won) == ("old", False)
    assert index.docs[claim_id("t1", "h")][0]["owner"] == "old"


def test_release_frees_the_content_unless_the_claim_moved_on() -> None:
    index, clock = FakeClaimsIndex(), Clock()
    won = claims(index, clock).claim("t1", "h", "a", record=lambda _: None, stored=list)
    assert won.token is not None
    claims(index, clock).release("t1", "h", won.token)
    assert claim_id("t1", "h") not in index.docs
    again = claims(index, clock).claim("t1", "h", "b", record=lambda _: None, stored=list)
    claims(index, clock).release("t1", "h", won.token)  # a stale token: left alone
    assert again.won and index.docs[claim_id("t1", "h")][0]["owner"] == "b"


def test_tenants_claim_the_same_content_independently() -> None:
    index, clock = FakeClaimsIndex(), Clock()
    assert claims(index, clock).claim("t1", "h", "a", record=lambda _: None, stored=list).won
    assert claims(index, clock).claim("t2", "h", "a", record=lambda _: None, stored=list).won
    assert claim_id("a:b", "c") != claim_id("a", "b:c")
