"""Free text and secrets stay where they came from.

Incident logs carry free text (a rationale, the additional verifiable information for a
cancellation, a DDM's reason) and senders may add fields the contract does not know,
such as a caller's name or a narrative. None of it may reach a flag, which a DDM queue
and its logs keep, or the engine's state, which a changelog topic keeps: only whether
a text was given matters to the rules. A SASL password given in the environment must
never be printed by ``cdi-stream config``, whatever else is wrong with the settings.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, Final

import pytest
from typer.testing import CliRunner

from cdi_stream.cli import app
from cdi_stream.contract import DdmDecision, FlagChange, parse_incident_event
from cdi_stream.engine import Engine
from cdi_stream.replay import replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.simulate import SimConfig, encode_event, generate
from tests.engine.scenario import Incident

NARRATIVE: Final = "John Smith punched Jane Doe outside 12 Acacia Avenue"
UNICODE_NARRATIVE: Final = "Zoë Ó Briain said Siân Jones was hit\u2028twice 🙂"
# Every distinctive piece of the texts above: none may appear anywhere.
NEEDLES: Final = ("John Smith", "Jane Doe", "Acacia", "punched", "Zoë", "Briain", "Siân")
FREE_TEXT_FIELDS: Final = ("rationale", "avi")


def needles_in(data: bytes) -> list[str]:
    """The needles found in ``data``, raw or as JSON escapes."""
    found = []
    for needle in NEEDLES:
        forms = {needle.encode(), json.dumps(needle)[1:-1].encode()}
        if any(form in data for form in forms):
            found.append(needle)
    return found


def with_free_text(event: dict[str, Any], n: int) -> dict[str, Any]:
    """``event`` with its given free text replaced by narratives and unknown fields
    (names, narratives, nested objects) added at every level."""
    out = copy.deepcopy(event)
    text = NARRATIVE if n % 2 else UNICODE_NARRATIVE
    for field in FREE_TEXT_FIELDS:
        if isinstance(out.get(field), str) and out[field].strip():
            out[field] = f"{text} ({n})"
    out["narrative"] = f"{text} ({n})"
    out["caller"] = {"name": "John Smith", "notes": [UNICODE_NARRATIVE, {"x": NARRATIVE}]}
    for item in out.get("victims", []) + out.get("victims_added", []):
        item["name"] = "Jane Doe"
    for item in out.get("disclosures", []):
        item["description"] = NARRATIVE
    return out


def handmade() -> list[dict[str, Any]]:
    """Incidents in which each free-text field is given and a rule looks at it."""
    return [
        *Incident("INC-CRI").reported(0).closed(2, "cri", rationale="NCRS").events,
        *Incident("INC-DOWN")
        .reported(0)
        .crime(2, "8N")
        .reclassified(30, "8N", "105A", rationale="no injury found")
        .events,
        *Incident("INC-C2").reported(0).crime(2, "8N").cancelled(30, "C2", avi="CCTV").events,
        *Incident("INC-C2-NONE").reported(0).crime(2, "8N").cancelled(30, "C2", avi=" ").events,
        *Incident("INC-N100")
        .reported(0, disclosures=[("19C", "V1")], qualifiers=["rape"])
        .n100(5, rationale="transferred to another force")
        .events,
        *Incident("INC-CLOSE").reported(0).closed(40, "non_crime", rationale="no crime").events,
    ]


def stream() -> list[dict[str, Any]]:
    simulated = [event for event, _ in generate(SimConfig(seed=3, incidents=600))]
    return handmade() + simulated


def lines(events: Iterable[dict[str, Any]]) -> list[bytes]:
    return [encode_event(e) for e in events]


def replayed(book: RuleBook, events: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    summary = replay(lines(events), book, out=out)
    assert summary.rejected == 0
    return out.getvalue()


def test_free_text_and_unknown_fields_never_reach_the_flags(book: RuleBook) -> None:
    plain = stream()
    noisy = [with_free_text(e, n) for n, e in enumerate(plain)]
    given = [e for e in noisy if any(isinstance(e.get(f), str) for f in FREE_TEXT_FIELDS)]
    assert {e["event_type"] for e in given} >= {
        "incident.closed",
        "crime.reclassified",
        "crime.cancelled",
        "n100.recorded",
    }
    assert all(needles_in(line) for line in lines(noisy))  # the input does carry them

    flags = replayed(book, noisy)
    findings = {json.loads(line)["finding"] for line in flags.splitlines()}
    assert {"cri_without_rationale", "incorrect_cancellation", "crime_not_recorded"} <= findings
    assert needles_in(flags) == []
    # Only whether a text was given counts, so other text gives the same bytes.
    assert flags == replayed(book, plain)


def engine_states(engine: Engine) -> Iterator[tuple[str, bytes]]:
    for incident_id in list(engine.store):
        case = engine.store.get(incident_id)
        assert case is not None
        yield incident_id, json.dumps(case.to_dict(), ensure_ascii=False).encode()


def test_free_text_and_unknown_fields_never_reach_the_engine_state(book: RuleBook) -> None:
    engine = Engine(book)
    flags: list[FlagChange] = []
    for n, event in enumerate(stream()):
        parsed = parse_incident_event(encode_event(with_free_text(event, n)))
        flags.extend(engine.apply(parsed))
        case = engine.store.get(parsed.incident_id)
        if case is not None:  # checked after every event: incidents are dropped later
            state = json.dumps(case.to_dict(), ensure_ascii=False).encode()
            assert needles_in(state) == [], parsed.incident_id
    assert flags
    assert all(needles_in(state) == [] for _, state in engine_states(engine))


def test_a_ddm_reason_never_reaches_the_flags_or_the_engine_state(book: RuleBook) -> None:
    engine = Engine(book)
    changes: list[FlagChange] = []
    for event in handmade():
        changes.extend(engine.apply(parse_incident_event(encode_event(event))))
    changes.extend(engine.advance_to(engine.now + 3 * 86400 if engine.now else 0.0))
    latest = {c.flag_id: c for c in changes}
    open_flags = [c for c in latest.values() if c.status == "open"]
    assert len(open_flags) >= 2
    for n, flag in enumerate(open_flags):
        decision = DdmDecision.model_validate(
            {
                "decision_id": f"DEC-{n}",
                "flag_id": flag.flag_id,
                "incident_id": flag.incident_id,
                "decision": "rejected" if n % 2 else "upheld",
                "reason": NARRATIVE if n % 2 else UNICODE_NARRATIVE,
                "decided_at": "2026-01-09T09:00:00Z",
                "ddm_ref": "DDM-1",
            }
        )
        for change in engine.decide(decision):
            assert needles_in(change.to_json_bytes()) == []
    assert all(needles_in(state) == [] for _, state in engine_states(engine))


# --- cdi-stream config -----------------------------------------------------------------

runner = CliRunner()
PASSWORD: Final = 'pa55="wörd"#$HOME;\\n-not-to-be-printed'


def printed(args: list[str], exit_code: int = 0) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == exit_code, result.output
    shown = [result.output, result.stdout, result.stderr, repr(result.exception)]
    return "\n".join(shown)


def password_forms() -> list[str]:
    """The password as given, and as JSON or repr() would write it."""
    return [PASSWORD, json.dumps(PASSWORD)[1:-1], repr(PASSWORD)[1:-1], "pa55", "wörd"]


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({"CDI_SECURITY_PROTOCOL": "SASL_SSL"}, id="valid"),
        pytest.param({"CDI_SECURITY_PROTOCOL": "PLAINTEXT"}, id="sasl-not-used"),
        pytest.param({"CDI_SECURITY_PROTOCOL": "SSL"}, id="tls-without-sasl"),
        pytest.param(
            {"CDI_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CDI_SASL_USERNAME": ""},
            id="username-missing",
        ),
        pytest.param(
            {"CDI_SECURITY_PROTOCOL": "SASL_SSL", "CDI_PARTITIONS": "0", "CDI_CLOCK": "x"},
            id="other-variables-wrong",
        ),
        pytest.param(
            {"CDI_SECURITY_PROTOCOL": "SASL_SSL", "CDI_SSL_CAFILE": "/nonexistent/ca.pem"},
            id="missing-ca-file",
        ),
        pytest.param({"CDI_SECURITY_PROTOCOL": "KERBEROS"}, id="unknown-protocol"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_config_never_prints_the_sasl_password(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], as_json: bool
) -> None:
    """Valid or not, in text or JSON, on stdout or stderr (test_cli covers the masked
    value of a valid configuration)."""
    monkeypatch.setenv("CDI_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CDI_SASL_USERNAME", "cdi")
    monkeypatch.setenv("CDI_SASL_PASSWORD", PASSWORD)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    valid = environment.get("CDI_SECURITY_PROTOCOL") == "SASL_SSL" and len(environment) == 1
    shown = printed(["config", "--json"] if as_json else ["config"], 0 if valid else 2)
    assert "***" in shown if valid else "CDI_" in shown
    assert [form for form in password_forms() if form in shown] == []


@pytest.mark.parametrize(
    "name", ["CDI_SASL_PASWORD", "CDI_SASL_PASSWORD_FILE", "cdi_sasl_password"]
)
def test_config_never_prints_a_password_set_under_a_mistyped_name(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, PASSWORD)
    # Settings names are not case-sensitive: the lower-case name sets the password,
    # which is refused because no SASL protocol is set.
    shown = printed(["config"], 2 if name == "cdi_sasl_password" else 0)
    assert [form for form in password_forms() if form in shown] == []


def test_a_cancellation_reason_written_as_a_sentence_never_reaches_flags_or_state(
    book: RuleBook,
) -> None:
    """Regression: the reason was copied into the flag's explanation and the case state,
    so a sentence naming someone ("John Smith withdrew support") was published."""
    sentence = "John Smith withdrew support after a call"
    events = Incident().reported(0).crime(2).cancelled(30, sentence, role="officer").events
    engine = Engine(book)
    changes: list[FlagChange] = []
    for event in events:
        changes.extend(engine.apply(parse_incident_event(json.dumps(event))))
    flag = next(c for c in changes if c.finding == "incorrect_cancellation")
    assert "reason given as free text is not one of C1-C5" in flag.explanation
    published = b"".join(c.to_json_bytes() for c in changes)
    state = engine.store.get("INC-1")
    assert state is not None
    for text in (published, json.dumps(state.to_dict()).encode()):
        assert b"John" not in text and b"withdrew" not in text
    coded = Incident("INC-2").reported(0).crime(2).cancelled(30, "C6", role="officer").events
    engine.apply(parse_incident_event(json.dumps(coded[0])))
    engine.apply(parse_incident_event(json.dumps(coded[1])))
    out = engine.apply(parse_incident_event(json.dumps(coded[2])))
    assert any("reason C6 is not one of C1-C5" in c.explanation for c in out), "codes are kept"


def test_a_long_sentence_as_reason_or_closing_code_is_accepted_and_never_published(
    book: RuleBook,
) -> None:
    """Regression: a reason or closing code over 64 characters failed validation, so the
    event went to the dead letter topic and its finding was lost (the contract accepts
    any reason; an invalid one is itself a finding)."""
    sentence = "Officer spoke to John Smith who said the victim no longer supports it " * 4
    incident = Incident().reported(0).crime(2).cancelled(30, sentence, role="officer")
    events = incident.closed(40, "cri", rationale="x" * 5000).events
    events[-1]["closing_code"] = sentence
    engine = Engine(book)
    changes: list[FlagChange] = []
    for event in events:
        changes.extend(engine.apply(parse_incident_event(json.dumps(event))))
    assert engine.stats["events"] == len(events)
    assert any("reason given as free text" in c.explanation for c in changes)
    state = engine.store.get("INC-1")
    assert state is not None
    for text in (b"".join(c.to_json_bytes() for c in changes), json.dumps(state.to_dict())):
        assert "John" not in str(text) and "supports" not in str(text)


@pytest.mark.parametrize(
    ("closing_code", "shown"),
    [
        (NARRATIVE, "free text"),
        ("JaneDoe", "free text"),
        ("JANE DOE", "free text"),
        ("VICTIM JANE DOE WITHDREW", "free text"),
        (" CRI-03 ", "CRI-03"),
    ],
)
def test_a_closing_code_written_as_text_never_reaches_flags_or_state(
    book: RuleBook, closing_code: str, shown: str
) -> None:
    """Regression: the closing code, a free string in the contract, was copied into
    ``cri_without_rationale`` flags as given. Codes are upper case; anything else may
    be a sentence or a name."""
    events = Incident().reported(0).closed(2, "cri").events
    events[-1]["closing_code"] = closing_code
    engine = Engine(book)
    changes: list[FlagChange] = []
    for event in events:
        changes.extend(engine.apply(parse_incident_event(json.dumps(event))))
    flag = next(c for c in changes if c.finding == "cri_without_rationale")
    assert flag.observed == {"closing_code": shown}
    published = b"".join(c.to_json_bytes() for c in changes)
    case = engine.store.get("INC-1")
    assert case is not None
    state = json.dumps(case.to_dict()).encode()
    for text in (published, state):
        assert needles_in(text) == [] and b"JaneDoe" not in text and b"JANE" not in text


def test_a_cancellation_reason_that_could_be_a_name_is_not_published(book: RuleBook) -> None:
    events = Incident().reported(0).crime(2).cancelled(30, "JaneDoe", role="officer").events
    engine = Engine(book)
    changes = [c for e in events for c in engine.apply(parse_incident_event(json.dumps(e)))]
    assert b"JaneDoe" not in b"".join(c.to_json_bytes() for c in changes)
    assert any("reason given as free text" in c.explanation for c in changes)
