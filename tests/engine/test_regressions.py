"""One test per defect found in the engine's rules, each named for what it guards.

Each failed before its fix. Where a defect had a near case that already worked, the
test checks that one too, so the fix is known not to have moved it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from cdi_stream.contract import DdmDecision, FlagChange, parse_incident_event
from cdi_stream.engine import Engine, EngineConfig
from cdi_stream.engine.core import IncidentLimitExceeded
from cdi_stream.engine.state import CaseState
from cdi_stream.rules.book import RuleBook
from tests.engine.scenario import T0, Incident, Outcome, at, run

CONDUCT_EDITION = dt.datetime(2021, 6, 1, 9, 0, tzinfo=dt.UTC)  # edition 2020-04


# -- an immediate breach put right, then broken again before due_at -------------------


def _put_right_then_cancelled() -> Incident:
    """Closed as no crime at 2 h, the crime recorded at 3 h, validly cancelled at 5 h."""
    return (
        Incident()
        .reported(0, disclosures=[("49", "V1")])
        .closed(2, "non_crime")
        .crime(3, "49")
        .cancelled(5, "C4", role="ddm", informed=True)
    )


def test_a_cover_cancelled_before_due_after_an_immediate_breach_is_judged_at_due(
    book: RuleBook,
) -> None:
    """Recording the crime put the ``non_crime`` closure right, but its cancellation
    before due_at leaves the deadline to apply as usual."""
    inc = _put_right_then_cancelled()
    out = run(book, inc.events, until=30)
    assert out.open() == [("crime_not_recorded", "V1")]
    flag = out.one("crime_not_recorded")
    assert flag.event_time == T0 + dt.timedelta(hours=24)  # raised again at due_at
    assert flag.priority == "P1"  # a not-recorded finding at or after due_at
    assert [s for _, s in out.history("crime_not_recorded")] == ["open", "resolved", "open"]


def test_the_same_cancellation_without_the_closure_was_already_flagged(book: RuleBook) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("49", "V1")])
        .crime(3, "49")
        .cancelled(5, "C4", role="ddm", informed=True)
    )
    assert run(book, inc.events, until=30).open() == [("crime_not_recorded", "V1")]


def test_a_second_non_crime_closure_after_the_first_was_put_right_is_a_new_breach(
    book: RuleBook,
) -> None:
    inc = _put_right_then_cancelled().closed(6, "non_crime")
    out = run(book, inc.events, until=10)
    assert out.open() == [("crime_not_recorded", "V1")]
    assert out.one("crime_not_recorded").event_time == T0 + dt.timedelta(hours=6)


def test_an_immediate_breach_never_put_right_keeps_its_kind_and_time_at_due(
    book: RuleBook,
) -> None:
    """The deadline passing is not a second breach: the finding raised at the closure
    stays as it is (not re-raised, not turned into another finding)."""
    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1"), ("8N", "V2")])
        .crime(1, "8N", victim="V1")
        .closed(2, "non_crime")
    )
    out = run(book, inc.events, until=30)
    assert out.open() == [("crime_not_recorded", "V2")]
    assert [s for _, s in out.history("crime_not_recorded")] == ["open"]
    assert out.one("crime_not_recorded").event_time == T0 + dt.timedelta(hours=2)


# -- a "no crime" closure exactly at due_at ----------------------------------------------


def _closed_at(hours: float) -> Incident:
    return (
        Incident()
        .reported(0, disclosures=[("8N", "V1"), ("8N", "V2")])
        .crime(1, "8N", victim="V1")
        .closed(hours, "non_crime")
    )


def test_a_non_crime_closure_exactly_at_due_is_applied_before_the_deadline(
    book: RuleBook,
) -> None:
    """What is due at t fires after the events at t: the closure makes it the immediate
    finding, not ``additional_crime_not_recorded``."""
    out = run(book, _closed_at(24).events, until=30)
    assert out.open() == [("crime_not_recorded", "V2")]


def test_a_non_crime_closure_just_before_due_was_already_immediate(book: RuleBook) -> None:
    out = run(book, _closed_at(24 - 1 / 3600).events, until=30)
    assert out.open() == [("crime_not_recorded", "V2")]


# -- reclassifications change a crime's code from their own time on ----------------------


def test_a_crime_reclassified_to_rape_after_due_is_a_late_rape_recording(book: RuleBook) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("19C", "V1")])
        .crime(5, "20A")
        .reclassified(30, "20A", "19C", rationale="victim account clarified")
    )
    out = run(book, inc.events, until=40)
    assert out.history("rape_not_resolved")[0] == (1, "open")
    assert out.one("rape_not_resolved").status == "resolved"
    assert out.one("late_recording").status == "resolved"


def test_a_rape_crime_standing_at_due_is_not_unresolved_after_a_later_downgrade(
    book: RuleBook,
) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("19C", "V1")])
        .crime(5, "19C")
        .reclassified(30, "19C", "20A", rationale="AVI: no penetration")
    )
    out = run(book, inc.events, until=40)
    assert out.final("rape_not_resolved") == []
    assert out.final("late_recording") == []


def test_a_state_based_offence_is_covered_from_the_reclassification_that_gave_its_code(
    book: RuleBook,
) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("66", None)], victims=[])
        .crime(5, "9A", victim=None)
        .reclassified(30, "9A", "66", rationale="more information")
    )
    out = run(book, inc.events, until=40)
    assert out.one("late_recording").status == "resolved"
    assert out.open() == []


def test_the_conduct_gap_at_due_uses_the_codes_standing_at_due(book: RuleBook) -> None:
    """Conduct edition: at due_at both kinds were recorded; reclassifying one of them
    into the other kind later does not make a gap at due_at after the fact."""
    inc = (
        Incident(start=CONDUCT_EDITION)
        .reported(0, disclosures=[("8N", "V1"), ("8L", "V1")])
        .crime(2, "8L", crime_id="C1")
        .crime(3, "8N", crime_id="C2")
        .reclassified(30, "8N", "8L", crime_id="C2", rationale="no injury after all")
    )
    out = run(book, inc.events, until=40, start=CONDUCT_EDITION)
    assert out.final("additional_crime_not_recorded") == []


# -- priority floors -------------------------------------------------------------------


def test_an_immediate_not_recorded_finding_for_theft_is_p3(book: RuleBook) -> None:
    """The spec sets not-recorded findings to P1 at or after due_at, and otherwise by
    offence group: theft with no qualifier is "the rest", P3. The rule's floor was P2."""
    inc = Incident().reported(0, disclosures=[("49", "V1")]).closed(2, "non_crime")
    flag = run(book, inc.events, until=3).one("crime_not_recorded")
    assert (flag.status, flag.priority) == ("open", "P3")


