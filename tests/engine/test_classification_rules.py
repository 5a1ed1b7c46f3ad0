"""Classification, reclassification, cancellation and closure rules."""

from __future__ import annotations

import datetime as dt

import pytest

from cdi_stream.rules.book import RuleBook
from tests.engine.scenario import Incident, run


def classification(book: RuleBook, inc: Incident, **kw: object) -> list[tuple[str, str, str]]:
    out = run(book, inc.events, until=48, **kw)  # type: ignore[arg-type]
    return [
        (c.status, c.expected.get("offence_code", ""), c.observed.get("offence_code", ""))
        for c in out.final("wrong_classification")
    ]


def test_principal_crime_rule_expects_the_most_serious_disclosed(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("8N", "V1"), ("105A", "V1")]).crime(2, "105A")
    assert classification(book, inc) == [("open", "8N", "105A")]


def test_reclassification_up_resolves_the_finding(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(2, "105A").reclassified(5, "105A", "8N")
    out = run(book, inc.events, until=48)
    assert out.history("wrong_classification") == [(1, "open"), (2, "resolved")]
    assert out.final("unexplained_downgrade") == []


def test_equal_weights_are_never_a_finding(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("58A", "V1")]).crime(2, "58B")
    assert classification(book, inc) == []


def test_unknown_recorded_code_is_not_comparable(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("8N", "V1")]).crime(2, "ZZ9")
    assert classification(book, inc) == []


@pytest.mark.parametrize(
    ("qualifiers", "recorded", "expected"),
    [
        (["injury"], "105A", "8N"),
        (["injury"], "105B", "8P"),
        (["hate_race"], "105A", "105B"),
        (["hate_religion"], "8N", "8P"),
        (["hate_disability"], "8L", "8M"),
        (["hate_transgender"], "58C", "58J"),
        (["hate_sexual_orientation"], "9A", "9B"),
        (["injury", "hate_race"], "105A", "8P"),
    ],
)
def test_qualifiers_call_for_a_class(
    book: RuleBook, qualifiers: list[str], recorded: str, expected: str
) -> None:
    inc = Incident().reported(0, disclosures=[(recorded, "V1")], qualifiers=qualifiers)
    inc.crime(2, recorded)
    assert classification(book, inc) == [("open", expected, recorded)]


def test_aggravated_class_already_recorded_is_right(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("105B", "V1")], qualifiers=["hate_race"])
    inc.crime(2, "105B")
    assert classification(book, inc) == []


def test_former_partner_course_of_conduct_is_stalking_from_2020(book: RuleBook) -> None:
    q = ["former_partner", "course_of_conduct", "domestic_abuse"]
    for year, expected in ((2021, [("open", "8Q", "8L")]), (2019, [])):
        start = dt.datetime(year, 6, 1, 9, tzinfo=dt.UTC)
        inc = Incident(start=start).reported(0, disclosures=[("8L", "V1")], qualifiers=q)
        inc.crime(2, "8L")
        assert classification(book, inc, start=start) == expected, year


def test_conduct_edition_compares_only_non_conduct_offences(book: RuleBook) -> None:
    start = dt.datetime(2019, 6, 1, 9, tzinfo=dt.UTC)
    inc = Incident(start=start).reported(0, disclosures=[("8Q", "V1"), ("105A", "V1")])
    inc.crime(2, "8Q", crime_id="C1").crime(2, "105A", crime_id="C2")
    assert classification(book, inc, start=start) == []
    # Outside the edition the stalking alone is the principal crime and 105A is absorbed.
    start = dt.datetime(2024, 6, 1, 9, tzinfo=dt.UTC)
    inc = Incident(start=start).reported(0, disclosures=[("8Q", "V1"), ("105A", "V1")])
    inc.crime(2, "105A")
    assert classification(book, inc, start=start) == [("open", "8Q", "105A")]


def test_conduct_only_victim_follows_the_ordinary_rule_in_conduct_edition(book: RuleBook) -> None:
    start = dt.datetime(2019, 6, 1, 9, tzinfo=dt.UTC)
    inc = Incident(start=start).reported(0, disclosures=[("8Q", "V1"), ("8R", "V1")])
    inc.crime(2, "8R")
    assert classification(book, inc, start=start) == [("open", "8Q", "8R")]


def test_one_classification_flag_per_victim_with_changing_expectation(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("105A", "V1")]).crime(2, "105A")
    inc.updated(4, qualifiers=["hate_race"])
    inc.updated(6, qualifiers=["injury"])
    out = run(book, inc.events, until=48)
    flags = out.final("wrong_classification")
    assert len(flags) == 1
    assert [
        c.expected["offence_code"] for c in out.changes if c.finding == "wrong_classification"
    ] == [
        "105B",
        "8P",
    ]


