"""What the engine reports to an observer: recording times, breaches, open deadlines."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from cdi_stream.contract import parse_incident_event
from cdi_stream.engine import CaseState, Engine, MemoryStore
from cdi_stream.rules.book import RuleBook
from tests.engine.scenario import T0, Incident, run

HOUR = 3600.0
T = T0.timestamp()


@dataclass
class Observed:
    records: list[tuple[float, bool]] = field(default_factory=list)
    breaches: int = 0
    evaluations: int = 0
    deadlines: dict[str, tuple[float, ...]] = field(default_factory=dict)
    drops: list[str] = field(default_factory=list)

    def evaluated(self, seconds: float) -> None:
        assert seconds >= 0
        self.evaluations += 1

    def recorded(self, seconds_to_record: float, in_time: bool) -> None:
        self.records.append((seconds_to_record, in_time))

    def breached(self) -> None:
        self.breaches += 1

    def open_deadlines(self, incident_id: str, due: Collection[float]) -> None:
        if due:
            self.deadlines[incident_id] = tuple(sorted(due))
        else:
            self.deadlines.pop(incident_id, None)

    def dropped(self, incident_id: str) -> None:
        self.deadlines.pop(incident_id, None)
        self.drops.append(incident_id)

    def hours(self) -> list[tuple[float, bool]]:
        return [(round(s / HOUR, 3), ok) for s, ok in self.records]


def observe(
    book: RuleBook, events: list[dict[str, Any]], until: float | None = None
) -> tuple[Observed, Engine]:
    seen = Observed()
    engine = Engine(book, observer=seen)
    run(book, events, until=until, engine=engine)
    return seen, engine


def test_a_crime_recorded_in_time_is_counted_once_with_its_delay(book: RuleBook) -> None:
    seen, _ = observe(book, Incident().reported(0).crime(10).closed(30).events, until=60)
    assert seen.hours() == [(10.0, True)]
    assert seen.breaches == 0
    assert seen.deadlines == {}


def test_a_late_crime_is_a_breach_then_a_late_record(book: RuleBook) -> None:
    seen, _ = observe(book, Incident().reported(0).crime(30).events, until=40)
    assert seen.breaches == 1
    assert seen.hours() == [(30.0, False)]


def test_a_deadline_stays_open_until_it_passes(book: RuleBook) -> None:
    seen, engine = observe(book, Incident().reported(0).events, until=23)
    assert seen.deadlines == {"INC-1": (T + 24 * HOUR,)}
    engine.advance_to(T + 24 * HOUR, inclusive=True)
    assert seen.deadlines == {}
    assert seen.breaches == 1
    engine.advance_to(T + 100 * HOUR, inclusive=True)
    assert seen.breaches == 1, "a breach is reported once, however often the case is evaluated"


def test_every_victim_is_a_subject_with_its_own_deadline(book: RuleBook) -> None:
    incident = Incident().reported(0, disclosures=[("8N", "V1"), ("8N", "V2")]).crime(2)
    seen, _ = observe(book, incident.events, until=5)
    assert seen.hours() == [(2.0, True)]
    assert seen.deadlines == {"INC-1": (T + 24 * HOUR,)}


def test_a_crime_recorded_before_the_report_arrives_counts_as_in_time(book: RuleBook) -> None:
    events = Incident().reported(0).crime(3).events
    seen, _ = observe(book, [events[1], events[0]], until=30)
    assert seen.hours() == [(3.0, True)]
    assert seen.breaches == 0


def test_no_deadline_for_an_incident_closed_as_a_crime_related_incident(book: RuleBook) -> None:
    seen, _ = observe(book, Incident().reported(0).closed(1, "cri", "reasons").events, until=2)
    assert seen.deadlines == {}


def test_outcomes_survive_the_case_state_round_trip(book: RuleBook) -> None:
    """A worker that takes over a partition must not count the same subject again."""
    store = MemoryStore()
    first = Observed()
    engine = Engine(book, store=store, observer=first)
    run(book, Incident().reported(0).crime(2).events, engine=engine)
    state = store.get("INC-1")
    assert state is not None
    restored = CaseState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.counted == state.counted and restored.deadlines == state.deadlines
    store.put(restored)
    second = Observed()
    again = Engine(book, store=store, observer=second)
    extra = Incident(tag="x").reported(0).crime(5, crime_id="C2").events[1]
    again.apply(parse_incident_event(json.dumps(extra)))
    assert first.hours() == [(2.0, True)]
    assert second.hours() == []


def test_each_evaluation_is_timed(book: RuleBook) -> None:
    seen, engine = observe(book, Incident().reported(0).crime(1).events)
    assert seen.evaluations == engine.stats["evaluations"] >= 2


def test_a_dropped_incident_is_reported(book: RuleBook) -> None:
    seen, engine = observe(book, Incident().reported(0).closed(1, "non_crime", "x").events)
    engine.advance_to(T + 31 * 24 * HOUR, inclusive=True)
    assert seen.drops == ["INC-1"]
    assert engine.store.get("INC-1") is None
