"""Hypothesis strategies for hostile input.

Two families: contract-valid events whose values are as awkward as the contract allows
(control characters, reserved-looking names, the first and last accepted instants, full
lists, unknown extra fields), and raw messages that break the contract in the ways a
decoder meets in practice (garbage bytes, truncation, invalid UTF-8, a BOM, deep
nesting, huge strings, NaN and out-of-range numbers, wrong types, bad timestamps).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Final

from hypothesis import strategies as st

from cdi_stream.contract import EARLIEST_TIMESTAMP, KNOWN_QUALIFIERS, LATEST_TIMESTAMP
from cdi_stream.offences import load_offences

T0: Final = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)

# Names the rules core or a JavaScript consumer might treat specially, and characters
# that need escaping in JSON or are invisible: all ordinary text to the contract.
TRICKY_TEXT: Final = (
    "sid",
    "id",
    "$s",
    "$and",
    "$nex",
    "__proto__",
    "constructor",
    "\x00",
    "a\x00b",
    '"',
    "\\",
    "\u2028",
    "\ufeff",
    "\U0001f642",
    "e\u0301",
    "C1 ",
    "NaN",
    "null",
    "1e-05",
)

KNOWN_CODES: Final = tuple(sorted(o.code for o in load_offences()))
COMMON_CODES: Final = ("8N", "105A", "105B", "19C", "8L", "8M", "8Q", "49", "58A", "9A", "ZZ1")

CHANNELS: Final = ("999", "101", "online", "front_counter", "officer", "partner_referral", "other")
CLOSURES: Final = ("crime", "cri", "non_crime", "n100", "duplicate", "transferred")
RECORDERS: Final = ("officer", "crime_bureau", "ddm", "fcr", "other")
AUTHORISERS: Final = ("officer", "supervisor", "ddm", "fcr", "other")
REASONS: Final = ("C1", "C2", "C3", "C4", "C5", "C6", "c1", "")

MARK: Final = "\x00fuzz-mark\x00"

# Values that are valid JSON but wrong, or that JSON parsers disagree about.
NUMBER_TOKENS: Final = (
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "1e-05",
    "1E400",
    "-1e400",
    "-0",
    "0.0",
    "1.0",
    "01",
    "1.",
    ".5",
    "0x10",
    str(2**53 + 1),
    str(2**63),
    str(2**64),
    str(2**70),
    str(-(2**70)),
    "9" * 400,
)
TIMESTAMP_TOKENS: Final = (
    "2026-01-05T08:00:00",
    "2026-01-05",
    "08:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00-01:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59+01:00",
    "9999-12-31T23:59:59.999999Z",
    "10000-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00+00:01",
    "2099-12-31T23:59:59.999999Z",
    "2099-12-31T23:59:59-00:01",
    "2100-01-01T00:00:00Z",
    "2999-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "2026-01-05T24:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-01-05 08:00:00Z",
    "2026-01-05T08:00:00+24:00",
    "2026-01-05T08:00:00-23:59",
    "20260105T080000Z",
    "2026-01-05T08:00:00.1234567890123Z",
    "2026-W02-1T08:00:00Z",
    "+002026-01-05T08:00:00Z",
    "2026-01-05t08:00:00z",
    "1767600000",
    "",
)
OTHER_TOKENS: Final = (
    "true",
    "false",
    "null",
    "[]",
    "{}",
    '""',
    '"\\u0000"',
    '"\\ud800"',
    '"\\udc00\\ud800"',
    '"\\ud83d\\ude42"',
    '"\\uFFFF"',
    '{"sid": "0", "id": "1", "$s": 1}',
    '{"__proto__": {"polluted": true}}',
    '"' + "x" * 2001 + '"',
    '"' + "x" * 70_000 + '"',
    "[" * 300 + "]" * 300,
    '{"a":' * 300 + "1" + "}" * 300,
)

BAD_BYTES: Final = (
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\x00",
)
BOM: Final = b"\xef\xbb\xbf"


# --- text and times --------------------------------------------------------------------


def text(min_size: int = 0, max_size: int = 64) -> st.SearchStrategy[str]:
    """Any Unicode text JSON can carry in UTF-8 (no lone surrogates), or a tricky value."""
    tricky = [t for t in TRICKY_TEXT if min_size <= len(t) <= max_size]
    return st.one_of(
        st.text(st.characters(codec="utf-8"), min_size=min_size, max_size=max_size),
        st.sampled_from(tricky),
    )


def refs(common: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A reference: mostly one of a few, so events of one incident refer to each other."""
    return st.one_of(st.sampled_from(common), st.sampled_from(common), text(1, 64))