# -- hate aggravation of a state-based offence -----------------------------------------


def test_a_state_based_9a_with_a_hate_qualifier_recorded_as_9a_is_wrongly_classified(
    book: RuleBook,
) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("9A", None)], victims=[], qualifiers=["hate_race"])
        .crime(2, "9A", victim=None)
        .reclassified(5, "9A", "9B", rationale="hate incident")
    )
    out = run(book, inc.events, until=30)
    assert [s for _, s in out.history("wrong_classification")] == ["open", "resolved"]
    first = out.changes[0]
    assert first.expected == {"offence_code": "9B"}
    assert first.observed == {"offence_code": "9A"}
    assert first.explanation.startswith("State-based offence 9A on incident")
    assert out.open() == []


def test_a_state_based_9a_recorded_in_its_aggravated_form_is_covered(book: RuleBook) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("9A", None)], victims=[], qualifiers=["hate_race"])
        .crime(2, "9B", victim=None)
    )
    out = run(book, inc.events, until=30)
    assert out.open() == []
    assert out.final("additional_crime_not_recorded") == []


# -- conduct edition: the conduct crime's own class ------------------------------------


def test_former_partner_harassment_recorded_beside_an_assault_is_stalking(
    book: RuleBook,
) -> None:
    inc = (
        Incident(start=CONDUCT_EDITION)
        .reported(
            0,
            disclosures=[("8N", "V1"), ("8L", "V1")],
            qualifiers=["former_partner", "course_of_conduct"],
        )
        .crime(2, "8N", crime_id="C1")
        .crime(2, "8L", crime_id="C2")
    )
    out = run(book, inc.events, until=30, start=CONDUCT_EDITION)
    flag = out.one("wrong_classification")
    assert flag.expected == {"offence_code": "8Q"}
    assert flag.observed == {"offence_code": "8L"}


def test_former_partner_harassment_alone_was_already_stalking(book: RuleBook) -> None:
    inc = (
        Incident(start=CONDUCT_EDITION)
        .reported(0, disclosures=[("8L", "V1")], qualifiers=["former_partner", "course_of_conduct"])
        .crime(2, "8L", crime_id="C2")
    )
    out = run(book, inc.events, until=30, start=CONDUCT_EDITION)
    assert out.one("wrong_classification").expected == {"offence_code": "8Q"}


def test_hate_harassment_recorded_beside_an_aggravated_assault_is_aggravated_too(
    book: RuleBook,
) -> None:
    inc = (
        Incident(start=CONDUCT_EDITION)
        .reported(0, disclosures=[("8N", "V1"), ("8L", "V1")], qualifiers=["hate_race"])
        .crime(2, "8P", crime_id="C1")
        .crime(2, "8L", crime_id="C2")
    )
    out = run(book, inc.events, until=30, start=CONDUCT_EDITION)
    assert out.one("wrong_classification").expected == {"offence_code": "8M"}


def test_the_principal_crime_is_reported_before_the_conduct_crime(book: RuleBook) -> None:
    """One flag per victim: with both wrong, it asks for the principal crime first."""
    inc = (
        Incident(start=CONDUCT_EDITION)
        .reported(0, disclosures=[("8N", "V1"), ("8L", "V1")], qualifiers=["hate_race"])
        .crime(2, "8N", crime_id="C1")
        .crime(2, "8L", crime_id="C2")
        .reclassified(5, "8N", "8P", crime_id="C1", rationale="hate")
    )
    out = run(book, inc.events, until=30, start=CONDUCT_EDITION)
    expected = [c.expected["offence_code"] for c in out.changes if c.status == "open"]
    assert [code for i, code in enumerate(expected) if expected[i - 1 : i] != [code]] == [
        "8P",
        "8M",
    ]
    assert out.one("wrong_classification").status == "open"


# -- a replacing disclosure that names another victim -----------------------------------


def test_a_disclosure_corrected_to_another_victim_leaves_one_victim(book: RuleBook) -> None:
    """After the correction V1 is the incident's only victim, so the rape qualifier
    makes V1 a rape subject, which an 8N crime does not resolve."""
    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V2")], victims=[], qualifiers=["rape"])
        .updated(1, disclosures=[{"disclosure_id": "D1", "offence_code": "8N", "victim_ref": "V1"}])
        .crime(2, "8N", victim="V1")
    )
    out = run(book, inc.events, until=30)
    assert out.open() == [("rape_not_resolved", "V1")]


def test_an_only_victim_with_the_rape_qualifier_was_already_a_rape_subject(
    book: RuleBook,
) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1")], victims=[], qualifiers=["rape"])
        .crime(2, "8N", victim="V1")
    )
    assert ("rape_not_resolved", "V1") in run(book, inc.events, until=30).open()


def test_a_partial_late_recording_of_both_kinds_leaves_the_other_one_owed(
    book: RuleBook,
) -> None:
    """Conduct edition: neither crime recorded by due_at, then only the conduct crime:
    the assault is still owed, "either one missing" includes both missing."""
    inc = (
        Incident(start=CONDUCT_EDITION)
        .reported(0, disclosures=[("8N", "V1"), ("8Q", "V1")])
        .crime(30, "8Q", crime_id="C1")
    )
    out = run(book, inc.events, until=40, start=CONDUCT_EDITION)
    assert out.one("crime_not_recorded").status == "resolved"
    assert out.one("late_recording").status == "resolved"
    owed = out.one("additional_crime_not_recorded")
    assert (owed.status, owed.expected) == ("open", {"offence_code": "8N"})


def test_a_wrong_class_from_a_downgrade_dates_from_the_downgrade(book: RuleBook) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1")])
        .crime(1, "8N")
        .reclassified(10, "8N", "105A", rationale="no injury recorded")
    )
    flag = run(book, inc.events, until=12).one("wrong_classification")
    assert flag.expected == {"offence_code": "8N"}
    assert flag.event_time == T0 + dt.timedelta(hours=10)


# -- DDM decisions: an upheld flag ends as any other, and shows its decision --------------


