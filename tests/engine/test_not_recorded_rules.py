"""Closures, additional victims, conduct crimes and rape reports."""

from __future__ import annotations

import datetime as dt

from cdi_stream.rules.book import RuleBook
from tests.engine.scenario import T0, Incident, run


def test_non_crime_closure_with_a_crime_owed_is_an_immediate_finding(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("105A", "V1")]).closed(3, "non_crime", "no crime")
    out = run(book, inc.events, until=3)
    cnr = out.one("crime_not_recorded")
    assert cnr.status == "open"
    assert cnr.event_time == T0 + dt.timedelta(hours=3)
    assert cnr.priority == "P2"  # common assault, raised before due_at
    assert cnr.observed["closure_type"] == "non_crime"
    out = run(book, inc.events, until=48)
    assert out.open() == [("crime_not_recorded", "V1")]
    assert out.final("deadline_warning") == []


def test_cri_closure_without_rationale_is_immediate_and_flagged(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("105A", "V1")]).closed(3, "cri", "  ")
    out = run(book, inc.events, until=48)
    assert out.open() == [("cri_without_rationale", None), ("crime_not_recorded", "V1")]


def test_cri_closure_with_rationale_discharges_the_obligation(book: RuleBook) -> None:
    inc = Incident().reported(0).closed(3, "cri", "NCRS test applied: victim account not a crime")
    assert run(book, inc.events, until=72).changes == []


def test_later_rationale_resolves_cri_and_not_recorded_findings(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("105A", "V1")]).closed(3, "cri")
    inc.closed(5, "cri", "NCRS test applied")
    out = run(book, inc.events, until=48)
    assert out.statuses() == [
        ("cri_without_rationale", None, "resolved"),
        ("crime_not_recorded", "V1", "resolved"),
    ]


def test_transferred_and_duplicate_closures_discharge(book: RuleBook) -> None:
    for kind in ("transferred", "duplicate"):
        inc = Incident().reported(0).closed(2, kind)
        assert run(book, inc.events, until=72).changes == [], kind


def test_crime_closure_does_not_discharge(book: RuleBook) -> None:
    inc = Incident().reported(0).closed(2, "crime")
    assert run(book, inc.events, until=30).open() == [("crime_not_recorded", "V1")]


def test_additional_victim_not_recorded(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("8N", "V1"), ("105A", "V2"), ("105A", "V3")])
    inc.crime(2, "8N", "V1", "C1").crime(3, "105A", "V3", "C3")
    out = run(book, inc.events, until=30)
    add = out.one("additional_crime_not_recorded")
    assert (add.victim_ref, add.priority, add.rule_id) == ("V2", "P1", "VICTIM-ADDITIONAL")
    assert out.final("crime_not_recorded") == []
    assert out.open() == [("additional_crime_not_recorded", "V2")]


def test_kind_of_not_recorded_finding_is_fixed_at_due(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("8N", "V1"), ("105A", "V2")])
    inc.crime(30, "8N", "V1", "C1")
    out = run(book, inc.events, until=48)
    assert out.open() == [("crime_not_recorded", "V2")]
    assert out.final("additional_crime_not_recorded") == []


def test_state_based_offence_is_covered_by_a_crime_with_its_code(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("9A", None)]).crime(2, "9A", None)
    assert run(book, inc.events, until=48).changes == []
    inc = Incident().reported(0, disclosures=[("9A", None)]).crime(2, "58A", None)
    out = run(book, inc.events, until=48)
    assert out.open() == [("additional_crime_not_recorded", None)]
    inc = Incident().reported(0, disclosures=[("9A", None)])
    assert run(book, inc.events, until=48).open() == [("crime_not_recorded", None)]