def instants() -> st.SearchStrategy[dt.datetime]:
    """Mostly near one start, so deadlines interact; sometimes anywhere accepted."""
    near = st.integers(-2 * 86400, 40 * 86400).map(lambda s: T0 + dt.timedelta(seconds=s))
    edges = st.sampled_from(
        [
            EARLIEST_TIMESTAMP,
            EARLIEST_TIMESTAMP + dt.timedelta(hours=23),
            LATEST_TIMESTAMP - dt.timedelta(hours=23),
            LATEST_TIMESTAMP,
        ]
    )
    anywhere = st.datetimes(
        min_value=dt.datetime(1900, 1, 2),
        max_value=dt.datetime(2099, 12, 30),
        timezones=st.just(dt.UTC),
    )
    return st.one_of(near, near, near, edges, anywhere)


def _render(instant: dt.datetime, offset_minutes: int, zulu: bool) -> str:
    if offset_minutes == 0 and zulu:
        return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    return instant.astimezone(zone).isoformat()


def timestamps() -> st.SearchStrategy[str]:
    """RFC 3339 text for an accepted instant, in any offset the contract allows."""
    offsets = st.one_of(st.just(0), st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    return st.builds(_render, instants(), offsets, st.booleans())


# --- valid events ----------------------------------------------------------------------

INCIDENTS: Final = ("INC-1", "INC-2", "sid")
VICTIMS: Final = ("V1", "V2", "$s")
CRIMES: Final = ("C1", "C2")
DISCLOSURE_IDS: Final = ("D1", "D2")
EVENT_IDS: Final = ("E1", "E2", "E3")

codes = st.one_of(st.sampled_from(COMMON_CODES), st.sampled_from(KNOWN_CODES), text(1, 16)).filter(
    bool
)
qualifiers = st.one_of(st.sampled_from(sorted(KNOWN_QUALIFIERS)), text(1, 64))
free_text = st.one_of(st.none(), text(0, 40), st.just("x" * 2000), st.just(" \t\n"))

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | text(0, 20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(0, 8), inner, max_size=3),
    max_leaves=8,
)
extra_fields = st.dictionaries(
    st.one_of(
        st.sampled_from(["sid", "id", "$s", "$and", "__proto__", "narrative", "notes", "x" * 300]),
        text(0, 20),
    ),
    json_values,
    max_size=4,
)


def _many(draw: st.DrawFn, item: st.SearchStrategy[dict[str, Any]], key: str, limit: int) -> Any:
    """A short drawn list, or (sometimes) one drawn item repeated up to the contract's
    limit with distinct ids: full lists without paying to draw every element."""
    if draw(st.integers(0, 9)) == 0:
        first = draw(item)
        return [{**first, key: f"{first[key][:56]}-{i}"} for i in range(limit)]
    return draw(st.lists(item, max_size=3))


@st.composite
def victims(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "victim_ref": draw(refs(VICTIMS)),
        "kind": draw(st.sampled_from(["person", "organisation"])),
    }


@st.composite
def disclosures(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "disclosure_id": draw(refs(DISCLOSURE_IDS)),
        "offence_code": draw(codes),
        "victim_ref": draw(st.none() | refs(VICTIMS)),
    }
    if draw(st.booleans()):
        doc["offender_ref"] = draw(st.none() | refs(("O1",)))
    if draw(st.booleans()):
        doc["disclosed_at"] = draw(timestamps())
    if draw(st.booleans()):
        doc["contrary_evidence"] = draw(st.booleans())
    return doc