def _decision(flag_id: str, hours: float, decision: str = "upheld") -> DdmDecision:
    return DdmDecision(
        decision_id=f"DEC-{decision}-{hours}",
        flag_id=flag_id,
        incident_id="INC-1",
        decision=decision,
        reason="checked",
        decided_at=T0 + dt.timedelta(hours=hours),
        ddm_ref="DDM-1",
    )


def _drive(book: RuleBook, steps: list[Any], until: float) -> Outcome:
    """Events (dicts), ("advance", hours) or ("upheld", finding, hours), in order."""
    engine = Engine(book)
    changes: list[FlagChange] = []
    for step in steps:
        if isinstance(step, dict):
            changes += engine.apply(parse_incident_event(json.dumps(step)))
        elif step[0] == "advance":
            changes += engine.advance_to((T0 + dt.timedelta(hours=step[1])).timestamp())
        else:
            _, finding, hours = step
            flag_id = next(c.flag_id for c in changes if c.finding == finding)
            changes += engine.advance_to(
                (T0 + dt.timedelta(hours=hours)).timestamp(), inclusive=False
            )
            changes += engine.decide(_decision(flag_id, hours))
    changes += engine.advance_to((T0 + dt.timedelta(hours=until)).timestamp())
    return Outcome(changes)


def test_an_upheld_warning_replaced_by_a_not_recorded_finding_is_withdrawn(
    book: RuleBook,
) -> None:
    """Nothing was recorded, so the warning was not put right: another finding took its
    place, which withdraws it."""
    inc = Incident().reported(0)
    out = _drive(book, [*inc.events, ("advance", 13), ("upheld", "deadline_warning", 14)], 30)
    assert out.one("crime_not_recorded").status == "open"
    warning = out.one("deadline_warning")
    assert (warning.status, warning.ddm_decision) == ("withdrawn", "upheld")


def test_an_upheld_flag_no_longer_needed_ends_the_same_whatever_arrived_first(
    book: RuleBook,
) -> None:
    inc = Incident().reported(0).contrary(40)
    report, update = inc.events
    first = _drive(
        book, [report, ("advance", 25), ("upheld", "crime_not_recorded", 30), update], 50
    )
    later = _drive(
        book, [report, ("advance", 25), update, ("upheld", "crime_not_recorded", 41)], 50
    )
    ends = {
        (o.one("crime_not_recorded").status, o.one("crime_not_recorded").ddm_decision)
        for o in (first, later)
    }
    assert ends == {("withdrawn", "upheld")}


def test_an_upheld_flag_shows_the_decision_whether_resolved_before_or_after_it(
    book: RuleBook,
) -> None:
    report, crime = Incident().reported(0).crime(30, "8N", "V1").events
    before = _drive(
        book, [report, ("advance", 25), ("upheld", "crime_not_recorded", 29), crime], 40
    )
    after = _drive(book, [report, ("advance", 25), crime, ("upheld", "crime_not_recorded", 31)], 40)
    for out in (before, after):
        flag = out.one("crime_not_recorded")
        assert (flag.status, flag.ddm_decision) == ("resolved", "upheld")


# -- cancellations and downgrades: judged as they were, prioritised by their victim ------


def test_a_cancellation_is_judged_by_the_crimes_class_when_it_was_cancelled(
    book: RuleBook,
) -> None:
    violence = (
        Incident()
        .reported(0, disclosures=[("105A", "V1")])
        .crime(2, "105A")
        .cancelled(30, "C4", role="officer", informed=True)
        .reclassified(31, "105A", "49", rationale="details")
    )
    assert run(book, violence.events, until=48).one("incorrect_cancellation").status == "open"
    theft = (
        Incident()
        .reported(0, disclosures=[("49", "V1")])
        .crime(2, "49")
        .cancelled(30, "C4", role="officer", informed=True)
        .reclassified(31, "49", "8N", rationale="details")
    )
    assert run(book, theft.events, until=48).final("incorrect_cancellation") == []


def test_cancellation_and_downgrade_flags_take_their_victims_priority(book: RuleBook) -> None:
    """From the more serious of the victim's most serious disclosed offence and the
    flag's codes, and P1 for a rape subject, as every other flag."""
    injury = Incident().reported(0, disclosures=[("8N", "V1")]).crime(2, "105A").cancelled(30, "C6")
    assert run(book, injury.events, until=48).one("incorrect_cancellation").priority == "P1"
    rape = (
        Incident()
        .reported(0, disclosures=[("105A", "V1")], qualifiers=["rape"])
        .crime(2, "105A")
        .cancelled(30, "C6")
    )
    assert run(book, rape.events, until=48).one("incorrect_cancellation").priority == "P1"
    downgrade = (
        Incident()
        .reported(0, disclosures=[("8N", "V1")])
        .crime(2, "105B")
        .reclassified(5, "105B", "105A")
    )
    assert run(book, downgrade.events, until=48).one("unexplained_downgrade").priority == "P1"


def test_a_downgrade_restored_to_a_code_of_equal_weight_is_resolved(book: RuleBook) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("34A", "V1")])
        .crime(2, "34A")
        .reclassified(5, "34A", "8N")
        .reclassified(6, "8N", "34B", rationale="restored")  # 34A and 34B weigh the same
    )
    assert run(book, inc.events, until=48).one("unexplained_downgrade").status == "resolved"


# -- warnings and closures around an immediate breach ------------------------------------


def test_warnings_are_given_after_an_immediate_breach_was_put_right(book: RuleBook) -> None:
    out = run(book, _put_right_then_cancelled().events, until=30)
    assert out.history("deadline_warning") == [(1, "open"), (2, "open"), (3, "withdrawn")]
    assert out.open() == [("crime_not_recorded", "V1")]


def test_a_no_crime_closure_after_due_replacing_a_discharging_one_is_immediate(
    book: RuleBook,
) -> None:
    for first in (("cri", "rationale"), ("transferred", None), ("duplicate", None)):
        for second in (("non_crime", None), ("cri", None)):
            inc = Incident().reported(0, disclosures=[("49", "V1")])
            out = run(book, inc.closed(5, *first).closed(30, *second).events, until=40)
            assert ("crime_not_recorded", "V1") in out.open(), (first, second)
            assert out.one("crime_not_recorded").event_time == T0 + dt.timedelta(hours=30)
    rape = Incident().reported(0, disclosures=[("19C", "V1")])
    rape.closed(5, "cri", "rationale").closed(30, "non_crime")
    assert ("rape_not_resolved", "V1") in run(book, rape.events, until=40).open()


# -- retention and limits ---------------------------------------------------------------

DAY = 24.0


