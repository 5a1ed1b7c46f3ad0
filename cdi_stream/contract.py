"""The message contract (version 1): the models every topic is read and written with.

Field names and meanings are fixed by the published contract; these models are its
implementation and `schemas/` is generated from them, so a change here is a change to
the public interface.

Choices that are not obvious from the contract:

* Timestamps must be RFC 3339 strings with an offset (in Python, aware `datetime`
  objects are accepted too). Numbers are refused rather than read as epoch seconds, because a
  seconds/milliseconds mix-up would silently move a 24-hour deadline. Every timestamp is
  normalised to UTC so that equal instants compare and serialise identically.
* Input timestamps must fall in the years 1900 to 2099 (UTC). RFC 3339 allows 0000 to
  9999, but an instant near either end cannot be converted to UTC, or have a deadline or
  retention period added to it, without leaving the range of a `datetime`; and the
  engine keeps times as float seconds, which hold every microsecond exactly only up to
  2**32 seconds either side of 1970 (years 1833 to 2106). No crime record is dated
  outside the window, so such a value is a schema error, not a crash or a shifted
  time. Output timestamps (a deadline computed from an input) are not bounded.
* Booleans are strict: `"yes"` or `1` for `contrary_evidence` is a schema error,
  not a guess.
* Every string and list is bounded, so one hostile message cannot exhaust memory in a
  long-lived stream processor. Control-room opening/closing codes and cancellation
  reasons take up to 2,000 characters, not the Home Office code bound (16), because
  forces use long mnemonics and some systems send a sentence (kept only as "free text").
* `reported_at` and `Disclosure.disclosed_at` are filled in by the event's validator,
  so after parsing they are never `None`; their declared type states that invariant.
  `Disclosure.disclosed_at_given` still tells whether the sender gave the time, which a
  replacing disclosure needs (it keeps the original time unless it gives its own).
* Models are frozen: events are facts, and the engine may share them between states.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, Self

import pydantic_core
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EARLIEST_TIMESTAMP",
    "EVENT_TYPES",
    "KNOWN_QUALIFIERS",
    "LATEST_TIMESTAMP",
    "ContractError",
    "CrimeCancelled",
    "CrimeReclassified",
    "CrimeRecorded",
    "DdmDecision",
    "DeadLetter",
    "DeadLetterError",
    "DeadLetterKind",
    "Disclosure",
    "Finding",
    "FlagChange",
    "IncidentClosed",
    "IncidentEvent",
    "IncidentReported",
    "IncidentUpdated",
    "N100Recorded",
    "Victim",
    "format_timestamp",
    "parse_decision",
    "parse_incident_event",
    "parse_timestamp",
]

DEFAULT_MAX_BYTES: Final = 1_048_576

# --- field types -----------------------------------------------------------------------


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with `Z`; microseconds only when non-zero.

    One spelling per instant is what makes replay output byte-identical across runs.
    """
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat() + "Z"


@functools.lru_cache(maxsize=8192)
def _format_utc_timestamp(value: datetime) -> str:
    return format_timestamp(value)


def _format_output_timestamp(value: datetime) -> str:
    """`format_timestamp`, remembered for UTC values: the engine writes the same few
    instants (the evaluation time, a subject's deadline) into many messages."""
    if value.tzinfo is UTC:
        return _format_utc_timestamp(value)
    return format_timestamp(value)


EARLIEST_TIMESTAMP: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP: Final = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