@st.composite
def events(draw: st.DrawFn, incidents: tuple[str, ...] = INCIDENTS) -> dict[str, Any]:
    """One contract-valid `cdi.incidents` message as a dict (before encoding)."""
    kind = draw(
        st.sampled_from(
            [
                "incident.reported",
                "incident.reported",
                "incident.updated",
                "incident.closed",
                "crime.recorded",
                "crime.recorded",
                "crime.reclassified",
                "crime.cancelled",
                "n100.recorded",
            ]
        )
    )
    doc: dict[str, Any] = {
        "schema_version": 1,
        "event_id": draw(st.one_of(st.sampled_from(EVENT_IDS), text(1, 128))),
        "event_type": kind,
        "incident_id": draw(st.one_of(st.sampled_from(incidents), text(1, 64))),
        "occurred_at": draw(timestamps()),
    }
    if draw(st.booleans()):
        doc["source"] = draw(st.none() | text(0, 64))
    if kind == "incident.reported":
        if draw(st.booleans()):
            doc["reported_at"] = draw(timestamps())
        doc["channel"] = draw(st.sampled_from(CHANNELS))
        doc["opening_code"] = draw(text(1, 64))
        doc["qualifiers"] = draw(st.lists(qualifiers, max_size=32))
        doc["victims"] = _many(draw, victims(), "victim_ref", 50)
        doc["disclosures"] = _many(draw, disclosures(), "disclosure_id", 100)
    elif kind == "incident.updated":
        doc["qualifiers_added"] = draw(st.lists(qualifiers, max_size=4))
        doc["victims_added"] = _many(draw, victims(), "victim_ref", 50)
        doc["disclosures"] = _many(draw, disclosures(), "disclosure_id", 100)
    elif kind == "incident.closed":
        doc["closure_type"] = draw(st.sampled_from(CLOSURES))
        doc["closing_code"] = draw(text(1, 64))
        doc["rationale"] = draw(free_text)
    elif kind == "crime.recorded":
        doc["crime_id"] = draw(refs(CRIMES))
        doc["offence_code"] = draw(codes)
        doc["victim_ref"] = draw(st.none() | refs(VICTIMS))
        doc["offender_refs"] = draw(st.lists(refs(("O1", "O2")), max_size=50))
        doc["recorded_by_role"] = draw(st.sampled_from(RECORDERS))
    elif kind == "crime.reclassified":
        doc["crime_id"] = draw(refs(CRIMES))
        doc["from_code"] = draw(codes)
        doc["to_code"] = draw(codes)
        doc["rationale"] = draw(free_text)
        doc["by_role"] = draw(st.sampled_from(RECORDERS))
    elif kind == "crime.cancelled":
        doc["crime_id"] = draw(refs(CRIMES))
        doc["reason"] = draw(st.one_of(st.sampled_from(REASONS), text(0, 64)))
        doc["avi"] = draw(free_text)
        doc["authoriser_role"] = draw(st.sampled_from(AUTHORISERS))
        doc["victim_informed"] = draw(st.none() | st.booleans())
    else:
        doc["n100_id"] = draw(refs(("N1",)))
        doc["rationale"] = draw(free_text)
    if draw(st.integers(0, 3)) == 0:
        extra = draw(extra_fields)
        doc.update({k: v for k, v in extra.items() if k not in doc})
    return doc


@st.composite
def decisions(draw: st.DrawFn, flag_ids: tuple[str, ...] = ("flag-0",)) -> dict[str, Any]:
    """One contract-valid `cdi.ddm-decisions` message as a dict."""
    doc: dict[str, Any] = {
        "decision_id": draw(st.one_of(st.sampled_from(["DEC-1", "DEC-2"]), text(1, 128))),
        "flag_id": draw(st.one_of(st.sampled_from(flag_ids), text(1, 128))),
        "incident_id": draw(st.one_of(st.sampled_from(INCIDENTS), text(1, 64))),
        "decision": draw(st.sampled_from(["upheld", "rejected"])),
        "reason": draw(text(0, 100)),
        "decided_at": draw(timestamps()),
        "ddm_ref": draw(text(1, 64)),
    }
    if draw(st.booleans()):
        doc["schema_version"] = 1
    return doc


# --- raw messages ----------------------------------------------------------------------


def encode(doc: Any, *, ascii_only: bool = True) -> bytes:
    """JSON as a producer might write it (NaN and Infinity included when present)."""
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8")