def test_a_disclosure_after_the_closure_is_not_lost_to_retention(book: RuleBook) -> None:
    """An event after the closure reopens the incident: its retention runs from that
    event, and a pending deadline is never dropped."""
    inc = Incident().reported(0).crime(1).closed(2, "crime")
    inc.updated(
        29 * DAY + 6,
        disclosures=[{"disclosure_id": "D2", "offence_code": "8N", "victim_ref": "V2"}],
    )
    out = run(book, inc.events, until=31 * DAY)
    assert ("additional_crime_not_recorded", "V2") in out.open()


def test_an_event_after_the_drop_time_starts_a_new_case_whether_or_not_time_was_advanced(
    book: RuleBook,
) -> None:
    config = EngineConfig(retention=48 * 3600, max_events_per_incident=3)
    old = Incident().reported(0).crime(1).closed(2, "crime").events
    resent = dict(old[0], occurred_at=at(100), reported_at=at(100))  # the same event id
    outcomes = []
    for advanced in (False, True):
        engine = Engine(book, config=config)
        run(book, old, engine=engine)
        if advanced:
            engine.advance_to((T0 + dt.timedelta(hours=99)).timestamp())  # dropped
        assert not engine.is_duplicate(parse_incident_event(json.dumps(resent)))
        changes = engine.apply(parse_incident_event(json.dumps(resent)))
        changes += engine.advance_to((T0 + dt.timedelta(hours=130)).timestamp())
        outcomes.append(sorted((c.finding, c.status) for c in changes))
    assert outcomes[0] == outcomes[1]
    assert ("crime_not_recorded", "open") in outcomes[0]


def test_the_parties_limit_bounds_the_event_that_creates_the_case(book: RuleBook) -> None:
    engine = Engine(book, config=EngineConfig(max_parties_per_incident=5))
    report = Incident().reported(0, disclosures=[("8N", f"V{i}") for i in range(20)]).events[0]
    with pytest.raises(IncidentLimitExceeded, match="would hold 40"):
        engine.apply(parse_incident_event(json.dumps(report)))


def test_ddm_decisions_do_not_use_up_the_event_limit(book: RuleBook) -> None:
    engine = Engine(book, config=EngineConfig(max_events_per_incident=3))
    inc = Incident().reported(0).crime(1, "105A").closed(2, "crime")
    flag = run(book, inc.events[:2], engine=engine, until=30).one("wrong_classification")
    for n in range(2):
        made = _decision(flag.flag_id, 31 + n)
        engine.decide(made.model_copy(update={"decision_id": f"DEC-{n}"}))
    engine.apply(parse_incident_event(json.dumps(inc.events[2])))
    with pytest.raises(IncidentLimitExceeded, match="has 3 events"):
        engine.apply(parse_incident_event(json.dumps(Incident(tag="b").crime(3, "8N").events[0])))


# -- found reviewing the fixes above ---------------------------------------------------


def test_a_pending_deadline_fires_before_the_case_is_dropped(book: RuleBook) -> None:
    """The deadline that keeps a case is evaluated at its wake-up, before the drop."""
    short = Incident().reported(0).closed(1, "crime")
    out = run(book, short.events, until=48, config=EngineConfig(retention=6 * 3600))
    assert ("crime_not_recorded", "V1") in out.open()
    later = Incident().reported(0).closed(1, "crime")
    later.updated(
        2,
        disclosures=[
            {
                "disclosure_id": "D2",
                "offence_code": "8N",
                "victim_ref": "V2",
                "disclosed_at": at(31 * DAY),
            }
        ],
    )
    assert ("crime_not_recorded", "V2") in run(book, later.events, until=33 * DAY).open()


def test_a_cover_validly_cancelled_after_due_then_closed_as_no_crime_is_not_flagged(
    book: RuleBook,
) -> None:
    """The usual way to close an incident whose crime was validly cancelled."""
    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1")])
        .crime(2, "8N")
        .cancelled(30, "C1", role="ddm", informed=True)
        .closed(31, "non_crime")
    )
    out = run(book, inc.events, until=40)
    assert out.final("crime_not_recorded") == [] and out.final("incorrect_cancellation") == []


def test_a_cancellation_dated_before_its_crime_is_judged_by_the_recorded_class(
    book: RuleBook,
) -> None:
    for cancelled_at in (5.5, 4):  # while the 8N stood; and before its record (skew)
        inc = Incident().reported(0).crime(5, "8N")
        inc.reclassified(6, "8N", "49", rationale="r").cancelled(
            cancelled_at, "C1", role="officer", informed=True
        )
        (flag,) = run(book, inc.events, until=48).final("incorrect_cancellation")
        assert "violence" in flag.explanation


def test_decisions_are_bounded_and_kept_apart_from_events(book: RuleBook) -> None:
    """Decisions neither use up the event bound nor escape a bound of their own; states
    written when they were kept among the events load with them apart."""
    engine = Engine(book, config=EngineConfig(max_events_per_incident=3))
    flag = run(book, Incident().reported(0).events, engine=engine, until=30).one(
        "crime_not_recorded"
    )
    for n in range(3):
        engine.decide(_decision(flag.flag_id, 31 + n).model_copy(update={"decision_id": f"D{n}"}))
    with pytest.raises(IncidentLimitExceeded, match="3 decisions"):
        engine.decide(_decision(flag.flag_id, 40).model_copy(update={"decision_id": "D9"}))
    case = engine.store.get("INC-1")
    assert case is not None and case.decided == {"D0", "D1", "D2"}
    old = case.to_dict()
    old["seen"] = [*old["seen"], "decision:D0", "decision:D7"]
    del old["decided"]
    loaded = CaseState.from_dict(old)
    assert loaded.seen == case.seen
    assert loaded.decided == {"D0", "D7"}


# -- a subject gone from the facts keeps no deadline ---------------------------------


def test_a_disclosure_moved_to_another_victim_leaves_no_deadline_behind(book: RuleBook) -> None:
    """The old victim's deadline stayed in the case for good, so the metrics showed an
    open deadline long past due (and the stuck-timer alert fired)."""
    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1")], victims=[])
        .updated(1, disclosures=[{"disclosure_id": "D1", "offence_code": "8N", "victim_ref": "V2"}])
        .crime(2, "8N", victim="V2")
    )
    engine = Engine(book)
    out = run(book, inc.events, until=30 * 24, engine=engine)
    assert out.open() == []
    case = engine.store.get("INC-1")
    assert case is not None and case.deadlines == {}
    moved_back = Incident().reported(0, disclosures=[("8N", "V1")], victims=[]).events
    engine = Engine(book)
    run(book, moved_back, engine=engine)
    case = engine.store.get("INC-1")
    assert case is not None and list(case.deadlines) == ["victim:V1"], "a live one stays"