def test_unexplained_downgrade(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(2, "8N").reclassified(5, "8N", "105A")
    out = run(book, inc.events, until=48)
    flag = out.one("unexplained_downgrade")
    assert (flag.status, flag.observed) == ("open", {"from_code": "8N", "to_code": "105A"})
    assert flag.expected == {"offence_code": "8N"}
    # The downgrade also leaves the crime below what was disclosed.
    assert out.one("wrong_classification").status == "open"


def test_downgrade_with_rationale_or_upgrade_is_fine(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[("105A", "V1")]).crime(2, "8N")
    inc.reclassified(5, "8N", "105A", rationale="medical evidence: no injury")
    assert run(book, inc.events, until=48).final("unexplained_downgrade") == []
    inc = Incident().reported(0).crime(2, "105A").reclassified(5, "105A", "8N")
    assert run(book, inc.events, until=48).final("unexplained_downgrade") == []


def test_restoring_the_class_resolves_the_downgrade(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(2, "8N").reclassified(5, "8N", "105A")
    inc.reclassified(8, "105A", "8N", rationale="restored")
    out = run(book, inc.events, until=48)
    assert out.history("unexplained_downgrade") == [(1, "open"), (2, "resolved")]


@pytest.mark.parametrize(
    ("reason", "avi", "role", "informed", "problem"),
    [
        ("C6", None, "ddm", True, "reason C6 is not one of C1-C5"),
        ("victim withdrew support", None, "ddm", True, "is not one of C1-C5"),
        ("C2", None, "ddm", True, "C2 without additional verifiable information"),
        ("C3", None, "officer", True, "a violence crime cancelled on the authority of officer"),
        ("C3", None, "supervisor", True, "on the authority of supervisor"),
        ("C3", None, "ddm", False, "the victim was not informed"),
    ],
)
def test_incorrect_cancellations(
    book: RuleBook, reason: str, avi: str | None, role: str, informed: bool, problem: str
) -> None:
    inc = (
        Incident()
        .reported(0)
        .crime(2, "8N")
        .cancelled(30, reason, avi=avi, role=role, informed=informed)
    )
    flag = run(book, inc.events, until=48).one("incorrect_cancellation")
    assert flag.status == "open"
    assert problem in flag.explanation
    assert flag.crime_ids == ["C1"]


@pytest.mark.parametrize(
    ("code", "reason", "avi", "role", "informed"),
    [
        ("8N", "C3", None, "ddm", True),
        ("8N", "C2", "CCTV shows no assault took place", "fcr", True),
        ("8N", "C1", None, "ddm", None),
        ("49", "C4", None, "officer", True),
    ],
)
def test_valid_cancellations(
    book: RuleBook, code: str, reason: str, avi: str | None, role: str, informed: bool | None
) -> None:
    inc = Incident().reported(0, disclosures=[(code, "V1")]).crime(2, code)
    inc.cancelled(30, reason, avi=avi, role=role, informed=informed)
    assert run(book, inc.events, until=48).final("incorrect_cancellation") == []


def test_cancellation_before_the_crime_record_arrives(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(2, "8N").cancelled(30, "C3", role="officer")
    report, crime, cancel = inc.events
    out = run(book, [report, cancel, crime], until=48)
    assert out.one("incorrect_cancellation").status == "open"


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        # British Summer Time began on 2020-03-29: midnight on 1 April was 23:00 UTC.
        (dt.datetime(2020, 3, 31, 22, 59, 59, tzinfo=dt.UTC), []),
        (dt.datetime(2020, 3, 31, 23, 0, 0, tzinfo=dt.UTC), [("open", "8Q", "8L")]),
    ],
)
def test_stalking_rule_starts_at_midnight_london_on_1_april_2020(
    book: RuleBook, reported: dt.datetime, expected: list[tuple[str, str, str]]
) -> None:
    q = ["former_partner", "course_of_conduct"]
    inc = Incident(start=reported).reported(0, disclosures=[("8L", "V1")], qualifiers=q)
    inc.crime(2, "8L")
    assert classification(book, inc, start=reported) == expected


@pytest.mark.parametrize(
    ("reported", "edition", "finding"),
    [
        (dt.datetime(2023, 5, 30, 22, 59, 59, tzinfo=dt.UTC), "2020-04", []),
        (dt.datetime(2023, 5, 30, 23, 0, 0, tzinfo=dt.UTC), "2023-05", [("open", "8Q", "105A")]),
    ],
)
def test_conduct_edition_ends_after_30_may_2023(
    book: RuleBook, reported: dt.datetime, edition: str, finding: list[tuple[str, str, str]]
) -> None:
    inc = Incident(start=reported).reported(0, disclosures=[("8Q", "V1"), ("105A", "V1")])
    inc.crime(2, "105A", crime_id="C1")
    out = run(book, inc.events, until=48, start=reported)
    assert {c.edition for c in out.changes} == {edition}
    assert classification(book, inc, start=reported) == finding