def _paths(doc: dict[str, Any]) -> list[tuple[str, ...]]:
    """Top-level keys and the keys of the first element of each list of objects."""
    paths: list[tuple[str, ...]] = [(k,) for k in doc]
    for key, value in doc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            paths.extend((key, "0", inner) for inner in value[0])
    return paths


def _with_raw(doc: dict[str, Any], path: tuple[str, ...], token: str | None) -> bytes:
    """``doc`` encoded with the value at ``path`` replaced by the raw JSON ``token``
    (or removed when ``token`` is None)."""
    copy = json.loads(json.dumps(doc))
    target = copy
    for step in path[:-1]:
        target = target[int(step)] if isinstance(target, list) else target[step]
    if token is None:
        del target[path[-1]]
        return encode(copy)
    target[path[-1]] = MARK
    return encode(copy).replace(json.dumps(MARK).encode(), token.encode(), 1)


tokens = st.one_of(
    st.sampled_from(NUMBER_TOKENS),
    st.sampled_from(TIMESTAMP_TOKENS).map(json.dumps),
    st.sampled_from(OTHER_TOKENS),
    json_values.map(json.dumps),
)


@st.composite
def field_broken(draw: st.DrawFn, docs: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """A valid message with one value replaced by a hostile token, or one field removed."""
    doc = draw(docs)
    path = draw(st.sampled_from(_paths(doc)))
    return _with_raw(doc, path, draw(st.none() | tokens))


@st.composite
def truncated(draw: st.DrawFn, docs: st.SearchStrategy[dict[str, Any]]) -> bytes:
    raw = encode(draw(docs), ascii_only=draw(st.booleans()))
    return raw[: draw(st.integers(0, len(raw) - 1))]


@st.composite
def spliced(draw: st.DrawFn, docs: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """Invalid UTF-8, a NUL or a BOM put somewhere into a valid message."""
    raw = encode(draw(docs), ascii_only=draw(st.booleans()))
    if draw(st.booleans()):
        return BOM + raw
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + draw(st.sampled_from(BAD_BYTES)) + raw[at:]


@st.composite
def flipped(draw: st.DrawFn, docs: st.SearchStrategy[dict[str, Any]]) -> bytes:
    raw = bytearray(encode(draw(docs)))
    at = draw(st.integers(0, len(raw) - 1))
    raw[at] = draw(st.integers(0, 255))
    return bytes(raw)


@st.composite
def surrogate_text(draw: st.DrawFn, docs: st.SearchStrategy[dict[str, Any]]) -> str:
    """A message given as ``str`` with a lone surrogate in it (cannot be UTF-8)."""
    raw = encode(draw(docs)).decode()
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + chr(draw(st.integers(0xD800, 0xDFFF))) + raw[at:]


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([2, 100, 128, 255, 256, 1000, 100_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opener * depth + ("1" if opener != "[" else "") + closer * depth
    if draw(st.booleans()):
        return inner.encode()
    return (
        f'{{"schema_version":1,"event_type":"incident.updated","victims_added":{inner}}}'.encode()
    )


@st.composite
def not_objects(draw: st.DrawFn) -> bytes:
    return encode(draw(st.one_of(json_values, st.lists(events(), max_size=2))))


def messages(
    docs: st.SearchStrategy[dict[str, Any]] | None = None,
) -> st.SearchStrategy[bytes | str]:
    """Raw messages: valid ones, and every kind of breakage, for a decoder of ``docs``."""
    docs = events() if docs is None else docs
    return st.one_of(
        docs.map(encode),
        st.binary(max_size=300),
        field_broken(docs),
        field_broken(docs),
        truncated(docs),
        spliced(docs),
        flipped(docs),
        surrogate_text(docs),
        nested(),
        not_objects(),
    )


# Plain, valid event documents for the pinned cases around the generated ones.


def report(at: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": "E1",
        "event_type": "incident.reported",
        "incident_id": "INC-1",
        "occurred_at": at,
        "channel": "999",
        "opening_code": "ASSAULT",
        "disclosures": [{"disclosure_id": "D1", "offence_code": "8N", "victim_ref": "V1"}],
        **fields,
    }


def closure(at: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": "E2",
        "event_type": "incident.closed",
        "incident_id": "INC-1",
        "occurred_at": at,
        "closure_type": "non_crime",
        "closing_code": "NFA",
        **fields,
    }