# -- an event dated after the drop, arriving once time has passed it ------------------


def test_an_event_dated_after_the_drop_starts_a_new_case_in_any_arrival_order(
    book: RuleBook,
) -> None:
    """With event time already past the old case's drop time (another incident's event
    moved it) but the drop's wake-up not yet fired, the event merged into the old case."""
    other = Incident("INC-B").reported(41 * 24, disclosures=[]).events
    crime_only = Incident("INC-A", tag="a").crime(0, "8N").events  # never reported: 30 days
    report = Incident("INC-A", tag="b").reported(36 * 24).events
    first = run(book, other + crime_only + report, until=40 * 24)
    second = run(book, crime_only + other + report, until=40 * 24)
    assert first.open() == second.open() == [("crime_not_recorded", "V1")]


# -- a clock starting later under a closure in force ----------------------------------


def test_a_clock_starting_later_under_a_no_crime_closure_breaches_at_its_start(
    book: RuleBook,
) -> None:
    """Nothing woke the case at the clock's start, so the breach waited for the first
    warning (12 hours later) or the next event."""
    inc = (
        Incident()
        .reported(0, disclosures=[])
        .closed(1, "non_crime")
        .updated(
            2,
            disclosures=[
                {
                    "disclosure_id": "D1",
                    "offence_code": "8N",
                    "victim_ref": "V1",
                    "disclosed_at": at(4),
                }
            ],
        )
    )
    out = run(book, inc.events, until=5)
    assert out.open() == [("crime_not_recorded", "V1")]
    assert out.one("crime_not_recorded").event_time == T0 + dt.timedelta(hours=4)


# -- a report corrected to before every edition ---------------------------------------


def test_flags_raised_under_an_edition_are_withdrawn_when_none_applies(book: RuleBook) -> None:
    """The engine returned early when no edition applied, so flags raised under the
    first report stood for good, or not, depending on arrival order."""
    inc = Incident().reported(0).events
    resent = dict(inc[0], event_id="INC-1-resent", occurred_at=at(30))
    resent["reported_at"] = "1999-06-01T00:00:00Z"
    late = run(book, [*inc, resent], until=60)
    early = run(book, [inc[0], dict(resent, occurred_at=at(1))], until=60)
    assert late.open() == early.open() == []
    assert late.history("crime_not_recorded") == [(1, "open"), (2, "withdrawn")]


# -- an offence disclosed later owes its own record 24 hours from its disclosure ------


def test_a_rape_disclosed_later_keeps_the_victims_first_deadline(book: RuleBook) -> None:
    """A victim has one clock: a rape disclosed after it ran out is owed at once. Giving
    the rape a clock of its own withdrew the breach already standing (nothing at all was
    recorded by the first deadline) for the 24 hours after the rape was disclosed."""
    disclosure = {"disclosure_id": "D2", "offence_code": "19C", "victim_ref": "V1"}
    inc = Incident().reported(0, disclosures=[("105A", "V1")]).updated(30, disclosures=[disclosure])
    out = run(book, inc.events, until=40)
    assert out.open() == [("rape_not_resolved", "V1")]
    assert out.one("rape_not_resolved").event_time == T0 + dt.timedelta(hours=24)


def _assault_recorded_then_harassment_disclosed() -> Incident:
    """Conduct edition: 8N disclosed and recorded at once, 8L disclosed at 30 h."""
    disclosure = {"disclosure_id": "D2", "offence_code": "8L", "victim_ref": "V1"}
    return (
        Incident(start=CONDUCT_EDITION)
        .reported(0, disclosures=[("8N", "V1")])
        .crime(1, "8N")
        .updated(30, disclosures=[disclosure])
    )


def test_a_conduct_crime_disclosed_later_gets_its_own_deadline(book: RuleBook) -> None:
    """The conduct crime was judged against the first offence's deadline, so it was
    flagged missing the moment it was disclosed, after that deadline."""
    inc = _assault_recorded_then_harassment_disclosed()
    assert run(book, inc.events, until=53, start=CONDUCT_EDITION).open() == []
    out = run(book, inc.events, until=54, start=CONDUCT_EDITION)
    flag = out.one("additional_crime_not_recorded")
    assert flag.event_time == CONDUCT_EDITION + dt.timedelta(hours=54)
    assert flag.expected == {"offence_code": "8L"}
    assert "by 2021-06-03 15:00 UTC" in flag.explanation
    both = (
        Incident(start=CONDUCT_EDITION)
        .reported(0, disclosures=[("8N", "V1"), ("8L", "V1")])
        .crime(1, "8N")
    )
    near = run(book, both.events, until=24, start=CONDUCT_EDITION)
    assert near.one("additional_crime_not_recorded").event_time == CONDUCT_EDITION + dt.timedelta(
        hours=24
    ), "disclosed together, both are due at the first deadline"


def test_a_conduct_crime_disclosed_later_is_not_missing_before_its_deadline(
    book: RuleBook,
) -> None:
    """With the first offence recorded late (nothing by the first deadline), the later
    conduct crime was flagged missing at once, dated at the first deadline, before it
    was even disclosed."""
    disclosure = {"disclosure_id": "D2", "offence_code": "8L", "victim_ref": "V1"}
    inc = (
        Incident(start=CONDUCT_EDITION)
        .reported(0, disclosures=[("8N", "V1")])
        .updated(30, disclosures=[disclosure])
        .crime(40, "8N")
    )
    early = run(book, inc.events, until=41, start=CONDUCT_EDITION)
    assert early.final("additional_crime_not_recorded") == []
    assert [c.status for c in early.final("late_recording")] == ["resolved"]
    due = run(book, inc.events, until=54, start=CONDUCT_EDITION)
    flag = due.one("additional_crime_not_recorded")
    assert flag.event_time == CONDUCT_EDITION + dt.timedelta(hours=54)


