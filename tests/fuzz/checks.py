"""The invariants the fuzz tests check, shared with the atheris harness.

* The decoder is total: a valid model, or a `ContractError` with a dead-letter kind and
  a message, from which a dead letter can be written.
* The engine refuses input only with an `EngineError`; every flag change it emits is
  deterministic JSON that reads back as the same change; its state survives the strict
  JSON round trip a state store does.
* Every fact handed to the durable-rules core holds only bools, ints within +-2**53
  and short strings without NUL, under plain keys, and passes the evaluator's guard.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from cdi_stream.contract import ContractError, DeadLetter, DeadLetterKind, FlagChange
from cdi_stream.engine import Engine
from cdi_stream.engine.state import CaseState
from cdi_stream.rules.book import Edition, Match
from cdi_stream.rules.evaluator import MAX_FACT_PROPERTIES, clean_fact
from cdi_stream.rules.limits import FIELD_NAME, MAX_FIELD_NAME_CHARS, MAX_STRING_CHARS

KINDS: Final = frozenset(typing.get_args(DeadLetterKind))
SAFE_INT: Final = 2**53
MAX_FACT_TEXT: Final = min(MAX_STRING_CHARS, 256)
RECEIVED: Final = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def decode(parse: Callable[[bytes | str], Any], raw: bytes | str) -> Any | None:
    """Parse ``raw``; a refusal must be classified and writable as a dead letter, and a
    parsed model must read back as itself once written. None when refused."""
    try:
        model = parse(raw)
    except ContractError as exc:
        assert exc.kind in KINDS, exc
        assert isinstance(exc.message, str) and exc.message.strip(), exc
        assert exc.field is None or (isinstance(exc.field, str) and exc.field), exc
        error = exc.to_dead_letter_error()
        if isinstance(raw, bytes):
            letter = DeadLetter.from_raw(
                key=b"k",
                value=raw,
                error=error,
                topic="cdi.incidents",
                partition=0,
                offset=0,
                received_at=RECEIVED,
            )
            written = letter.to_json_bytes()
            json.loads(written)
            kept = DeadLetter.model_validate_json(written).raw_value()
            assert kept == raw if not letter.truncated else raw.startswith(kept)
            assert letter.value_bytes == len(raw)
        return None
    again = parse(model.model_dump_json())
    assert again.model_dump() == model.model_dump()
    return model


def check_fact(fact: Mapping[str, object]) -> None:
    """A fact the rules core can take exactly as it is meant."""
    assert isinstance(fact, dict), type(fact)
    assert 0 < len(fact) <= MAX_FACT_PROPERTIES
    for key, value in fact.items():
        assert isinstance(key, str) and FIELD_NAME.match(key), key
        assert len(key) <= MAX_FIELD_NAME_CHARS and key not in ("id", "sid"), key
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            assert -SAFE_INT <= value <= SAFE_INT, (key, value)
        elif isinstance(value, str):
            assert "\x00" not in value, (key, value)
            assert len(value) <= MAX_FACT_TEXT, (key, len(value))
        else:
            raise AssertionError(f"fact value {key}={value!r} is a {type(value).__name__}")
    clean_fact(fact)  # the evaluator's own guard accepts it too


@contextmanager
def inspected_facts() -> Iterator[list[dict[str, Any]]]:
    """Check every fact any edition is asked to match, memoised or not."""
    seen: list[dict[str, Any]] = []
    original = Edition.match

    def match(self: Edition, fact: dict[str, str | int | bool]) -> Match:
        check_fact(fact)
        seen.append(fact)
        return original(self, fact)

    Edition.match = match  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        Edition.match = original  # type: ignore[method-assign]


def check_changes(changes: list[FlagChange]) -> None:
    for change in changes:
        written = change.to_json_bytes()
        doc = json.loads(written)
        assert json.dumps(doc, allow_nan=False)
        assert FlagChange.model_validate_json(written) == change
        assert change.to_json_bytes() == written  # deterministic


def check_state(engine: Engine) -> None:
    """What a state store keeps must be strict JSON and restore an equal case."""
    for incident_id in list(engine.store):
        case = engine.store.get(incident_id)
        assert case is not None
        text = json.dumps(case.to_dict(), allow_nan=False, sort_keys=True)
        assert CaseState.from_dict(json.loads(text)) == case
