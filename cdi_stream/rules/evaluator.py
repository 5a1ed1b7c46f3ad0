"""Which rules match a fact: a thin, defensive wrapper around the durable-rules C core.

The core (``durable_rules_engine``) is driven directly, never through its Python host
layer, which starts timer threads, swallows exceptions and cannot be stopped. Each
evaluator compiles one ruleset and uses one fixed session (sid ``"0"``). A call asserts
the fact with a fresh message id, drains every action the core queued, and retracts
the fact, so nothing stays in the core between calls. The session's state is never
updated and never deleted (``delete_state`` can crash the core). No timers, no
threads: the extension never releases the GIL, so one thread owns an evaluator, and
each call costs tens of microseconds.

What the core does, measured on 2.0.28 (the tests pin each point):

* Booleans work natively in facts and patterns: ``true`` matches ``true``, ``false``
  matches ``false``, ``false`` does not match a missing key, ``$neq: true`` matches
  ``false`` and the reverse. Across kinds the core compares loosely (``true`` equals
  ``1`` and the text ``"true"``; ``"5"`` equals ``5``; ``"abc" > 4``), so rules may
  compare a field with one kind of value only, and a fact whose value is of another
  kind is refused with :class:`RuleEvaluationError` instead of matching by accident.
* ``$neq`` and the ordering operators are false when the key is missing: only ``$nex``
  matches an absent key. This differs from Python's ``fact.get(k) != v``.
* Text is compared as the JSON the core was given. Patterns and facts go through the
  same encoder, so equality and ``$neq`` are exact for quotes, backslashes, newlines
  and non-ASCII text. ``$mt`` and string ordering see the escaped form (``\\"``), so a
  fact whose value has such characters in a field compared that way is refused. String
  order is by UTF-8 bytes, except that a value that is a prefix of the rule's text sorts
  after it when the next character is a space, ``!`` or anything below ``"``; rules
  with such texts in an ordering are rejected.
* Numbers: ints must fit in 64 bits (the core saturates larger ones) and floats are
  written without exponents (its parser rejects ``1e-05``); int and float compare
  numerically, so ``5 == 5.0``.
* A fact that reaches no complete pattern is not stored (the assert reports "not
  handled") and needs no retraction.
* An ``$or`` pattern or an ``any`` rule fires once per satisfied branch; results are
  de-duplicated and ordered by ``pri``, then definition order.
* Deleting a ruleset does not free its session's memory (measured: 0.2 MB with 10
  rules, 1.3 MB with 100, once the session has seen a fact), and a ruleset the core
  refuses after parsing still holds a handle. Both grow only with reloads and rebuilds.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Mapping
from json.encoder import encode_basestring
from types import TracebackType
from typing import Any, Final

import durable_rules_engine as _core

from cdi_stream.rules.errors import (
    RuleCompileError,
    RuleEvaluationError,
    RulesError,
    RuleValidationError,
)
from cdi_stream.rules.limits import (
    FIELD_NAME,
    INT_MAX,
    INT_MIN,
    JSON_ESCAPED,
    MAX_FIELD_NAME_CHARS,
    MAX_STRING_CHARS,
    RESERVED_HASHES,
    field_hash,
    format_float,
    inspect_rules,
    to_engine_json,
)

FactValue = str | int | bool | float

MAX_FACT_PROPERTIES: Final = 200
_SID: Final = "0"
_NOT_HANDLED: Final = 1
_KEY_CACHE_LIMIT: Final = 4096
_ERROR_CODE = re.compile(r"error code: (\d+)")
_UNUSUAL_FLOAT = re.compile(r"[en]")  # exponent, inf or nan: written the slow way
_instances = itertools.count(1)
_PLAIN_KEYS: set[str] = set()
_NO_KINDS: Mapping[str, str] = {}
_NO_HASHES: Mapping[int, str] = {}


def clean_fact(fact: Mapping[str, object]) -> str:
    """Check a fact and return its JSON members (no braces, sid or id) for the core.

    Only flat ``[a-z_][a-z0-9_]*`` keys (not ``id``/``sid``) with str, int, bool or
    finite float values, at most 200 of them; anything else raises
    :class:`RuleEvaluationError`. The core would otherwise misparse it, saturate it,
    confuse it with its own ids, or fail with an error code mid-evaluation.
    """
    return _encode(fact, _NO_KINDS, frozenset(), _PLAIN_KEYS, _NO_HASHES)


class RuleEvaluator:
    """One compiled ruleset with one session, answering "which rules match this fact".

    Not thread-safe; create, use and close it on one thread. There is no finaliser: the
    garbage collector may run on any thread, so call :meth:`close` (or use ``with``).
    """

    def __init__(self, name: str, rules: Mapping[str, Mapping[str, Any]]) -> None:
        if not isinstance(name, str) or not name:
            raise RulesError(f"an evaluator needs a non-empty name, got {name!r}")
        profile = inspect_rules(rules)
        if profile.problems:
            raise RuleValidationError(profile.problems)
        self.name = name
        self.rule_names: tuple[str, ...] = tuple(rules)
        self._rank = {
            rule: (int(body.get("pri", 0)), index)
            for index, (rule, body) in enumerate(rules.items())
        }
        self._kinds = dict(profile.field_kinds)
        self._text_fields = profile.text_fields
        self._field_hashes = {field_hash(f): f for f in profile.fields}
        self._known_keys = set(profile.fields)
        self._ruleset = to_engine_json(rules)
        self._engine_name = f"{name}#{next(_instances)}"
        self._next_id = 0
        self._closed = False
        self._handle: int | None = self._compile()

    def match(self, fact: Mapping[str, FactValue]) -> tuple[str, ...]:
        """Names of the rules ``fact`` satisfies, each once, by ``pri`` then definition."""
        if self._closed:
            raise RulesError(f"rule evaluator {self.name!r} is closed")
        body = _encode(fact, self._kinds, self._text_fields, self._known_keys, self._field_hashes)
        handle = self._handle
        if handle is None:
            handle = self._rebuild()
        self._next_id += 1
        sep = "," if body else ""
        return self._evaluate(handle, f'{{"sid":"{_SID}","id":"f{self._next_id}"{sep}{body}}}')

    def close(self) -> None:
        """Free the compiled ruleset; later calls to :meth:`match` raise RulesError."""
        self._closed = True
        self._discard()

    def __enter__(self) -> RuleEvaluator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.rule_names)} rules"
        return f"<RuleEvaluator {self.name!r} {state}>"

    # -- the core --------------------------------------------------------------------

    def _compile(self) -> int:
        try:
            handle: int = _core.create_ruleset(self._engine_name, self._ruleset)
        except (_core.error, MemoryError) as exc:
            raise RuleCompileError(
                f"the rules engine refused ruleset {self.name!r}: {exc}", code=_code_of(exc)
            ) from exc
        return handle

    def _rebuild(self) -> int:
        try:
            self._handle = self._compile()
        except RuleCompileError as exc:
            raise RuleEvaluationError(
                f"rule evaluator {self.name!r} could not rebuild its ruleset: {exc}",
                code=exc.code,
            ) from exc
        return self._handle

    def _discard(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            # Already gone or broken: either way the handle is no longer ours.
            with contextlib.suppress(_core.error, MemoryError):
                _core.delete_ruleset(handle)

    def _evaluate(self, handle: int, text: str) -> tuple[str, ...]:
        try:
            code, state = _core.assert_fact(handle, text)
            if code == _NOT_HANDLED:
                return ()
            if code != 0:
                raise _Unexpected(f"assert returned status {code}", code)
            fired: list[str] = []
            started = _core.start_action_for_state(handle, state)
            if started is not None:
                fired.append(self._rule_of(started[1]))
                while (message := _core.complete_and_start_action(handle, state)) is not None:
                    fired.append(self._rule_of(message))
            code, _ = _core.retract_fact(handle, text)
            if code not in (0, _NOT_HANDLED):
                raise _Unexpected(f"retract returned status {code}", code)
        except (_core.error, MemoryError, _Unexpected) as exc:
            self._discard()
            raise RuleEvaluationError(
                f"rule evaluator {self.name!r} failed ({exc}); the ruleset is rebuilt next call",
                code=_code_of(exc),
            ) from exc
        except BaseException:
            # Interrupted between assert and retract (KeyboardInterrupt, say): the fact
            # or its queued actions may still be in the session and would leak into the
            # next answer, so start from a fresh ruleset.
            self._discard()
            raise
        if len(fired) <= 1:
            return tuple(fired)
        return tuple(sorted(set(fired), key=self._rank.__getitem__))

    def _rule_of(self, message: str) -> str:
        """The rule name heading an action message ``{"<rule>":{"m":{...}}}``."""
        name = message[2 : message.find('"', 2)]
        if name in self._rank and "\\" not in name:  # names with escapes take the slow path
            return name
        try:
            name = next(iter(json.loads(message)))
        except (ValueError, StopIteration) as exc:
            raise _Unexpected(f"unreadable action message {message[:80]!r}", None) from exc
        if name not in self._rank:
            raise _Unexpected(f"action for unknown rule {name!r}", None)
        return str(name)


class _Unexpected(Exception):
    """The core answered in a way this wrapper does not expect; treated as an engine error."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