def test_the_report_waits_for_a_later_conduct_crimes_deadline(book: RuleBook) -> None:
    """The report counted the victim as incompletely recorded while the engine, rightly,
    raised nothing: the conduct crime disclosed later was not yet due. (Before its
    deadline the victim counts as recorded, as one with both disclosed together does.)"""
    from cdi_stream.engine.outcomes import case_outcomes

    inc = _assault_recorded_then_harassment_disclosed()

    def subject_at(hours: float) -> Any:
        engine = Engine(book)
        run(book, inc.events, until=hours, start=CONDUCT_EDITION, engine=engine)
        now = (CONDUCT_EDITION + dt.timedelta(hours=hours)).timestamp()
        (outcome,) = case_outcomes(engine, now)
        (subject,) = outcome.subjects
        return subject

    waiting = subject_at(40)
    assert waiting.covered and waiting.complete  # recorded so far, the rest not yet due
    missing = subject_at(55)
    assert not missing.complete


def test_a_hate_qualifier_the_contract_does_not_name_is_ignored(book: RuleBook) -> None:
    """Unknown qualifiers are kept and ignored by the rules; ``hate_misogyny`` used to
    count as a hate qualifier because of its prefix."""
    unknown = Incident().reported(0, disclosures=[("105A", "V1")], qualifiers=["hate_misogyny"])
    assert run(book, unknown.crime(2, "105A").events, until=30).open() == []
    known = Incident().reported(0, disclosures=[("105A", "V1")], qualifiers=["hate_race"])
    out = run(book, known.crime(2, "105A").events, until=30)
    assert out.open() == [("wrong_classification", "V1")]
    assert out.one("wrong_classification").expected["offence_code"] == "105B"


def test_an_unknown_code_beside_conduct_offences_does_not_suppress_their_comparison(
    book: RuleBook,
) -> None:
    """In the conduct edition an unknown code counted as the victim's "other offence",
    so the ordinary comparison among the conduct offences was skipped."""
    start = dt.datetime(2019, 6, 3, 8, 0, tzinfo=dt.UTC)
    with_unknown = (
        Incident(start=start).reported(0, disclosures=[("8Q", "V1"), ("ZZ1", "V1")]).crime(2, "8L")
    )
    plain = Incident(start=start).reported(0, disclosures=[("8Q", "V1")]).crime(2, "8L")
    for inc in (with_unknown, plain):
        out = run(book, inc.events, until=30)
        assert out.open() == [("wrong_classification", "V1")]
        assert out.one("wrong_classification").expected["offence_code"] == "8Q"


def test_an_invalid_cancellation_reason_is_shown_as_given(book: RuleBook) -> None:
    """``observed.reason`` said "an invalid reason" while the explanation named C6; a
    reason given as free text is shown as such, never quoted."""
    for reason, shown in (("C6", "C6"), ("victim withdrew support", "free text")):
        inc = Incident().reported(0).crime(2).cancelled(3, reason, role="ddm", informed=True)
        flag = run(book, inc.events, until=30).one("incorrect_cancellation")
        assert flag.observed["reason"] == shown
        assert "withdrew" not in flag.explanation


def test_a_conduct_crime_disclosed_later_is_flagged_with_its_own_deadline(book: RuleBook) -> None:
    """The flag gave the victim's first deadline as ``due_at`` while its explanation
    and event time used the conduct crime's own, ten hours later."""
    start = dt.datetime(2019, 6, 3, 8, 0, tzinfo=dt.UTC)
    inc = (
        Incident(start=start)
        .reported(0, disclosures=[("8N", "V1")])
        .crime(2, "8N")
        .updated(
            10, disclosures=[{"disclosure_id": "D2", "offence_code": "8Q", "victim_ref": "V1"}]
        )
    )
    flag = run(book, inc.events, until=40).one("additional_crime_not_recorded")
    assert flag.due_at == start + dt.timedelta(hours=34)
    assert flag.event_time == flag.due_at


def _reinstated(again_at: float = 10) -> Incident:
    """Recorded at 2 h, cancelled in error at 5 h, recorded again under its own id."""
    return (
        Incident()
        .reported(0, disclosures=[("8N", "V1")])
        .crime(2, "8N")
        .cancelled(5, "C4", role="ddm", informed=True)
        .crime(again_at, "8N")
    )


def test_a_crime_recorded_again_under_its_id_after_cancellation_covers_again(
    book: RuleBook,
) -> None:
    """Only the first record of a crime id was kept, so a reinstated crime never covered
    its victim: warnings, then a P1 crime_not_recorded that nothing could clear."""
    inc = _reinstated()
    out = run(book, inc.events, until=30)
    assert out.open() == []
    assert "crime_not_recorded" not in {c.finding for c in out.changes}
    for order in (inc.events[::-1], [inc.events[i] for i in (0, 3, 2, 1)]):
        assert run(book, order, until=30).open() == []


def test_a_crime_reinstated_after_its_deadline_is_a_late_recording(book: RuleBook) -> None:
    out = run(book, _reinstated(again_at=30).events, until=40)
    assert out.open() == []
    assert [status for _, status in out.late_recordings()] == ["resolved"]


def test_a_reinstated_crime_cancelled_again_stops_covering(book: RuleBook) -> None:
    inc = _reinstated().cancelled(12, "C4", role="ddm", informed=True)
    assert run(book, inc.events, until=30).open() == [("crime_not_recorded", "V1")]


def test_a_record_sent_again_while_the_crime_stands_changes_nothing(book: RuleBook) -> None:
    """A second record before any cancellation is the same record: the cancellation
    after it still ends the crime."""
    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1")])
        .crime(2, "8N")
        .crime(3, "8N")
        .cancelled(5, "C4", role="ddm", informed=True)
    )
    assert run(book, inc.events, until=30).open() == [("crime_not_recorded", "V1")]


def test_records_sent_again_survive_a_state_round_trip(book: RuleBook) -> None:
    engine = Engine(book)
    for event in _reinstated().events:
        engine.apply(parse_incident_event(json.dumps(event)))
    state = engine.store.get("INC-1")
    assert state is not None and len(state.rerecords) == 1
    again = CaseState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


def test_times_in_expected_and_observed_are_rfc_3339(book: RuleBook) -> None:
    """They were written "2026-01-06 08:00 UTC", cut to the minute, unlike every other
    timestamp of the contract."""
    out = run(book, Incident().reported(0).crime(30).events, until=48)
    late = out.one("late_recording")
    assert late.expected == {"recorded_by": "2026-01-06T08:00:00Z"}
    assert late.observed["recorded_at"] == "2026-01-06T14:00:00Z"
    assert "first recorded at 2026-01-06 14:00 UTC" in late.explanation


