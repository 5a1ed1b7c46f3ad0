"""Properties over generated incident histories: determinism and order independence."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdi_stream.contract import FlagChange
from cdi_stream.rules.book import RuleBook
from tests.engine.scenario import Incident, run

CODES = ["8N", "105A", "105B", "19C", "20A", "8L", "8Q", "49", "9A", "58A", "ZZ1"]
VICTIMS = ["V1", "V2", None]
QUALIFIERS = ["injury", "hate_race", "rape", "child", "former_partner", "course_of_conduct"]


@st.composite
def incidents(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One incident's history: a report, then a random mix of the other event types."""
    inc_id = draw(st.sampled_from(["INC-1", "INC-2"]))
    start_hours = draw(st.integers(0, 5))
    inc = Incident(inc_id)
    disclosures = draw(
        st.lists(
            st.tuples(st.sampled_from(CODES), st.sampled_from(VICTIMS)), min_size=0, max_size=3
        )
    )
    inc.reported(
        start_hours,
        disclosures=disclosures,
        qualifiers=draw(st.lists(st.sampled_from(QUALIFIERS), max_size=2)),
    )
    crime_ids = ["C1", "C2"]
    for _ in range(draw(st.integers(0, 6))):
        hours = draw(st.integers(start_hours, start_hours + 60))
        kind = draw(
            st.sampled_from(["crime", "crime", "reclass", "cancel", "close", "update", "n100"])
        )
        if kind == "crime":
            inc.crime(
                hours,
                draw(st.sampled_from(CODES)),
                draw(st.sampled_from(VICTIMS)),
                draw(st.sampled_from(crime_ids)),
            )
        elif kind == "reclass":
            inc.reclassified(
                hours,
                draw(st.sampled_from(CODES)),
                draw(st.sampled_from(CODES)),
                draw(st.sampled_from([None, "reason"])),
                draw(st.sampled_from(crime_ids)),
            )
        elif kind == "cancel":
            inc.cancelled(
                hours,
                draw(st.sampled_from(["C1", "C2", "C6"])),
                role=draw(st.sampled_from(["ddm", "officer"])),
                informed=draw(st.sampled_from([True, False, None])),
                crime_id=draw(st.sampled_from(crime_ids)),
            )
        elif kind == "close":
            inc.closed(
                hours,
                draw(st.sampled_from(["crime", "cri", "non_crime", "n100", "transferred"])),
                draw(st.sampled_from([None, "rationale"])),
            )
        elif kind == "update":
            code, ref = draw(st.sampled_from(CODES)), draw(st.sampled_from(VICTIMS))
            inc.updated(
                hours,
                disclosures=[
                    {
                        "disclosure_id": draw(st.sampled_from(["D1", "D9"])),
                        "offence_code": code,
                        "victim_ref": ref,
                        "contrary_evidence": draw(st.booleans()),
                    }
                ],
                qualifiers=draw(st.lists(st.sampled_from(QUALIFIERS), max_size=1)),
            )
        else:
            inc.n100(hours, draw(st.sampled_from([None, "rationale"])))
    return inc.events


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(events=incidents(), seed=st.randoms(use_true_random=False))
def test_open_flags_and_late_recordings_are_independent_of_arrival_order(
    book: RuleBook, events: list[dict[str, Any]], seed: Any
) -> None:
    ordered = sorted(events, key=lambda e: (e["occurred_at"], e["event_id"]))
    shuffled = events[:]
    seed.shuffle(shuffled)
    a = run(book, ordered, until=200)
    b = run(book, shuffled, until=200)
    assert a.open_canonical() == b.open_canonical()
    assert a.late_recordings() == b.late_recordings()


@SETTINGS
@given(events=incidents())
def test_replay_is_deterministic_and_ids_stable(
    book: RuleBook, events: list[dict[str, Any]]
) -> None:
    ordered = sorted(events, key=lambda e: (e["occurred_at"], e["event_id"]))
    a = run(book, ordered, until=200)
    b = run(book, ordered, until=200)
    assert [c.to_json_bytes() for c in a.changes] == [c.to_json_bytes() for c in b.changes]
    for change in a.changes:
        # Every emitted message is valid under the contract and survives a round trip.
        again = FlagChange.model_validate_json(change.to_json_bytes())
        assert again.to_json_bytes() == change.to_json_bytes()
    revisions: dict[str, int] = {}
    for change in a.changes:
        assert change.revision == revisions.get(change.flag_id, 0) + 1
        revisions[change.flag_id] = change.revision


@SETTINGS
@given(events=incidents())
def test_duplicates_change_nothing(book: RuleBook, events: list[dict[str, Any]]) -> None:
    ordered = sorted(events, key=lambda e: (e["occurred_at"], e["event_id"]))
    once = run(book, ordered, until=200)
    twice = run(book, [e for e in ordered for _ in range(2)], until=200)
    assert [c.to_json_bytes() for c in once.changes] == [c.to_json_bytes() for c in twice.changes]
