"""The simulator's streams: well-formed, deterministic, and truthful about their defects.

The truth is checked against the events themselves by an independent fold below (not by
reusing the generator's internals), so a defect that is claimed but not actually encoded
in the events is caught. A final test runs the rules engine over a stream and expects it
to flag exactly the planted defects.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cdi_stream.contract import parse_incident_event
from cdi_stream.offences import AGGRAVATED, load_offences
from cdi_stream.replay import replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.simulate import (
    CATEGORIES,
    DEFECT_DETAILS,
    DEFECTS,
    PLACEHOLDER_TEXTS,
    DefectRates,
    SimConfig,
    Truth,
    encode_event,
    generate,
    write_jsonl,
)

DAY = 24 * 3600.0
NO_DEFECTS = DefectRates(0, 0, 0, 0, 0)
REF = re.compile(r"^[VO]-[0-9a-f]+$")
INCIDENT_ID = re.compile(r"^INC-\d{8}-\d{6}$")
LOCAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9 ]*$")
VALID_REASONS = {"C1", "C2", "C3", "C4", "C5"}
RESTRICTED = {"violence", "sexual", "robbery"}


def _stream(config: SimConfig) -> tuple[list[dict[str, Any]], list[Truth]]:
    events: list[dict[str, Any]] = []
    truths: list[Truth] = []
    for event, truth in generate(config):
        events.append(event)
        if truth is not None:
            truths.append(truth)
    return events, truths


def _jsonl(config: SimConfig) -> bytes:
    buf = io.BytesIO()
    write_jsonl(config, buf)
    return buf.getvalue()


def _time(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


# --- an independent fold of one incident's events ----------------------------------------


@dataclass
class Subject:
    victim_ref: str | None
    codes: list[str]
    start: float
    rape: bool


@dataclass
class Case:
    reported_at: float = 0.0
    qualifiers: set[str] = field(default_factory=set)
    victims: list[str] = field(default_factory=list)
    disclosures: dict[str, dict[str, Any]] = field(default_factory=dict)
    disclosed_at: dict[str, float] = field(default_factory=dict)
    crimes: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancellations: list[dict[str, Any]] = field(default_factory=list)
    n100_at: list[float] = field(default_factory=list)
    closures: list[dict[str, Any]] = field(default_factory=list)

    def absorb(self, e: dict[str, Any]) -> None:
        at = _time(e["occurred_at"])
        kind = e["event_type"]
        if kind in ("incident.reported", "incident.updated"):
            if kind == "incident.reported":
                self.reported_at = _time(e["reported_at"])
            self.qualifiers.update(e.get("qualifiers", []) + e.get("qualifiers_added", []))
            for v in e.get("victims", []) + e.get("victims_added", []):
                self.victims.append(v["victim_ref"])
            for d in e["disclosures"]:
                self.disclosures[d["disclosure_id"]] = d
                self.disclosed_at.setdefault(d["disclosure_id"], at)
        elif kind == "crime.recorded":
            self.crimes[e["crime_id"]] = {**e, "at": at, "cancelled": False}
        elif kind == "crime.reclassified":
            self.crimes[e["crime_id"]]["offence_code"] = e["to_code"]
        elif kind == "crime.cancelled":
            self.crimes[e["crime_id"]]["cancelled"] = True
            self.cancellations.append(e)
        elif kind == "n100.recorded":
            if e["rationale"]:
                self.n100_at.append(at)
        elif kind == "incident.closed":
            self.closures.append(e)

    def subjects(self) -> list[Subject]:
        by_victim: dict[str, list[str]] = defaultdict(list)
        starts: dict[str | None, list[float]] = defaultdict(list)
        out = []
        for did, d in self.disclosures.items():
            if d["contrary_evidence"]:
                continue
            start = max(self.reported_at, self.disclosed_at[did])
            if d["victim_ref"] is None:
                out.append(Subject(None, [d["offence_code"]], start, False))
            else:
                by_victim[d["victim_ref"]].append(d["offence_code"])
                starts[d["victim_ref"]].append(start)
        for ref, codes in by_victim.items():
            rape = any(c.startswith("19") for c in codes)
            out.append(Subject(ref, codes, min(starts[ref]), rape))
        return out

    def records_of(self, s: Subject) -> list[dict[str, Any]]:
        if s.victim_ref is None:
            return [c for c in self.crimes.values() if c["offence_code"] in s.codes]
        mine = [c for c in self.crimes.values() if c["victim_ref"] == s.victim_ref]
        return [c for c in mine if c["offence_code"].startswith("19")] if s.rape else mine

    def first_cover(self, s: Subject) -> float | None:
        times = [c["at"] for c in self.records_of(s)] + (self.n100_at if s.rape else [])
        return min(times, default=None)

    def delays(self) -> list[float | None]:
        """Per subject, seconds from its clock start to its first cover (None: never)."""
        out: list[float | None] = []
        for s in self.subjects():
            cover = self.first_cover(s)
            out.append(None if cover is None else cover - s.start)
        return out

    def bad_cancellations(self) -> list[dict[str, Any]]:
        return [c for c in self.cancellations if _bad_cancellation(c, self.crimes[c["crime_id"]])]

    def standing_codes(self) -> list[str]:
        return [c["offence_code"] for c in self.crimes.values() if not c["cancelled"]]


def _cases(events: list[dict[str, Any]]) -> dict[str, Case]:
    cases: dict[str, Case] = defaultdict(Case)
    for e in events:
        cases[e["incident_id"]].absorb(e)
    return cases


def _expected_code(case: Case, s: Subject) -> str:
    """The class a correct record of ``s`` takes, by the rules the stream is built for."""
    table = load_offences()
    code = table.most_serious(s.codes) or s.codes[0]
    q = case.qualifiers
    if "injury" in q and code in ("105A", "105B"):
        code = "8N" if code == "105A" else "8P"
    if any(k in q for k in ("hate_race", "hate_religion")) and code in AGGRAVATED:
        code = AGGRAVATED[code]
    if code in ("8L", "8M") and {"former_partner", "course_of_conduct"} <= q:
        code = "8Q"
    return code


def _rightly_classified(case: Case, s: Subject) -> bool:
    """Whether a standing record of ``s`` is at least as serious as the right class."""
    table = load_offences()
    expected = _expected_code(case, s)
    standing = [c["offence_code"] for c in case.records_of(s) if not c["cancelled"]]
    return any(c == expected or table.more_serious(c, expected) for c in standing)


def _bad_cancellation(c: dict[str, Any], crime: dict[str, Any]) -> bool:
    family = getattr(load_offences().get(crime["offence_code"]), "family", None)
    return (
        c["reason"] not in VALID_REASONS
        or (c["reason"] == "C2" and not c["avi"])
        or (family in RESTRICTED and c["authoriser_role"] not in ("ddm", "fcr"))
        or c["victim_informed"] is False
    )


# --- shape of the stream ---------------------------------------------------------------


@pytest.fixture(scope="module")
def default_stream() -> tuple[list[dict[str, Any]], list[Truth]]:
    return _stream(SimConfig(seed=3, incidents=2000))


def test_every_line_parses_under_the_contract() -> None:
    for line in _jsonl(SimConfig(seed=5, incidents=600)).splitlines():
        event = parse_incident_event(line)
        assert event.schema_version == 1


def test_events_are_in_time_order_with_unique_ids(
    default_stream: tuple[list[dict[str, Any]], list[Truth]],
) -> None:
    events, _ = default_stream
    times = [_time(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    assert all(e["occurred_at"].endswith("Z") for e in events)
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    for e in events:
        assert INCIDENT_ID.match(e["incident_id"])
        assert e["event_id"].startswith(f"E-{e['incident_id']}-")
        assert e["source"] == ("storm" if e["event_type"].startswith("incident.") else "niche")


def test_truth_rides_on_each_incidents_first_event_only(
    default_stream: tuple[list[dict[str, Any]], list[Truth]],
) -> None:
    seen: set[str] = set()
    truths = 0
    for event, truth in generate(SimConfig(seed=3, incidents=2000)):
        first = event["incident_id"] not in seen
        seen.add(event["incident_id"])
        assert (truth is not None) == first
        if truth is not None:
            truths += 1
            assert event["event_type"] == "incident.reported"
            assert truth.incident_id == event["incident_id"]
            assert truth.reported_at.timestamp() == _time(event["reported_at"])
    assert truths == 2000


def test_only_pseudonymous_refs_and_fixed_texts(
    default_stream: tuple[list[dict[str, Any]], list[Truth]],
) -> None:
    events, _ = default_stream
    refs: list[str | None] = []
    for e in events:
        refs += [v["victim_ref"] for v in e.get("victims", []) + e.get("victims_added", [])]
        refs += [d[k] for d in e.get("disclosures", []) for k in ("victim_ref", "offender_ref")]
        refs += [e.get("victim_ref"), *e.get("offender_refs", [])]
        for key in ("rationale", "avi"):
            assert e.get(key) in PLACEHOLDER_TEXTS | {"", None}, e
        for key in ("opening_code", "closing_code"):
            if key in e:
                assert LOCAL_CODE.match(e[key]), e
    assert refs and all(r is None or REF.match(r) for r in refs)


# --- determinism and output ------------------------------------------------------------


def test_same_config_gives_identical_bytes_and_another_seed_does_not() -> None:
    config = SimConfig(seed=11, incidents=400)
    first = _jsonl(config)
    assert first == _jsonl(config)
    assert first != _jsonl(SimConfig(seed=12, incidents=400))


def test_paths_text_files_and_binary_files_get_the_same_bytes(tmp_path: Path) -> None:
    config = SimConfig(seed=2, incidents=300)
    truths = write_jsonl(config, tmp_path / "s.jsonl")
    text = io.StringIO()
    assert write_jsonl(config, text) == truths
    expected = (tmp_path / "s.jsonl").read_bytes()
    assert text.getvalue().encode() == expected == _jsonl(config)
    assert expected.endswith(b"\n") and b"\r" not in expected
    assert [json.loads(x) for x in expected.splitlines()] == _stream(config)[0]
    assert encode_event(_stream(config)[0][0]) == expected.splitlines()[0]
    assert truths == _stream(config)[1]


def test_generation_is_lazy() -> None:
    """A huge config must start yielding at once: nothing is built ahead of need."""
    first = list(itertools.islice(generate(SimConfig(incidents=10**9)), 5))
    assert len(first) == 5


# --- the truth agrees with the events ----------------------------------------------------


def test_truth_matches_the_events(
    default_stream: tuple[list[dict[str, Any]], list[Truth]],
) -> None:
    events, truths = default_stream
    cases = _cases(events)
    for t in truths:
        case = cases[t.incident_id]
        subjects = case.subjects()
        assert t.category in CATEGORIES
        assert t.defect is None or t.defect_detail in DEFECT_DETAILS[t.defect]
        assert list(t.victims) == case.victims
        assert sorted(t.disclosed_codes) == sorted(c for s in subjects for c in s.codes)
        assert sorted(t.recorded_codes) == sorted(case.standing_codes())
        assert t.recordable_subjects == len(subjects)
        if not subjects:
            assert t.recorded_within_24h is None
            continue
        within = all(d is not None and d <= DAY for d in case.delays())
        assert t.recorded_within_24h == within, t


def test_zero_defects_cover_every_crime_correctly_within_24_hours() -> None:
    events, truths = _stream(SimConfig(seed=9, incidents=3000, defects=NO_DEFECTS))
    cases = _cases(events)
    crime_incidents = 0
    for t in truths:
        assert t.defect is None and t.defect_detail is None
        case = cases[t.incident_id]
        if t.recordable_subjects:
            crime_incidents += 1
            assert t.recorded_within_24h is True
            assert t.covered_subjects == t.recordable_subjects
        assert all(d is not None and d <= DAY for d in case.delays()), t
        assert all(s.rape or _rightly_classified(case, s) for s in case.subjects()), t
        assert not case.bad_cancellations(), t
        for closure in case.closures:
            assert closure["closure_type"] != "cri" or closure["rationale"], t
            assert closure["closure_type"] != "non_crime" or not case.subjects(), t
    assert crime_incidents > 2000


def test_non_crime_incidents_disclose_nothing_and_close_with_a_rationale(
    default_stream: tuple[list[dict[str, Any]], list[Truth]],
) -> None:
    events, truths = default_stream
    cases = _cases(events)
    for t in truths:
        if t.category != "non_crime":
            continue
        case = cases[t.incident_id]
        assert t.defect is None and not case.disclosures and not case.crimes
        assert [c["closure_type"] for c in case.closures] == ["non_crime"]
        assert case.closures[0]["rationale"]


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_is_encoded_in_the_events(defect: str) -> None:
    rates = DefectRates(**{name: float(name == defect) for name in DEFECTS})
    events, truths = _stream(SimConfig(seed=4, incidents=400, defects=rates, non_crime_share=0))
    cases = _cases(events)
    for t in truths:
        assert t.defect == defect
        assert t.defect_detail in DEFECT_DETAILS[defect]
        case = cases[t.incident_id]
        subjects = case.subjects()
        delays = case.delays()
        if defect == "unrecorded":
            assert not case.crimes and not case.n100_at
            assert t.covered_subjects == 0 and t.recorded_within_24h is False
        elif defect == "late":
            assert all(d is not None and d > DAY for d in delays), t
            assert t.covered_subjects == t.recordable_subjects
        elif defect == "misclassified":
            assert any(not _rightly_classified(case, s) for s in subjects), t
            assert all(d is not None and d <= DAY for d in delays), t
        elif defect == "undercounted":
            assert len(subjects) >= 2 and delays.count(None) == 1, t
            assert t.covered_subjects == t.recordable_subjects - 1
        else:
            assert len(case.bad_cancellations()) == 1, t
            assert t.recorded_within_24h is True
            assert t.covered_subjects == t.recordable_subjects - 1


# --- shares and mix ----------------------------------------------------------------------


def _within(observed: int, n: int, p: float, sds: float = 4.0) -> bool:
    return abs(observed - n * p) <= sds * math.sqrt(n * p * (1 - p)) + 1


def test_defect_shares_match_the_configured_rates() -> None:
    config = SimConfig(seed=21, incidents=5000)
    _, truths = _stream(config)
    crimes = [t for t in truths if t.category != "non_crime"]
    assert _within(len(truths) - len(crimes), len(truths), config.non_crime_share)
    counts = Counter(t.defect for t in crimes)
    for name, rate in config.defects.as_dict().items():
        assert _within(counts[name], len(crimes), rate), (name, counts[name], len(crimes))
    clean = counts[None]
    assert _within(clean, len(crimes), 1 - config.defects.total)


def test_incident_mix_looks_like_a_force() -> None:
    _, truths = _stream(SimConfig(seed=22, incidents=5000))
    mix = Counter(t.category for t in truths if t.category != "non_crime")
    assert [c for c, _ in mix.most_common(2)] == ["theft", "violence"]
    assert set(mix) == set(CATEGORIES) - {"non_crime"}
    assert 0.004 <= mix["rape"] / len(truths) <= 0.016
    complications = Counter(c for t in truths for c in t.complications)
    for name in ("victim_added", "lesser_offence_added", "contrary_evidence", "n100"):
        assert complications[name] > 0, name


def test_reports_arrive_at_the_configured_mean_rate() -> None:
    _, truths = _stream(SimConfig(seed=23, incidents=4000, mean_gap_seconds=60.0))
    span = (truths[-1].reported_at - truths[0].reported_at).total_seconds()
    assert 55.0 <= span / (len(truths) - 1) <= 65.0


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rates",
    [
        {"unrecorded": -0.01},
        {"late": 1.5},
        {"misclassified": math.nan},
        {"unrecorded": 0.6, "late": 0.3, "undercounted": 0.2},
    ],
)
def test_invalid_defect_rates_are_refused(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="defect rate"):
        DefectRates(**rates)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"incidents": -1},
        {"start": dt.datetime(2026, 1, 5, 8, 0)},
        {"mean_gap_seconds": 0.0},
        {"non_crime_share": 1.2},
    ],
)
def test_invalid_configs_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimConfig(**kwargs)


def test_rates_may_add_up_to_exactly_one() -> None:
    rates = DefectRates(unrecorded=0.4, late=0.3, misclassified=0.1, undercounted=0.1,
                        wrongly_cancelled=0.1)  # fmt: skip
    _, truths = _stream(SimConfig(incidents=200, defects=rates, non_crime_share=0.0))
    assert all(t.defect is not None for t in truths)


# --- the rules engine finds exactly what was planted ----------------------------------------

PRIMARY: dict[str | None, set[str]] = {
    "late": {"late_recording"},
    "misclassified": {"wrong_classification"},
    "undercounted": {"additional_crime_not_recorded"},
    "wrongly_cancelled": {"incorrect_cancellation"},
}
ALLOWED: dict[str | None, set[str]] = {
    **PRIMARY,
    None: set(),
    "unrecorded": {"crime_not_recorded", "rape_not_resolved", "cri_without_rationale"},
    "late": {
        "late_recording",
        "crime_not_recorded",
        "rape_not_resolved",
        "additional_crime_not_recorded",
    },
}


def test_the_engine_flags_exactly_the_planted_defects(book: RuleBook) -> None:
    """Deadline warnings aside, clean incidents raise nothing and each defect its finding."""
    config = SimConfig(seed=31, incidents=1500)
    buf = io.BytesIO()
    truths = write_jsonl(config, buf)
    out = io.BytesIO()
    until = truths[-1].reported_at + dt.timedelta(days=10)
    summary = replay(buf.getvalue().splitlines(), book, out=out, until=until)
    assert summary.rejected == 0
    found: dict[str, set[str]] = defaultdict(set)
    for line in out.getvalue().splitlines():
        flag = json.loads(line)
        if flag["finding"] != "deadline_warning":
            found[flag["incident_id"]].add(flag["finding"])
    for t in truths:
        findings = found[t.incident_id]
        assert findings <= ALLOWED[t.defect], t
        if t.defect == "unrecorded":
            primary = {"rape_not_resolved" if t.category == "rape" else "crime_not_recorded"}
            if t.defect_detail == "closed_cri_without_rationale":
                primary.add("cri_without_rationale")
        else:
            primary = PRIMARY.get(t.defect, set())
        assert primary <= findings, t


def test_stalking_misclassification_is_only_planted_when_the_rule_applies() -> None:
    from datetime import UTC, datetime

    from cdi_stream.simulate import DefectRates, SimConfig, generate

    config = SimConfig(
        seed=5,
        incidents=3000,
        start=datetime(2019, 6, 3, 8, tzinfo=UTC),
        defects=DefectRates(0.0, 0.0, 0.3, 0.0, 0.0),
    )
    details = {t.defect_detail for _, t in generate(config) if t is not None}
    assert "former_partner_stalking_ignored" not in details
    assert "injury_ignored" in details