def test_a_rape_subject_with_another_class_recorded_is_told_what_is_missing(
    book: RuleBook,
) -> None:
    """Its warnings said "no crime is recorded" and ``rape_not_resolved`` showed
    ``recorded_codes: none`` while a 20A crime stood for the victim."""
    inc = Incident().reported(0, disclosures=[("19C", "V1")]).crime(2, "20A")
    out = run(book, inc.events, until=30)
    warning = out.one("deadline_warning")
    assert "neither a rape crime (19*) nor an N100 with a rationale is recorded" in (
        warning.explanation
    )
    assert out.one("rape_not_resolved").observed["recorded_codes"] == "20A"
    plain = run(book, Incident().reported(0).events, until=13).one("deadline_warning")
    assert "and no crime is recorded 12 hours" in plain.explanation


def test_an_offence_code_that_is_a_description_costs_nothing_else(book: RuleBook) -> None:
    """A code over 16 characters failed validation and its whole report went to the dead
    letter topic, victims and deadlines with it. It is an unknown code now, kept only as
    free text."""
    inc = Incident().reported(0, disclosures=[("Assault with injury on J Smith", "V1")])
    engine = Engine(book)
    out = run(book, inc.events, until=30, engine=engine)
    assert out.open() == [("crime_not_recorded", "V1")]
    assert engine.stats["unknown_offence_codes"] == 1
    assert all("Smith" not in c.to_json_bytes().decode() for c in out.changes)


def _misclassified() -> Incident:
    """8N (assault with injury) disclosed, 105A (common assault) recorded at 2 h."""
    return Incident().reported(0, disclosures=[("8N", "V1")]).crime(2, "105A")


@pytest.mark.parametrize(
    ("fix", "status"),
    [
        (lambda i: i.reclassified(5, "105A", "8N", rationale="injury seen"), "resolved"),
        (lambda i: i.crime(5, "8N", crime_id="C2"), "resolved"),
        (lambda i: i.updated(5, disclosures=[{**_disclosure("105A")}]), "withdrawn"),
        (lambda i: i.contrary(5, "8N"), "withdrawn"),
        (  # a downgrade put back by a reclassification
            lambda i: (
                i.reclassified(5, "105A", "8N")
                .reclassified(6, "8N", "105A")
                .reclassified(7, "105A", "8N")
            ),
            "resolved",
        ),
        (  # the first record cancelled, a second made right by reclassification
            lambda i: (
                i.cancelled(3, "C4", role="ddm")
                .crime(4, "105A", crime_id="C2")
                .reclassified(6, "105A", "8N", crime_id="C2")
            ),
            "resolved",
        ),
        (  # reinstated under the wrong class, then reclassified
            lambda i: (
                i.cancelled(3, "C4", role="ddm").crime(4, "105A").reclassified(6, "105A", "8N")
            ),
            "resolved",
        ),
        (  # put right by the record, reopened by a new disclosure, which was then undone
            lambda i: (
                i.reclassified(3, "105A", "8N")
                .updated(5, disclosures=[_disclosure("5D")])
                .updated(7, disclosures=[_disclosure("8N")])
            ),
            "withdrawn",
        ),
    ],
    ids=[
        "reclassified",
        "crime-added",
        "disclosure-corrected",
        "contrary-evidence",
        "downgrade-restored",
        "second-crime-reclassified",
        "reinstated-reclassified",
        "disclosure-undone",
    ],
)
def test_a_classification_flag_is_resolved_only_when_the_record_is_put_right(
    book: RuleBook, fix: Any, status: str
) -> None:
    """A corrected disclosure made the flag ``resolved`` ("the record was put right")
    although no record changed; that counts as a correction in every figure."""
    out = run(book, fix(_misclassified()).events, until=30)
    assert out.final("wrong_classification")[0].status == status
    assert out.open() == []


def _disclosure(code: str) -> dict[str, Any]:
    return {"disclosure_id": "D1", "offence_code": code, "victim_ref": "V1"}


def test_a_crime_id_recorded_again_for_another_victim_does_not_uncancel_the_first(
    book: RuleBook,
) -> None:
    """The report took the record for V2 as V1's, so V1's valid cancellation after the
    deadline stopped counting and V1 became a crime not recorded."""
    from cdi_stream.engine.outcomes import case_outcomes

    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1"), ("8N", "V2")])
        .crime(2, "8N")
        .crime(2, "8N", victim="V2", crime_id="C2")
        .cancelled(30, "C3", role="ddm", informed=True)
        .crime(32, "8N", victim="V2")
    )
    engine = Engine(book)
    assert run(book, inc.events, until=40, engine=engine).open() == []
    end = (T0 + dt.timedelta(hours=40)).timestamp()
    (case,) = case_outcomes(engine, end)
    v1 = next(s for s in case.subjects if s.victim_ref == "V1")
    assert v1.validly_cancelled and not v1.owed


def test_offences_typed_as_descriptions_do_not_cover_each_other(book: RuleBook) -> None:
    """Every such code is kept as "free text", so a state-based offence typed as one
    was covered by any crime typed as one."""
    inc = Incident().reported(0, disclosures=[("possession of a bladed article", None)])
    inc.crime(2, "drunk and disorderly in the street", victim=None)
    assert run(book, inc.events, until=30).open() == [("additional_crime_not_recorded", None)]


def test_a_code_written_like_a_name_is_never_published(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(2, "Jane.Doe").cancelled(3, "C9", role="officer")
    out = run(book, inc.events, until=30)
    assert all("Jane" not in c.to_json_bytes().decode() for c in out.changes)


def test_reinstating_the_crime_resolves_its_incorrect_cancellation(book: RuleBook) -> None:
    """The flag asks for the crime to be reinstated, but doing so left it open."""
    inc = Incident().reported(0).crime(2).cancelled(5, "C9", role="officer", informed=False)
    out = run(book, inc.crime(8).events, until=30)
    assert [s for _, s in out.history("incorrect_cancellation")] == ["open", "resolved"]
    assert out.open() == []


def test_a_record_after_a_cancellation_dated_before_it_is_no_reinstatement(
    book: RuleBook,
) -> None:
    """Cancelled before its first record, the crime never stood; the same record sent
    again was taken for a reinstatement and covered the victim."""
    inc = Incident().reported(0).cancelled(1, "C4").crime(3)
    once = run(book, inc.events, until=30).open()
    again = run(book, inc.crime(5).events, until=30).open()
    assert once == again == [("crime_not_recorded", "V1")]


def test_a_state_based_warning_says_which_crime_is_missing(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("8N", "V1"), ("9A", None)]).crime(2, "8N")
    flag = run(book, inc.events, until=13).one("deadline_warning")
    assert "disclosed 9A and no crime of that code is recorded 12 hours" in flag.explanation