def _code_of(exc: BaseException) -> int | None:
    if isinstance(exc, _Unexpected):
        return exc.code
    if isinstance(exc, MemoryError):
        return 101
    found = _ERROR_CODE.search(str(exc))
    return int(found.group(1)) if found else None


def _refuse(key: object, why: str) -> RuleEvaluationError:
    return RuleEvaluationError(f"fact refused: {key!r}: {why}")


def _admit(key: object, known: set[str], rule_fields: Mapping[int, str]) -> None:
    """Accept a key the core will not confuse with an id, an operator or a rule field."""
    if not isinstance(key, str) or not FIELD_NAME.match(key):
        raise _refuse(key, "keys must match [a-z_][a-z0-9_]* (flat facts only)")
    if len(key) > MAX_FIELD_NAME_CHARS:
        raise _refuse(key, f"keys are at most {MAX_FIELD_NAME_CHARS} characters")
    h = field_hash(key)
    if h in RESERVED_HASHES:
        raise _refuse(key, f"the core would read this key as {RESERVED_HASHES[h]!r}")
    if rule_fields.get(h, key) != key:
        raise _refuse(key, f"the core would read this key as rule field {rule_fields[h]!r}")
    if len(known) < _KEY_CACHE_LIMIT:
        known.add(key)


def _encode(
    fact: Mapping[str, object],
    kinds: Mapping[str, str],
    text_fields: frozenset[str],
    known: set[str],
    rule_fields: Mapping[int, str],
) -> str:
    if not isinstance(fact, Mapping):
        raise RuleEvaluationError(f"fact refused: a fact is a mapping, got {type(fact).__name__}")
    if len(fact) > MAX_FACT_PROPERTIES:
        raise RuleEvaluationError(
            f"fact refused: {len(fact)} properties, at most {MAX_FACT_PROPERTIES}"
        )
    parts: list[str] = []
    for key, value in fact.items():
        if key not in known:
            _admit(key, known, rule_fields)
        # Exact types inline: this loop is most of the wrapper's cost per call.
        if type(value) is str and value.isascii() and len(value) <= MAX_STRING_CHARS:
            kind, text = "text", encode_basestring(value)
        elif type(value) is bool:
            kind, text = "bool", ("true" if value else "false")
        elif type(value) is int and INT_MIN <= value <= INT_MAX:
            kind, text = "number", int.__repr__(value)
        elif type(value) is float and not _UNUSUAL_FLOAT.search(text := float.__repr__(value)):
            kind = "number"
        else:
            kind, text = _encode_value(key, value)
        expected = kinds.get(key)
        if expected is not None and expected != kind:
            raise _refuse(key, f"the rules compare it with {expected} values, got {value!r}")
        if key in text_fields and kind == "text" and JSON_ESCAPED.search(text[1:-1]):
            raise _refuse(
                key,
                "the rules match it by regex or text order, and its value has quotes, "
                "backslashes or control characters the core would see escaped",
            )
        parts.append(f'"{key}":{text}')
    return ",".join(parts)


def _encode_value(key: str, value: object) -> tuple[str, str]:
    """(kind, JSON text) of one fact value; subclasses (enums) are written as their base."""
    if isinstance(value, str):
        text = str.__str__(value)
        if len(text) > MAX_STRING_CHARS:
            raise _refuse(key, f"text longer than {MAX_STRING_CHARS} characters")
        if not text.isascii():
            try:
                text.encode()
            except UnicodeEncodeError as exc:
                raise _refuse(key, "text that is not valid Unicode") from exc
        return "text", encode_basestring(text)
    if value is True:
        return "bool", "true"
    if value is False:
        return "bool", "false"
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise _refuse(key, f"{value} does not fit in 64 bits")
        return "number", int.__repr__(value)
    if isinstance(value, float):
        try:
            return "number", format_float(value)
        except ValueError as exc:
            raise _refuse(key, str(exc)) from exc
    raise _refuse(key, f"values are text, numbers or true/false, got {type(value).__name__}")