def test_cancelled_only_cover_before_due_means_the_deadline_still_applies(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(1).cancelled(5, "C4")
    out = run(book, inc.events, until=30)
    assert out.open() == [("crime_not_recorded", "V1")]


def test_cancelled_only_cover_after_due_is_not_flagged_again(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(1).cancelled(40, "C4")
    out = run(book, inc.events, until=80)
    assert out.changes == []


def test_conduct_edition_needs_conduct_crime_in_addition(book: RuleBook) -> None:
    start = dt.datetime(2019, 6, 1, 9, tzinfo=dt.UTC)
    inc = Incident(start=start).reported(0, disclosures=[("8N", "V1"), ("8L", "V1")])
    inc.crime(2, "8N", "V1")
    out = run(book, inc.events, until=30, start=start)
    flag = out.one("additional_crime_not_recorded")
    assert (flag.rule_id, flag.edition, flag.expected) == (
        "CONDUCT-ADDITIONAL",
        "2018-04",
        {"offence_code": "8L"},
    )
    inc.crime(31, "8L", "V1", "C2")
    out = run(book, inc.events, until=48, start=start)
    assert out.one("additional_crime_not_recorded").status == "resolved"


def test_conduct_crime_alone_is_enough_outside_the_conduct_edition(book: RuleBook) -> None:
    start = dt.datetime(2024, 6, 1, 9, tzinfo=dt.UTC)
    inc = Incident(start=start).reported(0, disclosures=[("8N", "V1"), ("8L", "V1")])
    inc.crime(2, "8N", "V1")
    out = run(book, inc.events, until=30, start=start)
    assert out.changes == []


def test_edition_switches_at_midnight_london_time(book: RuleBook) -> None:
    # British Summer Time began on 2018-03-25, so midnight on 1 April was 23:00 UTC.
    before = dt.datetime(2018, 3, 31, 22, 59, 59, tzinfo=dt.UTC)
    after = dt.datetime(2018, 3, 31, 23, 0, 0, tzinfo=dt.UTC)
    editions = []
    for start in (before, after):
        inc = Incident(start=start).reported(0, disclosures=[("8N", "V1"), ("8L", "V1")])
        inc.crime(2, "8N", "V1")
        out = run(book, inc.events, until=30, start=start)
        editions.append([c.edition for c in out.changes])
    assert editions == [[], ["2018-04"]]


def test_rape_report_without_rape_crime_or_n100(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("19C", "V1")])
    out = run(book, inc.events, until=30)
    flag = out.one("rape_not_resolved")
    assert (flag.status, flag.priority) == ("open", "P1")
    assert out.final("crime_not_recorded") == []
    assert out.one("deadline_warning").status == "withdrawn"


def test_rape_resolved_by_n100_with_rationale(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("19C", "V1")]).n100(3)
    assert run(book, inc.events, until=48).changes == []


def test_n100_without_rationale_does_not_resolve(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("19C", "V1")]).n100(3, rationale=None)
    assert run(book, inc.events, until=30).open() == [("rape_not_resolved", "V1")]


def test_rape_qualifier_only_victim_needs_a_rape_crime(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("20A", "V1")], qualifiers=["rape"]).crime(2, "20A")
    out = run(book, inc.events, until=30)
    assert out.open() == [("rape_not_resolved", "V1")]
    inc = Incident().reported(0, disclosures=[("20A", "V1")], qualifiers=["rape"]).crime(2, "19C")
    assert run(book, inc.events, until=30).open() == []


def test_rape_qualifier_applies_only_to_victims_with_sexual_disclosures(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("20A", "V1"), ("105A", "V2")], qualifiers=["rape"])
    inc.crime(2, "19C", "V1", "C1")
    out = run(book, inc.events, until=30)
    assert out.open() == [("additional_crime_not_recorded", "V2")]


def test_non_crime_closure_of_a_rape_report_is_immediate(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("19C", "V1")]).closed(2, "non_crime", "x")
    out = run(book, inc.events, until=2)
    assert out.open() == [("rape_not_resolved", "V1")]
    assert out.one("rape_not_resolved").event_time == T0 + dt.timedelta(hours=2)


def test_n100_closure_with_rationale_discharges_a_rape_subject(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("19C", "V1")]).closed(2, "n100", "transferred")
    assert run(book, inc.events, until=48).changes == []


def test_child_qualifier_makes_a_minor_offence_p1(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("49", "V1")], qualifiers=["child"])
    assert run(book, inc.events, until=12).one("deadline_warning").priority == "P1"
    inc = Incident().reported(0, disclosures=[("49", "V1")])
    assert run(book, inc.events, until=12).one("deadline_warning").priority == "P3"
    inc = Incident().reported(0, disclosures=[("49", "V1")], qualifiers=["domestic_abuse"])
    assert run(book, inc.events, until=12).one("deadline_warning").priority == "P2"
