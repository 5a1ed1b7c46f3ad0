"""A replay keeps going through malformed input and is not changed by it.

10,000 malformed lines, of every kind a feed produces, are interleaved with a simulated
stream. The replay must apply every valid event exactly as it does without the noise
(byte-identical flag output) and report every bad line, by number, with a dead-letter
kind and a message.
"""

from __future__ import annotations

import json
import random
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Final

from cdi_stream.contract import DEFAULT_MAX_BYTES, DeadLetterKind
from cdi_stream.replay import LineError, ReplaySummary, replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.simulate import SimConfig, encode_event, generate

BAD_LINES: Final = 10_000
KINDS: Final = frozenset(typing.get_args(DeadLetterKind))
REQUIRED: Final = ("schema_version", "event_id", "event_type", "incident_id", "occurred_at")

# One way of breaking a valid line: the broken line and the kind it must be reported as
# (None: any dead-letter kind, for random bytes).
Breaker = Callable[[random.Random, bytes], tuple[bytes, str | None]]


def _edit(line: bytes, **changes: object) -> bytes:
    doc = json.loads(line)
    doc.update(changes)
    return json.dumps(doc).encode()


def garbage(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    raw = bytes(rng.choice([b for b in range(256) if b != 0x0A]) for _ in range(rng.randint(1, 80)))
    return b"#" + raw, None  # never blank, never a line break


def truncated(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    return line[: rng.randint(1, len(line) - 1)], "not_json"


def invalid_utf8(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    at = line.index(b'"event_id":"') + len(b'"event_id":"')
    bad = rng.choice([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"])
    return line[:at] + bad + line[at:], "not_json"


def bom(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    return b"\xef\xbb\xbf" + line, "not_json"


def not_object(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    return rng.choice([b"[" + line + b"]", b"null", b"42", b'"an event"', b"true"]), "not_object"


def newer_schema(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    version = rng.choice([2, 0, "1", None, 1.5, True, 2**70])
    # Another whole number is a version this worker does not know; anything else is a
    # malformed field.
    newer = isinstance(version, int) and not isinstance(version, bool)
    return _edit(line, schema_version=version), (
        "unsupported_schema_version" if newer else "schema"
    )


def unknown_type(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    event_type = rng.choice(["incident.deleted", "INCIDENT.REPORTED", "", 7, None])
    return _edit(line, event_type=event_type), "unknown_event_type"


def missing_field(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    doc = json.loads(line)
    del doc[rng.choice(REQUIRED[1:])]
    return json.dumps(doc).encode(), "schema"


def bad_time(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    at = rng.choice(
        [
            "2026-01-05T08:00:00",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00+01:00",
            "2026-02-30T00:00:00Z",
            1767600000,
        ]
    )
    return _edit(line, occurred_at=at), "schema"


def bad_value(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    token = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e-05", str(2**70).encode()])
    return line.replace(b'"incident_id":', b'"incident_id":' + token + b',"x":', 1), "schema"


def nested(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    depth = rng.choice([300, 5_000])
    return b"[" * depth + b"]" * depth, "not_json"


def too_large(rng: random.Random, line: bytes) -> tuple[bytes, str | None]:
    return _edit(line, padding="x" * DEFAULT_MAX_BYTES), "too_large"


BREAKERS: Final[list[tuple[Breaker, int]]] = [
    (garbage, 20),
    (truncated, 20),
    (invalid_utf8, 10),
    (bom, 5),
    (not_object, 5),
    (newer_schema, 5),
    (unknown_type, 5),
    (missing_field, 10),
    (bad_time, 10),
    (bad_value, 5),
    (nested, 2),
]


def run(book: RuleBook, path: Path) -> tuple[ReplaySummary, bytes, list[LineError]]:
    errors: list[LineError] = []
    out = path.with_suffix(".flags")
    with path.open("rb") as lines, out.open("wb") as sink:
        summary = replay(lines, book, out=sink, on_error=errors.append)
    return summary, out.read_bytes(), errors


def test_malformed_lines_neither_stop_nor_change_a_replay(book: RuleBook, tmp_path: Path) -> None:
    rng = random.Random(20260105)
    valid = [encode_event(event) for event, _ in generate(SimConfig(seed=5, incidents=1000))]
    breakers = [b for b, _ in BREAKERS]
    weights = [w for _, w in BREAKERS]
    bad: list[tuple[bytes, str | None]] = [too_large(rng, valid[i]) for i in range(3)]
    while len(bad) < BAD_LINES:
        breaker = rng.choices(breakers, weights)[0]
        bad.append(breaker(rng, rng.choice(valid)))
    rng.shuffle(bad)

    # Each bad line goes after a random valid one; the valid lines keep their order.
    # Never before the first valid line: a byte order mark that starts the file is the
    # file's encoding mark, skipped, not a bad line (tested with the command line).
    after = sorted(rng.randrange(1, len(valid) + 1) for _ in bad)
    mixed: list[bytes] = []
    expected: dict[int, str | None] = {}
    queue = iter(zip(after, bad, strict=True))
    pending = next(queue, None)
    for i in range(len(valid) + 1):
        while pending is not None and pending[0] == i:
            mixed.append(pending[1][0])
            expected[len(mixed)] = pending[1][1]
            pending = next(queue, None)
        if i < len(valid):
            mixed.append(valid[i])
    assert len(expected) == BAD_LINES
    assert all(b"\n" not in line and line.strip() for line in mixed)

    clean_file, noisy_file = tmp_path / "clean.jsonl", tmp_path / "noisy.jsonl"
    clean_file.write_bytes(b"\n".join(valid) + b"\n")
    noisy_file.write_bytes(b"\n".join(mixed) + b"\n")

    clean, clean_flags, clean_errors = run(book, clean_file)
    noisy, noisy_flags, noisy_errors = run(book, noisy_file)

    assert clean_errors == [] and clean.rejected == 0
    assert clean.events == len(valid) - clean.duplicates
    assert clean.flag_changes > 100
    assert noisy_flags == clean_flags
    assert (noisy.events, noisy.duplicates, noisy.flag_changes) == (
        clean.events,
        clean.duplicates,
        clean.flag_changes,
    )
    assert noisy.final_status == clean.final_status
    assert noisy.lines == len(mixed)
    assert noisy.rejected == BAD_LINES

    reported = {e.line: e for e in noisy_errors}
    assert len(noisy_errors) == len(reported) == BAD_LINES
    assert reported.keys() == expected.keys()
    wrong = {
        n: (str(e), expected[n])
        for n, e in reported.items()
        if e.kind not in KINDS or not e.message or expected[n] not in (None, e.kind)
    }
    assert wrong == {}
    assert {e.kind for e in noisy_errors} >= {
        "not_json",
        "not_object",
        "schema",
        "too_large",
        "unknown_event_type",
        "unsupported_schema_version",
    }
