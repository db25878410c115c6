"""Knowledge updates: a new fact that changes an old one updates or retires it instead of sitting beside it.

"User moved to Berlin" after "User lives in Paris": the extraction shows the LLM, with the new facts,
the nearest stored facts of the same namespace and user, and it answers per new fact:

    ADD     new information: store it
    UPDATE  it changes or refines stored fact `target`: that record gets the new `text`, in place (same
            id), and keeps what it said before in `metadata["history"]`
    DELETE  it shows stored fact `target` is no longer true: store the new fact, which names the retired
            record (id, text, dates) in `metadata["supersedes"]`, then delete the old record
    NONE    already known: store nothing

The answer is validated like every structured output (one decision per fact, targets among those
shown, a text for UPDATE) and retried with the error fed back. So a search returns the current fact,
and an audit can still read the old one and which messages changed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent_memory.ports import ChatMessage
from agent_memory.services.extraction_strategies import MAX_MEMORY_CHARS, Extracted
from agent_memory.services.structured_output import complete_json

if TYPE_CHECKING:
    from agent_memory.domain.models import MemoryRecordResult
    from agent_memory.ports import LanguageModel
    from agent_memory.services.long_term import LongTermService

Action = Literal["ADD", "UPDATE", "DELETE", "NONE"]
MAX_EXISTING = 20

PROMPT = """You keep a user's long-term memory current. These facts are stored already:
{existing}

A conversation just gave these new facts:
{new}

For each new fact choose exactly one action:
- "ADD": new information, compatible with every stored fact.
- "UPDATE": it changes or refines stored fact "target" (say which, e.g. "E1"); give in "text" the
  updated fact, complete and standing alone (e.g. "User lives in Berlin since 2024-05-02").
- "DELETE": it shows stored fact "target" is no longer true; the new fact is stored as it is.
- "NONE": a stored fact says the same already.
Answer with one JSON object and nothing else:
{{"decisions": [{{"fact": "N1", "action": "ADD", "target": null, "text": null}}]}}"""


@dataclass(frozen=True)
class Decision:
    action: Action
    target: MemoryRecordResult | None = None
    text: str | None = None


class _Decision(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fact: str
    action: Action
    target: str | None = None
    text: str | None = Field(default=None, max_length=MAX_MEMORY_CHARS)


class _Decisions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    decisions: list[_Decision]


class KnowledgeUpdater:
    """Decides, with the LLM, what each new fact does to the stored ones (see the module docstring)."""

    def __init__(
        self, long_term: LongTermService, llm: LanguageModel, *, distance: float = 0.5, per_fact: int = 5
    ) -> None:
        self._long_term = long_term
        self._llm = llm
        self._distance = distance
        self._per_fact = per_fact

    def decide(
        self, tenant: str, namespace: str | None, user_id: str | None, facts: Sequence[Extracted],
        *, exclude: Sequence[str] = (),
    ) -> list[Decision]:
        """One decision per fact, in order. Without stored neighbours every fact is an ADD (no LLM call).
        `exclude` names records never to show (this task's own earlier output, on a replay)."""
        existing: dict[str, MemoryRecordResult] = {}
        skip = set(exclude)
        for fact in facts:
            for record in self._long_term.neighbours(
                tenant, fact.text, namespace=namespace, user_id=user_id, threshold=self._distance,
                limit=self._per_fact,
            ):
                if record.id not in skip and len(existing) < MAX_EXISTING:
                    existing.setdefault(record.id, record)
        if not existing or not facts:
            return [Decision("ADD") for _ in facts]
        labels = {f"E{i}": record for i, record in enumerate(existing.values(), start=1)}
        prompt = PROMPT.format(
            existing="\n".join(f"- {label}: {record.text}" for label, record in labels.items()),
            new="\n".join(f"- N{i}: {fact.text}" for i, fact in enumerate(facts, start=1)),
        )

        def validate(answer: dict[str, Any]) -> list[Decision]:
            return _check(_Decisions.model_validate(answer).decisions, len(facts), labels)

        return complete_json(self._llm, [ChatMessage(role="user", content=prompt)], validate)


def _check(raw: Sequence[_Decision], count: int, labels: dict[str, MemoryRecordResult]) -> list[Decision]:
    """The decisions in fact order; ValueError (fed back to the LLM) naming what is wrong."""
    by_fact: dict[str, _Decision] = {}
    for decision in raw:
        if decision.fact in by_fact:
            raise ValueError(f"fact {decision.fact} has more than one decision")
        by_fact[decision.fact] = decision
    wanted = [f"N{i}" for i in range(1, count + 1)]
    if sorted(by_fact) != sorted(wanted):
        raise ValueError(f"give exactly one decision for each of {', '.join(wanted)}")
    targeted: set[str] = set()
    decisions: list[Decision] = []
    for fact in wanted:
        decision = by_fact[fact]
        if decision.action in ("UPDATE", "DELETE"):
            if decision.target not in labels:
                raise ValueError(f"{fact}: {decision.action} needs a target among {', '.join(labels)}")
            if decision.target in targeted:
                raise ValueError(f"{decision.target} is the target of more than one decision")
            targeted.add(decision.target)
            text = (decision.text or "").strip() or None
            if decision.action == "UPDATE" and text is None:
                raise ValueError(f"{fact}: UPDATE needs the updated fact in text")
            decisions.append(Decision(decision.action, labels[decision.target], text))
        else:
            decisions.append(Decision(decision.action))
    return decisions


__all__ = ["Decision", "KnowledgeUpdater"]
