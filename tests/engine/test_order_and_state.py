"""Arrival order, duplicates, determinism, state bounds and retention."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from cdi_stream.contract import DdmDecision, parse_incident_event
from cdi_stream.engine import (
    CaseState,
    Engine,
    EngineConfig,
    IncidentLimitExceeded,
    JsonStore,
    UnknownFlag,
)
from cdi_stream.rules.book import RuleBook
from tests.engine.scenario import T0, Incident, run


def mixed_incidents() -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    a = (
        Incident("INC-A")
        .reported(0, disclosures=[("8N", "V1"), ("105A", "V2")])
        .crime(3, "105A", "V1")
    )
    a.crime(30, "105A", "V2", "C2").reclassified(31, "105A", "8N", crime_id="C1")
    b = Incident("INC-B").reported(1, disclosures=[("19C", "V9")]).closed(4, "non_crime", "x")
    c = (
        Incident("INC-C")
        .reported(2, disclosures=[("49", "V3")], qualifiers=["hate_race"])
        .crime(5, "49", "V3")
    )
    c.cancelled(40, "C6", role="officer", informed=False)
    d = Incident("INC-D").reported(2, disclosures=[("9A", None)]).closed(6, "cri")
    for inc in (a, b, c, d):
        events.extend(inc.events)
    events.sort(key=lambda e: (str(e["occurred_at"]), str(e["event_id"])))
    return events


def test_same_events_same_order_give_byte_identical_output(book: RuleBook) -> None:
    events = mixed_incidents()
    first = b"".join(c.to_json_bytes() for c in run(book, events, until=96).changes)
    second = b"".join(c.to_json_bytes() for c in run(book, events, until=96).changes)
    assert first == second
    assert first.count(b"\n") == 0 and len(first) > 1000


def test_open_flags_and_late_recordings_do_not_depend_on_arrival_order(book: RuleBook) -> None:
    events = mixed_incidents()
    expected = run(book, events, until=96)
    assert expected.open_canonical()
    rng = random.Random(7)
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        out = run(book, shuffled, until=96)
        assert out.open_canonical() == expected.open_canonical()
        assert out.late_recordings() == expected.late_recordings()


def test_crime_record_before_its_incident_report(book: RuleBook) -> None:
    report, crime = Incident().reported(0).crime(30).events
    in_order = run(book, [report, crime], until=48)
    reversed_ = run(book, [crime, report], until=48)
    assert in_order.open_canonical() == reversed_.open_canonical() == []
    assert in_order.late_recordings() == reversed_.late_recordings()
    assert len(in_order.late_recordings()) == 1


def test_duplicate_events_are_ignored(book: RuleBook) -> None:
    events = mixed_incidents()
    doubled = [e for e in events for _ in range(2)]
    engine = Engine(book)
    out = run(book, doubled, until=96, engine=engine)
    assert out.open_canonical() == run(book, events, until=96).open_canonical()
    assert engine.stats["duplicate_events"] == len(events)


def test_flag_ids_are_stable_across_runs_and_revisions(book: RuleBook) -> None:
    events = mixed_incidents()
    ids_a = {(c.flag_id, c.revision) for c in run(book, events, until=96).changes}
    ids_b = {(c.flag_id, c.revision) for c in run(book, events, until=96).changes}
    assert ids_a == ids_b
    assert all(i.startswith("flag-") and len(i) == 29 for i, _ in ids_a)


def test_state_round_trips_through_json_with_the_same_output(book: RuleBook) -> None:
    events = mixed_incidents()
    plain = run(book, events, until=96)
    store = JsonStore()
    through_json = run(book, events, until=96, engine=Engine(book, store=store))
    assert [c.to_json_bytes() for c in plain.changes] == [
        c.to_json_bytes() for c in through_json.changes
    ]
    state = store.get("INC-A")
    assert state is not None
    assert CaseState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert store.size_of("INC-A") < 20_000


def test_state_holds_no_free_text(book: RuleBook) -> None:
    store = JsonStore()
    inc = Incident().reported(0).closed(2, "cri", "SECRET NARRATIVE about a named person")
    run(book, inc.events, until=48, engine=Engine(book, store=store))
    state = store.get("INC-1")
    assert state is not None
    assert "SECRET" not in json.dumps(state.to_dict())


def test_events_per_incident_are_bounded(book: RuleBook) -> None:
    engine = Engine(book, config=EngineConfig(max_events_per_incident=3))
    inc = Incident().reported(0).updated(1).updated(2).updated(3)
    events = [parse_incident_event(json.dumps(e)) for e in inc.events]
    for e in events[:3]:
        engine.apply(e)
    with pytest.raises(IncidentLimitExceeded):
        engine.apply(events[3])
    assert engine.apply(events[0]) == []  # a duplicate is still just a duplicate


def test_disclosures_and_victims_per_incident_are_bounded(book: RuleBook) -> None:
    """Regression: 300 updates of 100 disclosures each took minutes to apply, because
    every event re-evaluates the whole incident; one source could stall a partition."""
    engine = Engine(book, config=EngineConfig(max_parties_per_incident=30))
    inc = Incident().reported(0)  # one disclosure, one victim
    for i in range(3):
        discs = [
            {"disclosure_id": f"D{i}-{j}", "offence_code": "8N", "victim_ref": "V1"}
            for j in range(10)
        ]
        inc.updated(1 + i, disclosures=discs)
    events = [parse_incident_event(json.dumps(e)) for e in inc.events]
    for e in events[:3]:
        engine.apply(e)  # 2 + 10 + 10 = 22 held
    with pytest.raises(IncidentLimitExceeded, match="disclosures and victims"):
        engine.apply(events[3])  # 32 > 30
    late = Incident(tag="c").reported(0).crime(2).events[1]
    assert engine.apply(parse_incident_event(json.dumps(late))) is not None  # others still go


def test_state_is_dropped_after_retention(book: RuleBook) -> None:
    cfg = EngineConfig(retention=2 * 86400)
    engine = Engine(book, config=cfg)
    inc = Incident().reported(0).crime(1).closed(2, "crime")
    run(book, inc.events, engine=engine)
    engine.advance_to((T0 + dt.timedelta(hours=49)).timestamp())
    assert engine.store.get("INC-1") is not None
    engine.advance_to((T0 + dt.timedelta(hours=50)).timestamp())
    assert engine.store.get("INC-1") is None
    assert engine.stats["incidents_dropped"] == 1
    assert len(engine.deadlines) == 0


def test_default_retention_is_thirty_days(book: RuleBook) -> None:
    engine = Engine(book)
    run(book, Incident().reported(0).crime(1).closed(2, "crime").events, engine=engine)
    engine.advance_to((T0 + dt.timedelta(days=30, hours=1)).timestamp())
    assert engine.store.get("INC-1") is not None
    engine.advance_to((T0 + dt.timedelta(days=30, hours=2)).timestamp())
    assert engine.store.get("INC-1") is None


def test_deadlines_fire_in_time_order_across_incidents(book: RuleBook) -> None:
    events = [*Incident("INC-B").reported(1).events, *Incident("INC-A").reported(0).events]
    events.sort(key=lambda e: str(e["occurred_at"]))
    out = run(book, events, until=30)
    fired = [(c.event_time, c.incident_id) for c in out.changes]
    assert fired == sorted(fired)


def test_rejected_decision_withdraws_and_suppresses(book: RuleBook) -> None:
    engine = Engine(book)
    inc = Incident().reported(0)
    out = run(book, inc.events, until=30, engine=engine)
    flag = out.one("crime_not_recorded")
    decision = DdmDecision.model_validate(
        {
            "decision_id": "DEC-1",
            "flag_id": flag.flag_id,
            "incident_id": "INC-1",
            "decision": "rejected",
            "reason": "victim is a police dog",
            "decided_at": "2026-01-06T09:00:00Z",
            "ddm_ref": "DDM-7",
        }
    )
    withdrawn = engine.decide(decision)
    assert [(c.flag_id, c.revision, c.status) for c in withdrawn] == [
        (flag.flag_id, 2, "withdrawn")
    ]
    assert engine.decide(decision) == []
    more = run(
        book, Incident(tag="b").updated(31, qualifiers=["injury"]).events, until=40, engine=engine
    )
    assert [c for c in more.changes if c.flag_id == flag.flag_id] == []


def test_upheld_flag_resolves_when_the_record_is_put_right(book: RuleBook) -> None:
    engine = Engine(book)
    out = run(book, Incident().reported(0).events, until=30, engine=engine)
    flag = out.one("crime_not_recorded")
    decision = DdmDecision.model_validate(
        {
            "decision_id": "DEC-2",
            "flag_id": flag.flag_id,
            "incident_id": "INC-1",
            "decision": "upheld",
            "reason": "ok",
            "decided_at": "2026-01-06T09:00:00Z",
            "ddm_ref": "DDM-7",
        }
    )
    (upheld,) = engine.decide(decision)  # the queue sees the flag is decided
    assert (upheld.flag_id, upheld.revision, upheld.status) == (flag.flag_id, 2, "open")
    assert (flag.ddm_decision, upheld.ddm_decision) == (None, "upheld")
    assert upheld.model_copy(update={"revision": 1, "ddm_decision": None}) == flag.model_copy(
        update={"emitted_at": upheld.emitted_at}
    )
    assert engine.decide(decision) == []  # the same decision again changes nothing
    current = {c.flag_id: c for c in engine.current_flags("INC-1")}
    assert current[flag.flag_id].ddm_decision == "upheld"  # republished the same way
    more = run(book, Incident(tag="b").crime(32).events, until=40, engine=engine)
    resolved = more.one("crime_not_recorded")
    assert (resolved.status, resolved.revision, resolved.ddm_decision) == ("resolved", 3, "upheld")
    assert more.one("late_recording").status == "resolved"


def test_an_upheld_decision_on_a_closed_flag_publishes_it_with_the_status_kept(
    book: RuleBook,
) -> None:
    """Its latest revision carries the decision, as when the decision comes first."""
    engine = Engine(book)
    out = run(book, Incident().reported(0).crime(14).events, until=30, engine=engine)
    warning = out.one("deadline_warning")
    assert warning.status == "resolved"  # warned at 12 h, recorded at 14 h
    decision = DdmDecision.model_validate(
        {
            "decision_id": "DEC-3",
            "flag_id": warning.flag_id,
            "incident_id": "INC-1",
            "decision": "upheld",
            "reason": "ok",
            "decided_at": "2026-01-06T09:00:00Z",
            "ddm_ref": "DDM-7",
        }
    )
    (revision,) = engine.decide(decision)
    assert (revision.status, revision.ddm_decision) == ("resolved", "upheld")
    assert revision.revision == warning.revision + 1
    assert engine.decide(decision) == []  # the same decision again


def test_decision_for_unknown_flag_is_an_error(book: RuleBook) -> None:
    engine = Engine(book)
    decision = DdmDecision.model_validate(
        {
            "decision_id": "DEC-3",
            "flag_id": "flag-000000000000000000000000",
            "incident_id": "INC-404",
            "decision": "rejected",
            "reason": "x",
            "decided_at": "2026-01-06T09:00:00Z",
            "ddm_ref": "DDM-7",
        }
    )
    with pytest.raises(UnknownFlag):
        engine.decide(decision)


def test_unknown_offence_codes_are_counted_not_fatal(book: RuleBook) -> None:
    engine = Engine(book)
    inc = Incident().reported(0, disclosures=[("XYZ", "V1")]).crime(2, "QQQ")
    out = run(book, inc.events, until=48, engine=engine)
    assert engine.stats["unknown_offence_codes"] == 2
    assert out.open() == []
