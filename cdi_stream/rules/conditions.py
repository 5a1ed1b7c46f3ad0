"""The condition language of rule files, checked and compiled to durable-rules patterns.

A condition is a YAML mapping. ``all``/``any`` take a list of conditions; any other key
names a fact, whose value is either a scalar (equality) or a one-key mapping
``{op: value}`` with ``op`` one of ``eq ne lt lte gt gte in not_in``. Several keys in one
mapping must all hold. The language is deliberately small: it has no negation of a
sub-condition and no references between facts, because the durable-rules core cannot
evaluate those safely; the engine computes comparisons as facts instead.

The same condition can be evaluated in Python (:func:`holds`), which the test suite
uses as an oracle for the compiled form.

Limits, in the author's terms, so that a condition :func:`check` accepts always fits
what the durable-rules core takes (see :mod:`cdi_stream.rules.limits`; the engine adds a
scope test to every condition, which costs one test, one group and one level):

* at most 31 tests, counting each value of an ``in``/``not_in`` list as one test;
* at most 14 groups, where every ``all``, every ``any``, every mapping of several tests
  and every ``in``/``not_in`` list of several values is a group;
* groups nested at most 7 deep, and ``all``/``any`` at most 6 deep;
* at most 32 conditions in one ``all``/``any`` list or keys in one mapping, and 1 to 31
  values in an ``in``/``not_in`` list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdi_stream.rules.catalog import FACTS, FactSpec, Scope
from cdi_stream.rules.limits import (
    MAX_CONDITIONS_PER_PATTERN,
    MAX_GROUPS_PER_PATTERN,
    MAX_NESTING,
)

Condition = Mapping[str, Any]
FactValue = str | int | bool | float

_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in")
_ORDERED = ("lt", "lte", "gt", "gte")
_MAX_DEPTH = 6
_MAX_ITEMS = 32
# The compiled pattern is {"$and": [{"scope": ...}, <condition>]}: what the scope test
# uses is not available to the condition.
_MAX_TESTS = MAX_CONDITIONS_PER_PATTERN - 1
_MAX_GROUPS = MAX_GROUPS_PER_PATTERN - 1
_MAX_LEVELS = MAX_NESTING - 1
_MAX_IN = _MAX_TESTS
_GROUP_NOTE = (
    "every all, any, mapping of several tests and in/not_in list of several values is a group"
)


class ConditionError(ValueError):
    """A condition that does not fit the language or the fact catalogue."""


def check(condition: object, scope: Scope) -> list[str]:
    """Every problem in ``condition`` for ``scope``, as readable sentences."""
    problems: list[str] = []
    _check(condition, scope, problems, "when", 0)
    if not problems and isinstance(condition, Mapping):
        _check_size(compile_condition(condition), problems)
    return problems


def _check_size(pattern: Mapping[str, Any], out: list[str]) -> None:
    """Refuse, in the author's terms, what the core could not take once compiled.

    Measured on the compiled form itself, so the count cannot drift from what
    :func:`compile_condition` produces and the engine's own check then sees.
    """
    tests, groups, levels = _measure(pattern)
    if tests > _MAX_TESTS:
        out.append(
            f"when: {tests} tests; at most {_MAX_TESTS} "
            "(each value of an in/not_in list is one test)"
        )
    if groups > _MAX_GROUPS:
        out.append(f"when: {groups} groups of tests; at most {_MAX_GROUPS} ({_GROUP_NOTE})")
    if levels > _MAX_LEVELS:
        out.append(f"when: groups nested {levels} deep; at most {_MAX_LEVELS} ({_GROUP_NOTE})")


def _measure(pattern: Mapping[str, Any]) -> tuple[int, int, int]:
    """Tests, groups and group nesting of a compiled pattern."""
    key, value = next(iter(pattern.items()))
    if key not in ("$and", "$or"):
        return 1, 0, 0
    tests = groups = levels = 0
    for sub in value:
        t, g, n = _measure(sub)
        tests, groups, levels = tests + t, groups + g, max(levels, n)
    return tests, groups + 1, levels + 1


def _check(cond: object, scope: Scope, out: list[str], where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        out.append(f"{where}: nested deeper than {_MAX_DEPTH} levels")
        return
    if not isinstance(cond, Mapping) or not cond:
        out.append(f"{where}: a condition must be a non-empty mapping")
        return
    if len(cond) > _MAX_ITEMS:
        out.append(f"{where}: {len(cond)} keys in one mapping; at most {_MAX_ITEMS}")
        return
    for key, value in cond.items():
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                out.append(f"{where}.{key}: must be a non-empty list of conditions")
                continue
            if len(value) > _MAX_ITEMS:
                out.append(f"{where}.{key}: {len(value)} conditions; at most {_MAX_ITEMS}")
                continue
            for i, sub in enumerate(value):
                _check(sub, scope, out, f"{where}.{key}[{i}]", depth + 1)
            continue
        spec = FACTS[scope].get(str(key))
        if spec is None:
            known = ", ".join(sorted(FACTS[scope]))
            out.append(f"{where}: unknown fact {key!r} for scope {scope!r} (known: {known})")
            continue
        _check_test(spec, value, out, f"{where}.{key}")


def _check_test(spec: FactSpec, value: object, out: list[str], where: str) -> None:
    if isinstance(value, Mapping):
        if len(value) != 1:
            out.append(f"{where}: an operator mapping takes exactly one of {', '.join(_OPS)}")
            return
        op, arg = next(iter(value.items()))
        if op not in _OPS:
            out.append(f"{where}: unknown operator {op!r} (use one of {', '.join(_OPS)})")
            return
        if op in ("in", "not_in"):
            if not isinstance(arg, list) or not arg or len(arg) > _MAX_IN:
                out.append(f"{where}.{op}: must be a list of 1 to {_MAX_IN} values")
                return
            for item in arg:
                _check_value(spec, item, out, f"{where}.{op}")
            return
        if op in _ORDERED and spec.type not in (int, float):
            out.append(f"{where}.{op}: ordering operators need a numeric fact")
            return
        _check_value(spec, arg, out, f"{where}.{op}")
        return
    _check_value(spec, value, out, where)


def _check_value(spec: FactSpec, value: object, out: list[str], where: str) -> None:
    if spec.type is bool:
        if not isinstance(value, bool):
            out.append(f"{where}: {spec.name} is true/false, got {value!r}")
        return
    if spec.type is str:
        if not isinstance(value, str):
            out.append(f"{where}: {spec.name} is text, got {value!r}{_bool_hint(value)}")
        elif spec.values and value not in spec.values:
            out.append(
                f"{where}: {value!r} is not a value of {spec.name} ({', '.join(spec.values)})"
            )
        elif "\\" in value or '"' in value:
            out.append(f"{where}: quotes and backslashes are not allowed in values")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        out.append(f"{where}: {spec.name} is a number, got {value!r}")


def _bool_hint(value: object) -> str:
    if not isinstance(value, bool):
        return ""
    return f"; YAML reads an unquoted yes/no/on/off as {str(value).lower()}: quote the text"


def compile_condition(condition: Condition) -> dict[str, Any]:
    """The durable-rules pattern for a condition that :func:`check` accepted."""
    parts = _compile_parts(condition)
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _compile_parts(cond: Condition) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for key, value in cond.items():
        if key == "all":
            parts.append({"$and": [compile_condition(c) for c in value]})
        elif key == "any":
            parts.append({"$or": [compile_condition(c) for c in value]})
        else:
            parts.append(_compile_test(key, value))
    return parts


def _compile_test(fact: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {fact: value}
    op, arg = next(iter(value.items()))
    if op == "eq":
        return {fact: arg}
    if op == "ne":
        return {"$neq": {fact: arg}}
    if op == "in":
        alternatives: list[dict[str, Any]] = [{fact: v} for v in arg]
        return alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}
    if op == "not_in":
        exclusions: list[dict[str, Any]] = [{"$neq": {fact: v}} for v in arg]
        return exclusions[0] if len(exclusions) == 1 else {"$and": exclusions}
    return {f"${op}": {fact: arg}}


def holds(condition: Condition, fact: Mapping[str, FactValue]) -> bool:
    """Evaluate a checked condition in Python: the reference semantics."""
    for key, value in condition.items():
        if key == "all":
            ok = all(holds(c, fact) for c in value)
        elif key == "any":
            ok = any(holds(c, fact) for c in value)
        else:
            ok = _holds_test(fact.get(key), value)
        if not ok:
            return False
    return True


def _holds_test(actual: FactValue | None, value: Any) -> bool:
    if not isinstance(value, Mapping):
        return _same(actual, value)
    op, arg = next(iter(value.items()))
    if actual is None:
        # As in the durable-rules core: no test on a missing fact holds, not even "ne".
        return False
    if op == "eq":
        return _same(actual, arg)
    if op == "ne":
        return not _same(actual, arg)
    if op == "in":
        return any(_same(actual, v) for v in arg)
    if op == "not_in":
        return not any(_same(actual, v) for v in arg)
    if actual is None or isinstance(actual, bool | str):
        return False
    if op == "lt":
        return bool(actual < arg)
    if op == "lte":
        return bool(actual <= arg)
    if op == "gt":
        return bool(actual > arg)
    return bool(actual >= arg)


def _same(a: object, b: object) -> bool:
    # True == 1 in Python but not in a rule: a boolean fact never equals a number.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b