def test_a_state_based_hate_class_put_back_by_the_record_is_resolved(book: RuleBook) -> None:
    inc = (
        Incident()
        .reported(0, disclosures=[("9A", None)], qualifiers=["hate_race"])
        .crime(2, "9B", victim=None)
        .reclassified(4, "9B", "9A")
        .reclassified(6, "9A", "9B")
    )
    out = run(book, inc.events, until=30)
    assert out.final("wrong_classification")[0].status == "resolved"


@pytest.mark.parametrize(
    "events",
    [
        lambda i: i.reclassified(4, "8N", "105A").reclassified(6, "105A", "8N"),
        lambda i: (
            i.cancelled(3, "C4", role="ddm")
            .crime(4, "105A", crime_id="C2")
            .reclassified(6, "105A", "8N", crime_id="C2")
        ),
        lambda i: i.cancelled(3, "C4", role="ddm").crime(4, "105A").reclassified(6, "105A", "8N"),
    ],
    ids=["downgraded-and-restored", "cancelled-then-wrong-then-right", "reinstated-wrong"],
)
def test_a_right_first_record_gone_wrong_and_put_right_again_is_resolved(
    book: RuleBook, events: Any
) -> None:
    """Judging by the first record alone called these withdrawn: it was right."""
    inc = events(Incident().reported(0, disclosures=[("8N", "V1")]).crime(2, "8N"))
    out = run(book, inc.events, until=30)
    assert out.final("wrong_classification")[0].status == "resolved"


def _closing_status(book: RuleBook, events: list[dict[str, Any]]) -> str:
    return run(book, events, until=80).final("wrong_classification")[0].status


def test_a_state_based_gap_made_by_a_crime_reclassified_away_is_seen(book: RuleBook) -> None:
    """Only crimes with one of the two codes now were looked at, so a 9B record that
    closed the gap left by a 9A later reclassified away counted as no record change."""
    inc = (
        Incident()
        .reported(0, disclosures=[("9A", None)], qualifiers=["hate_race"])
        .crime(1, "9A", victim=None)
        .crime(2, "9B", victim=None, crime_id="C2")
        .reclassified(3, "9A", "8N", rationale="r")
        .crime(4, "9A", victim=None, crime_id="C3")
    )
    ev = inc.events
    assert _closing_status(book, ev) == "resolved"
    assert _closing_status(book, [ev[0], ev[1], ev[4], ev[3], ev[2]]) == "resolved"


def test_a_state_based_gap_closed_by_contrary_evidence_is_withdrawn(book: RuleBook) -> None:
    state = {"disclosure_id": "D1", "offence_code": "9A", "victim_ref": None}
    inc = (
        Incident()
        .reported(0, disclosures=[("9A", None)], qualifiers=["hate_race"])
        .crime(1, "9A", victim=None)
        .updated(2, disclosures=[{**state, "contrary_evidence": True}])
        .reclassified(3, "9A", "9B", rationale="r")
        .updated(4, disclosures=[{**state, "contrary_evidence": False}])
    )
    ev = inc.events
    assert _closing_status(book, ev) == "withdrawn"
    assert _closing_status(book, [ev[0], ev[1], ev[2], ev[4], ev[3]]) == "withdrawn"


def test_a_record_change_at_the_same_instant_that_closes_nothing_does_not_resolve(
    book: RuleBook,
) -> None:
    """At one instant the disclosure was corrected (closing the gap) and a second crime
    of the same wrong class was recorded: any record change then counted as the fix."""
    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1")])
        .crime(1, "105A")
        .updated(3, disclosures=[_disclosure("105A")])
        .crime(3, "105A", crime_id="C2")
    )
    ev = inc.events
    assert _closing_status(book, ev) == "withdrawn"
    assert _closing_status(book, [ev[0], ev[1], ev[3], ev[2]]) == "withdrawn"


def test_a_crime_id_reinstated_for_another_victim_leaves_the_cancellation_standing(
    book: RuleBook,
) -> None:
    """The id recorded again for V2 resolved V1's incorrect cancellation, and the report
    counted V1 as validly cancelled."""
    from cdi_stream.engine.outcomes import case_outcomes

    inc = (
        Incident()
        .reported(0, disclosures=[("8N", "V1"), ("8N", "V2")])
        .crime(2, "8N")
        .cancelled(30, "X9", role="ddm", informed=False)
        .crime(40, "8N", victim="V2")
    )
    engine = Engine(book)
    out = run(book, inc.events, until=50, engine=engine)
    assert ("incorrect_cancellation", "V1") in out.open()
    (case,) = case_outcomes(engine, (T0 + dt.timedelta(hours=50)).timestamp())
    v1 = next(s for s in case.subjects if s.victim_ref == "V1")
    assert v1.owed and not v1.validly_cancelled and not v1.correct


def test_a_wrong_cancellation_put_right_by_reinstatement_still_counts_as_wrong(
    book: RuleBook,
) -> None:
    """Reinstating the crime resolves the flag, but the report must still count the
    cancellation among the incorrect ones: it listed its problems and called it correct."""
    from cdi_stream.engine.outcomes import case_outcomes

    inc = Incident().reported(0).crime(2).cancelled(5, "X9", role="ddm", informed=False).crime(8)
    engine = Engine(book)
    run(book, inc.events, until=30, engine=engine)
    (case,) = case_outcomes(engine, (T0 + dt.timedelta(hours=30)).timestamp())
    (cancellation,) = case.cancellations
    assert cancellation.incorrect
    assert "invalid_reason" in cancellation.problems


def test_a_state_based_offence_not_recorded_is_explained_as_one(book: RuleBook) -> None:
    """Its explanation spoke of a victim with "none of their own" and showed no crime
    recorded while another stood."""
    inc = Incident().reported(0, disclosures=[("8N", "V1"), ("92E", None)]).crime(2, "8N")
    flag = run(book, inc.events, until=30).one("additional_crime_not_recorded")
    assert "State-based offence 92E (92E) has no crime of its code by" in flag.explanation
    assert "an offence against the state needs a crime of its own code" in flag.explanation
    assert flag.observed["recorded_codes"] == "8N"
    assert "INC-1-2" in flag.evidence