# RFC 3339's date-time (``T``, ``t`` or a space between date and time; seconds required;
# an offset with a colon). The offset is optional here only so that a naive timestamp
# gets the parser's own "timezone required" error. Without this check the parser would
# also read a string of digits ("1700000000", or the same in milliseconds) as epoch time.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?")
# The same for JSON Schema users, with the offset required and the years bounded (in
# local time: the models bound the instant in UTC).
# It cannot check the calendar (2026-02-30 passes it), and a validator that reads ``$``
# as Python does also lets a final line break through; the models refuse both.
_RFC3339_PATTERN: Final = (
    r"^(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt ](?:[01]\d|2[0-3])"
    r":[0-5]\d:[0-5]\d(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)


def _utc(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
    if isinstance(value, int | float):  # bool is an int too
        raise PydanticCustomError("datetime_type", "timestamp must be an RFC 3339 string")
    if isinstance(value, str):
        if _RFC3339.fullmatch(value) is None:
            raise PydanticCustomError(
                "datetime_format",
                "timestamp must be RFC 3339 with an offset, e.g. 2026-11-23T07:30:00Z",
            )
        if value[17:19] == "60":
            raise PydanticCustomError(
                "datetime_format", "a leap second (:60) cannot be represented; send :59"
            )
    parsed: datetime = handler(value)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise _out_of_range() from None


def _utc_in_range(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
    utc = _utc(value, handler)
    if not EARLIEST_TIMESTAMP <= utc <= LATEST_TIMESTAMP:
        raise _out_of_range()
    return utc


def _out_of_range() -> PydanticCustomError:
    return PydanticCustomError(
        "timestamp_range", "timestamp must be in the years 1900 to 2099 (UTC)"
    )


# Read from input: bounded, so that deadlines computed from it stay representable.
Timestamp = Annotated[
    AwareDatetime,
    WrapValidator(_utc_in_range),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _RFC3339_PATTERN}),
]
# Written by the engine: a deadline may fall after the last input instant.
OutputTimestamp = Annotated[
    AwareDatetime,
    WrapValidator(_utc),
    PlainSerializer(_format_output_timestamp, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # JSON true would otherwise pass as the literal 1
        raise PydanticCustomError("literal_error", "schema_version must be the number 1")
    return value


_SchemaVersion = Annotated[Literal[1], BeforeValidator(_not_bool)]


def _bounded(max_length: int, min_length: int = 0) -> StringConstraints:
    return StringConstraints(min_length=min_length, max_length=max_length)


EventId = Annotated[str, _bounded(128, 1)]
Ref = Annotated[str, _bounded(64, 1)]
# Home Office codes are short; a longer value (a typed description) is still taken, as an
# unknown code kept only as "free text", so that it never costs the rest of its event.
HoCode = Annotated[str, _bounded(2000, 1)]
# Local codes are often typed by hand, and a description typed in place of a code is
# still a valid event: the engine keeps it only as "free text". The bounds protect memory
# and the message limit, not the format.
LocalCode = Annotated[str, _bounded(2000, 1)]
FreeText = Annotated[str, _bounded(20_000)]  # input narrative: only its presence is kept
Text = Annotated[str, _bounded(2000)]  # output prose
Qualifier = Annotated[str, _bounded(64, 1)]


def _no_default_in_schema(schema: dict[str, Any]) -> None:
    # The default is "another field's value", which JSON Schema cannot say; the
    # description says it instead of a misleading `"default": null`.
    schema.pop("default", None)


# Typed `Any` so the attribute can be declared with its post-validation type.
_FILLED_BY_EVENT: Any = None

Channel = Literal["999", "101", "online", "front_counter", "officer", "partner_referral", "other"]
ClosureType = Literal["crime", "cri", "non_crime", "n100", "duplicate", "transferred"]
RecorderRole = Literal["officer", "crime_bureau", "ddm", "fcr", "other"]
AuthoriserRole = Literal["officer", "supervisor", "ddm", "fcr", "other"]
VictimKind = Literal["person", "organisation"]
Decision = Literal["upheld", "rejected"]
FlagStatus = Literal["open", "resolved", "withdrawn"]
Priority = Literal["P1", "P2", "P3"]
Finding = Literal[
    "deadline_warning",
    "crime_not_recorded",
    "late_recording",
    "additional_crime_not_recorded",
    "wrong_classification",
    "unexplained_downgrade",
    "incorrect_cancellation",
    "rape_not_resolved",
    "cri_without_rationale",
]
DeadLetterKind = Literal[
    "not_json",
    "schema",
    "too_large",
    "unknown_event_type",
    "unsupported_schema_version",
    "unknown_flag",
    "not_object",
    "incident_limit",
    "engine_error",
    "future_event",
    "wrong_partition",
    "wrong_key",
]

KNOWN_QUALIFIERS: Final = frozenset(
    {
        "domestic_abuse",
        "injury",
        "weapon",
        "hate_race",
        "hate_religion",
        "hate_disability",
        "hate_sexual_orientation",
        "hate_transgender",
        "sexual",
        "rape",
        "child",
        "vulnerable",
        "modern_slavery",
        "former_partner",
        "course_of_conduct",
        "mental_health",
        "alcohol",
    }
)

# --- incident events -------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Victim(_Model):
    """A victim named by pseudonymous reference only: the stream carries no personal data."""

    victim_ref: Ref
    kind: VictimKind


class Disclosure(_Model):
    """An offence the report discloses on the balance of probability.

    A later disclosure with the same `disclosure_id` on the same incident replaces this
    one and keeps its `disclosed_at` unless it gives its own.
    """

    disclosure_id: Ref
    offence_code: HoCode
    victim_ref: Ref | None = None
    offender_ref: Ref | None = None
    disclosed_at: Timestamp = Field(
        default=_FILLED_BY_EVENT,
        description="When the offence was disclosed; defaults to the event's occurred_at.",
        json_schema_extra=_no_default_in_schema,
    )
    contrary_evidence: StrictBool = False

    @property
    def disclosed_at_given(self) -> bool:
        """Whether the sender gave `disclosed_at` rather than the event filling it in."""
        return "disclosed_at" in self.model_fields_set


class _Envelope(_Model):
    schema_version: _SchemaVersion
    event_id: EventId
    event_type: str  # narrowed to one Literal per event class, the union's discriminator
    incident_id: Ref
    occurred_at: Timestamp
    source: Annotated[str, _bounded(64)] | None = None


_Disclosures = Annotated[list[Disclosure], Field(max_length=100)]


def _fill_disclosure_times(
    event: _Envelope, disclosures: list[Disclosure], info: ValidationInfo
) -> None:
    """Set each missing `disclosed_at` to the event's `occurred_at`.

    The filled field stays out of `model_fields_set`, which is what
    `Disclosure.disclosed_at_given` reads. Parsed from JSON, the disclosures were made
    by this validation and nobody else holds them, so they are filled in place (the hot
    path); from Python they may be the caller's objects, so they are copied.
    """
    at = event.occurred_at
    if info.mode != "python":
        for d in disclosures:
            if d.disclosed_at is None:
                object.__setattr__(d, "disclosed_at", at)  # still construction
        return
    if any(d.disclosed_at is None for d in disclosures):
        filled = [d if d.disclosed_at is not None else _copy_with_time(d, at) for d in disclosures]
        object.__setattr__(event, "disclosures", filled)


def _copy_with_time(disclosure: Disclosure, at: datetime) -> Disclosure:
    copy = disclosure.model_copy(update={"disclosed_at": at})
    copy.model_fields_set.discard("disclosed_at")
    return copy


class IncidentReported(_Envelope):
    """The report is received: the 24-hour recording clock starts at `reported_at`."""

    event_type: Literal["incident.reported"]
    reported_at: Timestamp = Field(
        default=_FILLED_BY_EVENT,
        description="When the report was received; defaults to occurred_at.",
        json_schema_extra=_no_default_in_schema,
    )
    channel: Channel
    opening_code: LocalCode
    qualifiers: list[Qualifier] = Field(default_factory=list, max_length=32)
    victims: list[Victim] = Field(default_factory=list, max_length=50)
    disclosures: _Disclosures = Field(default_factory=list)

    @model_validator(mode="after")
    def _fill_defaults(self, info: ValidationInfo) -> Self:
        if self.reported_at is None:
            object.__setattr__(self, "reported_at", self.occurred_at)
        _fill_disclosure_times(self, self.disclosures, info)
        return self


class IncidentUpdated(_Envelope):
    """More information logged against an open incident."""

    event_type: Literal["incident.updated"]
    qualifiers_added: list[Qualifier] = Field(default_factory=list, max_length=32)
    victims_added: list[Victim] = Field(default_factory=list, max_length=50)
    disclosures: _Disclosures = Field(default_factory=list)

    @model_validator(mode="after")
    def _fill_defaults(self, info: ValidationInfo) -> Self:
        _fill_disclosure_times(self, self.disclosures, info)
        return self


class IncidentClosed(_Envelope):
    """The control room closes the incident; a `cri` closure needs a rationale."""

    event_type: Literal["incident.closed"]
    closure_type: ClosureType
    closing_code: LocalCode
    rationale: FreeText | None = None


class CrimeRecorded(_Envelope):
    """A crime record is created; `occurred_at` is the recorded time that stops the clock."""

    event_type: Literal["crime.recorded"]
    crime_id: Ref
    offence_code: HoCode
    victim_ref: Ref | None = None
    offender_refs: list[Ref] = Field(default_factory=list, max_length=50)
    recorded_by_role: RecorderRole


class CrimeReclassified(_Envelope):
    """A crime record's classification changes; a downgrade needs a rationale."""

    event_type: Literal["crime.reclassified"]
    crime_id: Ref
    from_code: HoCode
    to_code: HoCode
    rationale: FreeText | None = None
    by_role: RecorderRole


class CrimeCancelled(_Envelope):
    """A crime record is cancelled.

    `reason` is free text: only C1..C5 are valid, but an invalid reason must reach the
    rules (it is itself a finding), not the dead-letter topic.
    """

    event_type: Literal["crime.cancelled"]
    crime_id: Ref
    reason: Annotated[str, _bounded(2000)]
    avi: FreeText | None = None
    authoriser_role: AuthoriserRole
    victim_informed: StrictBool | None = None


class N100Recorded(_Envelope):
    """A rape report is closed with an N100 record instead of a rape crime."""

    event_type: Literal["n100.recorded"]
    n100_id: Ref
    rationale: FreeText | None = None


IncidentEvent = Annotated[
    IncidentReported
    | IncidentUpdated
    | IncidentClosed
    | CrimeRecorded
    | CrimeReclassified
    | CrimeCancelled
    | N100Recorded,
    Field(discriminator="event_type"),
]

EVENT_TYPES: Final = frozenset(
    {
        "incident.reported",
        "incident.updated",
        "incident.closed",
        "crime.recorded",
        "crime.reclassified",
        "crime.cancelled",
        "n100.recorded",
    }
)

# --- decisions and outputs -------------------------------------------------------------


class DdmDecision(_Model):
    """A DDM's verdict on a flag.

    `schema_version` is optional here (the contract omits it) but a value other than 1
    is refused, so a future format cannot be misread.
    """

    schema_version: _SchemaVersion = 1
    decision_id: EventId
    flag_id: Annotated[str, _bounded(128, 1)]
    incident_id: Ref
    decision: Decision
    reason: FreeText
    decided_at: Timestamp
    ddm_ref: Ref


class _Output(_Model):
    # Outputs always carry every field, so their schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    def to_json_bytes(self) -> bytes:
        """Compact JSON in field order with one spelling per timestamp.

        Deterministic, so that replaying the same input yields byte-identical output.
        """
        return self.__pydantic_serializer__.to_json(self)


Scalar = str | int | bool | None


def _sorted_keys(value: dict[str, Scalar]) -> dict[str, Scalar]:
    # Key order must not depend on the order a rule happened to build the dict in.
    return dict(sorted(value.items()))


class FlagChange(_Output):
    """One change of one flag; a consumer keeping the latest revision per flag has the queue."""

    schema_version: Literal[1] = 1
    flag_id: Annotated[str, _bounded(128, 1)]
    revision: int = Field(ge=1)
    status: FlagStatus
    finding: Finding
    rule_id: Ref
    rule_title: Annotated[str, _bounded(200)]
    reference: Annotated[str, _bounded(500)]
    edition: Ref
    priority: Priority
    incident_id: Ref
    victim_ref: Ref | None = None
    crime_ids: list[Ref] = Field(default_factory=list, max_length=200)
    expected: dict[Annotated[str, _bounded(64)], Scalar] = Field(
        default_factory=dict, max_length=32
    )
    observed: dict[Annotated[str, _bounded(64)], Scalar] = Field(
        default_factory=dict, max_length=32
    )
    due_at: OutputTimestamp | None = None
    event_time: OutputTimestamp
    emitted_at: OutputTimestamp
    explanation: Text
    evidence: list[EventId] = Field(default_factory=list, max_length=1000)
    ddm_decision: Decision | None = Field(
        None,
        description="The DDM decision on the flag, once there is one: upheld (the record "
        "is being corrected; the flag resolves when it is) or rejected (the flag was "
        "wrong; withdrawn for good).",
    )

    @model_validator(mode="after")
    def _canonical_dicts(self) -> Self:
        object.__setattr__(self, "expected", _sorted_keys(self.expected))
        object.__setattr__(self, "observed", _sorted_keys(self.observed))
        return self


class DeadLetterError(_Model):
    """Why a message could not be used, precise enough to fix the sender."""

    kind: DeadLetterKind
    field: Annotated[str, _bounded(256)] | None = None
    message: Text


# Room for a 12 MiB message once base64-encoded; far above any broker's default limit.
_MAX_PAYLOAD_CHARS: Final = 16 * 1024 * 1024
# The largest dead letter sent whole, encoded. Kafka producers and brokers refuse
# records over about 1 MiB by default, and a dead letter is larger than the message it
# carries (base64, JSON escapes): a message near the input limit would not fit whole.
DEAD_LETTER_MAX_BYTES: Final = 900_000
_MAX_DEAD_LETTER_KEY: Final = 4096


class DeadLetter(_Output):
    """An input message that could not be used, kept whole where it fits, so nothing
    is lost silently.

    `encoding` applies to both `key` and `value`: `base64` when either is not
    valid UTF-8. For records read from a file, `topic` names the file or the topic it
    stands for and `partition`/`offset` may be null. A message too large to carry whole
    (over `DEAD_LETTER_MAX_BYTES` once encoded) keeps the start of its value, with
    `truncated` set, and its full size and SHA-256 so it can be found at the source.
    """

    schema_version: Literal[1] = 1
    topic: Annotated[str, _bounded(1024)]
    partition: int | None = None
    offset: int | None = None
    encoding: Literal["utf-8", "base64"]
    key: Annotated[str, _bounded(_MAX_PAYLOAD_CHARS)] | None = None
    value: Annotated[str, _bounded(_MAX_PAYLOAD_CHARS)]
    error: DeadLetterError
    received_at: OutputTimestamp
    truncated: bool = Field(
        False, description="The value (or an oversized key) was cut short to fit."
    )
    # Absent from dead letters written before these fields existed.
    value_bytes: int | None = Field(None, ge=0, description="Size of the original value in bytes.")
    value_sha256: Annotated[str, _bounded(64, 64)] | None = Field(
        None, description="SHA-256 of the original value, hex."
    )

    @classmethod
    def from_raw(
        cls,
        *,
        key: bytes | None,
        value: bytes,
        error: DeadLetterError,
        topic: str,
        partition: int | None,
        offset: int | None,
        received_at: datetime,
    ) -> DeadLetter:
        """Build a dead letter from raw bytes, choosing the encoding that keeps them exact,
        and cutting the value short where the whole letter would be too large to send."""
        digest = hashlib.sha256(value).hexdigest()
        key_cut = key is not None and len(key) > _MAX_DEAD_LETTER_KEY
        if key is not None and key_cut:
            key = key[:_MAX_DEAD_LETTER_KEY]  # keys are short; a huge one is noise
        # No letter holds more than this many value bytes, whatever the encoding.
        # Between UTF-8 characters, so UTF-8 text stays text.
        kept = value[: _char_boundary(value, min(len(value), DEAD_LETTER_MAX_BYTES))]

        def build(part: bytes) -> DeadLetter:
            encoding, key_text, value_text = _dead_letter_text(key, part)
            return cls(
                topic=topic,
                partition=partition,
                offset=offset,
                encoding=encoding,
                key=key_text,
                value=value_text,
                error=error,
                received_at=received_at,
                truncated=key_cut or len(part) < len(value),
                value_bytes=len(value),
                value_sha256=digest,
            )

        letter = build(kept)
        size = len(letter.to_json_bytes())
        if size <= DEAD_LETTER_MAX_BYTES:
            return letter
        base = len(build(b"").to_json_bytes())  # all but the value
        while kept and size > DEAD_LETTER_MAX_BYTES:
            # Cut by the excess, at what each kept byte costs once encoded and escaped,
            # with a little to spare; UTF-8 text is cut between characters.
            cost = max(1.0, (size - base) / len(kept))
            end = max(0, len(kept) - int((size - DEAD_LETTER_MAX_BYTES) / cost) - 64)
            if letter.encoding == "utf-8":
                end = _char_boundary(kept, end)
            kept = kept[:end]
            letter = build(kept)
            size = len(letter.to_json_bytes())
        return letter

    def raw_value(self) -> bytes:
        """The original value bytes."""
        return _decode(self.value, self.encoding)

    def raw_key(self) -> bytes | None:
        """The original key bytes, if there was a key."""
        return None if self.key is None else _decode(self.key, self.encoding)


def _char_boundary(data: bytes, end: int) -> int:
    """``end``, moved back to the start of the UTF-8 character it falls in. A character
    has at most three continuation bytes: a longer run is not UTF-8 (binary data), and
    ``end`` stays where it is instead of backing off over the whole run."""
    if end <= 0 or end >= len(data):
        return end
    for at in range(end, max(end - 4, -1), -1):
        if data[at] & 0xC0 != 0x80:
            return at
    return end


def _dead_letter_text(
    key: bytes | None, value: bytes
) -> tuple[Literal["utf-8", "base64"], str | None, str]:
    """Key and value as text: UTF-8 when both are, else both base64."""
    try:
        return "utf-8", None if key is None else key.decode(), value.decode()
    except UnicodeDecodeError:
        key_text = None if key is None else base64.b64encode(key).decode("ascii")
        return "base64", key_text, base64.b64encode(value).decode("ascii")


def _decode(text: str, encoding: str) -> bytes:
    return base64.b64decode(text) if encoding == "base64" else text.encode()


# --- parsing ---------------------------------------------------------------------------


class ContractError(Exception):
    """A message that breaks the contract, classified for the dead-letter topic."""

    def __init__(self, kind: DeadLetterKind, field: str | None, message: str) -> None:
        super().__init__(kind, field, message)  # all three in args, so it pickles
        self.kind: DeadLetterKind = kind
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = f" at {self.field}" if self.field else ""
        return f"{self.kind}{where}: {self.message}"

    def to_dead_letter_error(self) -> DeadLetterError:
        return DeadLetterError(kind=self.kind, field=self.field, message=self.message[:2000])


_EVENT_ADAPTER: Final[TypeAdapter[IncidentEvent]] = TypeAdapter(IncidentEvent)

_MESSAGES: Final = {
    "timezone_aware": "timestamp must include a timezone offset",
    "missing": "field required",
    "datetime_from_date_parsing": "not an RFC 3339 timestamp",
    "datetime_parsing": "not an RFC 3339 timestamp",
}


_TIMESTAMP_ADAPTER: TypeAdapter[datetime] = TypeAdapter(Timestamp)


def parse_timestamp(text: str) -> datetime:
    """A timestamp given outside a message (a command's option, say), held to the same
    rules as those in events: RFC 3339 with an offset, years 1900-2099; in UTC. Raises
    ``ValueError`` saying what is wrong."""
    try:
        return _TIMESTAMP_ADAPTER.validate_python(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ValueError(_MESSAGES.get(first["type"], first["msg"])) from None


def parse_incident_event(raw: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> IncidentEvent:
    """Parse one `cdi.incidents` message or raise `ContractError`."""
    data = _checked_bytes(raw, max_bytes)
    try:
        return _EVENT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        raise _classify(exc, data, tagged=True) from None


def parse_decision(raw: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> DdmDecision:
    """Parse one `cdi.ddm-decisions` message or raise `ContractError`."""
    data = _checked_bytes(raw, max_bytes)
    try:
        return DdmDecision.model_validate_json(data)
    except ValidationError as exc:
        raise _classify(exc, data, tagged=False) from None


def _checked_bytes(raw: bytes | str, max_bytes: int) -> bytes:
    if isinstance(raw, str):
        if len(raw) > max_bytes:  # at least one byte per character: no need to encode
            raise _too_large(f"at least {len(raw)}", max_bytes)
        try:
            raw = raw.encode()
        except UnicodeEncodeError as exc:
            raise ContractError("not_json", None, f"not valid UTF-8: {exc.reason}") from None
    if len(raw) > max_bytes:
        raise _too_large(len(raw), max_bytes)
    return raw


def _too_large(size: int | str, max_bytes: int) -> ContractError:
    return ContractError("too_large", None, f"message is {size} bytes, limit {max_bytes}")


def _classify(exc: ValidationError, data: bytes, *, tagged: bool) -> ContractError:
    """Turn a validation failure into the most useful single dead-letter reason.

    Only reached on failure, so it may re-read the document to tell an unknown event
    type or a newer schema version apart from an ordinary schema error.
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if errors[0]["type"] == "json_invalid":
        return ContractError("not_json", None, errors[0]["msg"])
    try:
        doc = pydantic_core.from_json(data)
    except ValueError as err:  # same parser as validation, so not expected
        return ContractError("not_json", None, str(err))
    if not isinstance(doc, dict):
        return ContractError("not_object", None, f"expected a JSON object, got {_json_type(doc)}")
    version = doc.get("schema_version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version != 1:
        value = _short(doc["schema_version"])
        return ContractError(
            "unsupported_schema_version", "schema_version", f"{value} is not supported (1 is)"
        )
    if tagged:
        if "event_type" not in doc:
            return ContractError("schema", "event_type", "field required")
        event_type = doc["event_type"]
        if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
            message = f"{_short(event_type)} is not a known event type"
            return ContractError("unknown_event_type", "event_type", message)
    first = errors[0]
    loc = first["loc"][1:] if tagged else first["loc"]
    message = _MESSAGES.get(first["type"], first["msg"])
    if len(errors) > 1:
        message += f" (first of {len(errors)} errors)"
    return ContractError("schema", ".".join(map(str, loc)) or None, message)


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _short(value: object, limit: int = 64) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
