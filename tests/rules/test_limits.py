"""Static checks on rule dicts: every shape that hangs, loops, crashes or fails in the core.

None of the rejected shapes is ever compiled here: several of them hang the process.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from cdi_stream.rules.errors import RuleProblem, RuleValidationError
from cdi_stream.rules.limits import (
    MAX_ALPHA_STACK,
    MAX_CONDITIONS_PER_NODE,
    MAX_RULES,
    MAX_RULES_PER_CONDITION,
    RESERVED_HASHES,
    check_durable_rules,
    field_hash,
    format_float,
    inspect_rules,
    to_engine_json,
)

Rules = dict[str, dict[str, Any]]

# Found by search: distinct names with one FNV-1a hash, and names hashing like the core's.
COLLIDING_PAIR = ("bgjpjidz", "yprixkjc")
HASHES_LIKE_ID = "jg_uvnv"
HASHES_LIKE_SID = "phjrejs"
HASHES_LIKE_AND = "phvdmvd"


def rule(cond: Any, **extra: Any) -> dict[str, Any]:
    return {"all": [{"m": cond}], **extra}


def anchored(*conds: Any) -> dict[str, Any]:
    return {"$and": [{"scope": "subject"}, *conds]}


def problems_of(rules: Any) -> list[str]:
    found = check_durable_rules(rules)
    assert all(isinstance(p, str) for p in found)
    return found


# -- valid rules ---------------------------------------------------------------------


VALID: dict[str, Rules] = {
    "warning example": {
        "warn": {
            "all": [
                {
                    "m": {
                        "$and": [
                            {"scope": "subject"},
                            {"covered": False},
                            {"$or": [{"phase": "warn_12"}, {"phase": "warn_20"}]},
                        ]
                    }
                }
            ],
            "pri": 1,
        }
    },
    "plain equality": {"r": rule({"scope": "subject"})},
    "every operator": {
        "r": rule(
            anchored(
                {"$neq": {"a": 1}},
                {"$lt": {"b": 2.5}},
                {"$lte": {"b": 3}},
                {"$gt": {"c": -1}},
                {"$gte": {"c": 0}},
                {"$mt": {"label": "[a-z]+[.][0-9]*"}},
                {"$ex": {"d": 1}},
                {"$nex": {"e": 1}},
            )
        )
    },
    "or with every branch anchored": {"r": rule({"$or": [{"a": 1}, {"$and": [{"b": 2}]}]})},
    "any rule": {"r": {"any": [{"a": {"scope": "x"}}, {"b": {"scope": "y"}}], "pri": 3}},
    "16 patterns": {"r": {"any": [{f"p{i}": {"k": i}} for i in range(16)]}},
    "text with quotes": {"r": rule({"name": 'O"Brien \\ new\nline é'})},
    "tiny and huge floats": {"r": rule(anchored({"$gt": {"x": 1e-05}}, {"$lt": {"x": 1e16}}))},
    "64-bit ints": {"r": rule(anchored({"$gt": {"x": -(2**63)}}, {"$lt": {"x": 2**63 - 1}}))},
    "500 values of one field": {f"r{i}": rule({"k": i}) for i in range(MAX_CONDITIONS_PER_NODE)},
    "250 rules on one condition": {
        f"r{i}": rule({"k": "a"}) for i in range(MAX_RULES_PER_CONDITION)
    },
    "4000 rules": {
        f"r{i}": rule({"$and": [{"a": i % 100}, {"b": i // 100}]}) for i in range(MAX_RULES)
    },
    "60 independent tests after one anchor": {
        f"r{i}": rule(anchored({"$gt": {f"f{i}": 0}})) for i in range(MAX_ALPHA_STACK)
    },
    "pri range": {"lo": rule({"k": 1}, pri=0), "hi": rule({"k": 2}, pri=65535)},
}


def _nested(depth: int) -> dict[str, Any]:
    cond: dict[str, Any] = {"k": 1}
    for i in range(depth):
        cond = {"$and": [cond, {"$gt": {f"f{i}": 0}}]}
    return cond


VALID["nesting 8"] = {"r": rule(_nested(8))}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_rules_pass(name: str) -> None:
    assert problems_of(VALID[name]) == []


# -- rejected rules ------------------------------------------------------------------


def _many(n: int, make: Any) -> Rules:
    return {f"r{i}": make(i) for i in range(n)}


BAD: list[tuple[str, Any, str]] = [
    # Structure the core misreads or cannot use.
    ("not a mapping", [("r", {})], "must be a mapping"),
    ("no rules", {}, "there are no rules"),
    ("rule not a mapping", {"r": 5}, "a rule must be a mapping"),
    ("neither all nor any", {"r": {"pri": 1}}, "exactly one of 'all' or 'any'"),
    ("both all and any", {"r": {**rule({"k": 1}), "any": [{"m": {"k": 2}}]}}, "exactly one"),
    ("count setting", {"r": rule({"k": 1}, count=2)}, "unsupported rule keys"),
    ("pri negative", {"r": rule({"k": 1}, pri=-1)}, "pri must be an integer"),
    ("pri too large", {"r": rule({"k": 1}, pri=70000)}, "pri must be an integer"),
    ("pri bool", {"r": rule({"k": 1}, pri=True)}, "pri must be an integer"),
    ("empty all", {"r": {"all": []}}, "non-empty list of patterns"),
    ("all with two patterns", {"r": {"all": [{"a": {"k": 1}}, {"b": {"k": 2}}]}}, "never match"),
    ("17 patterns", {"r": {"any": [{f"p{i}": {"k": i}} for i in range(17)]}}, "17 patterns"),
    ("pattern with two aliases", {"r": {"all": [{"a": {"k": 1}, "b": {"k": 2}}]}}, "one-key"),
    ("alias with $", {"r": {"all": [{"m$any": {"k": 1}}]}}, "alias"),
    ("empty rule name", {"": rule({"k": 1})}, "rule name"),
    ("control char in rule name", {"a\nb": rule({"k": 1})}, "control characters"),
    ("two keys in one condition", {"r": rule({"k": 1, "j": 2})}, "exactly one key"),
    ("two fields in one test", {"r": rule(anchored({"$gt": {"a": 1, "b": 2}}))}, "one-field"),
    ("empty $and", {"r": rule({"$and": []})}, "non-empty list"),
    ("$or not a list", {"r": rule({"$or": {"k": 1}})}, "non-empty list"),
    # Operators.
    ("$eq", {"r": rule(anchored({"$eq": {"a": 1}}))}, "unknown operator '$eq'"),
    ("$imt", {"r": rule(anchored({"$imt": {"a": "x"}}))}, "unknown operator"),
    ("$iall", {"r": rule(anchored({"$iall": {"a": {"$i": 1}}}))}, "unknown operator"),
    ("$add", {"r": rule(anchored({"$add": {"$l": 1, "$r": 2}}))}, "unknown operator"),
    ("$not", {"r": rule(anchored({"$not": {"a": 1}}))}, "unknown operator"),
    ("reference to another pattern", {"r": rule(anchored({"$gt": {"a": {"m": "b"}}}))}, "not text"),
    ("null value", {"r": rule(anchored({"a": None}))}, "not text, a number"),
    ("list value", {"r": rule(anchored({"a": [1, 2]}))}, "not text, a number"),
    # The session's state fact.
    ("field id", {"r": rule({"id": "x"})}, "message/session id"),
    ("field sid", {"r": rule(anchored({"$neq": {"sid": "0"}}))}, "message/session id"),
    ("field $s", {"r": rule({"$s": 1})}, "unknown operator '$s'"),
    ("$nex only", {"r": rule({"$nex": {"running": 1}})}, "no equality"),
    ("$neq only", {"r": rule({"$neq": {"a": 1}})}, "no equality"),
    ("ordering only", {"r": rule({"$and": [{"$gt": {"a": 1}}, {"$lt": {"a": 5}}]})}, "anchor"),
    ("an unanchored $or branch", {"r": rule({"$or": [{"a": 1}, {"$gt": {"b": 1}}]})}, "anchor"),
    # Names the core confuses.
    ("upper-case field", {"r": rule({"Scope": 1})}, "must match"),
    ("dotted field", {"r": rule({"case.victims": 2})}, "flat names only"),
    ("long field", {"r": rule({"f" * 65: 1})}, "longer than 64"),
    ("field hashing like id", {"r": rule({HASHES_LIKE_ID: 1})}, "hashes like 'id'"),
    ("field hashing like sid", {"r": rule({HASHES_LIKE_SID: 1})}, "hashes like 'sid'"),
    ("field hashing like $and", {"r": rule({HASHES_LIKE_AND: 1})}, "hashes like '$and'"),
    (
        "two fields with one hash",
        {"r": rule({"$and": [{COLLIDING_PAIR[0]: 1}, {COLLIDING_PAIR[1]: 2}]})},
        "same hash",
    ),
    # Values the parser cannot take.
    ("infinity", {"r": rule(anchored({"$lt": {"x": math.inf}}))}, "cannot be written"),
    ("nan", {"r": rule(anchored({"x": math.nan}))}, "cannot be written"),
    ("int above 64 bits", {"r": rule({"x": 2**63})}, "64 bits"),
    ("int below 64 bits", {"r": rule({"x": -(2**63) - 1})}, "64 bits"),
    ("mixed kinds", {"a": rule({"x": "5"}), "b": rule({"x": 5})}, "more than one kind"),
    ("bool and number", {"a": rule({"x": True}), "b": rule(anchored({"$gt": {"x": 0}}))}, "kind"),
    # Regexes.
    ("regex backslash", {"r": rule(anchored({"$mt": {"s": "a\\.b"}}))}, "backslash"),
    ("regex quote", {"r": rule(anchored({"$mt": {"s": 'a"b'}}))}, "backslash, quote"),
    ("regex not ASCII", {"r": rule(anchored({"$mt": {"s": "é+"}}))}, "not ASCII"),
    ("regex not text", {"r": rule(anchored({"$mt": {"s": 5}}))}, "$mt needs a regex"),
    (
        "text order with a space",
        {"r": rule(anchored({"$lt": {"at": "2024-01-01 10:00"}}))},
        "unreliable",
    ),
    ("text order with !", {"r": rule(anchored({"$gte": {"s": "ab!"}}))}, "unreliable"),
    ("text order with a quote", {"r": rule(anchored({"$gt": {"s": 'a"'}}))}, "unreliable"),
    # Sizes: hang, crash, out-of-bounds write, run-time and compile-time errors.
    ("501 values of one field: hang", _many(501, lambda i: rule({"k": i})), "hangs at 512"),
    (
        "501 fields after one anchor: hang",
        _many(501, lambda i: rule(anchored({f"f{i}": 1}))),
        "hangs at 512",
    ),
    ("4001 rules", _many(4001, lambda i: rule({"$and": [{"a": i % 100}, {"b": i}]})), "4001 rules"),
    ("251 rules on one condition: segfault", _many(251, lambda i: rule({"k": "a"})), "crashes"),
    (
        "121 $nex after one node: overflow",
        _many(121, lambda i: rule(anchored({"$nex": {f"g{i}": 1}}))),
        "overflows at 129",
    ),
    (
        "121 $or exits from one node: overflow",
        _many(121, lambda i: rule({"$or": [{"k": "a"}, {"j": i}]})),
        "overflows at 129",
    ),
    (
        "61 tests one fact can match at once: error 303",
        _many(61, lambda i: rule(anchored({"$gt": {f"f{i}": 0}}))),
        "error 303",
    ),
    ("nesting 9", {"r": rule(_nested(9))}, "nested deeper than 8"),
    (
        "16 groups in one pattern: error 113",
        {"r": rule({"$and": [{"k": 1}] + [{"$or": [{f"f{i}": 1}]} for i in range(15)]})},
        "16 $and/$or groups",
    ),
    (
        "33 conditions in one pattern",
        {"r": rule({"$and": [{"k": 1}] + [{"$gt": {f"f{i}": 0}} for i in range(32)]})},
        "33 conditions",
    ),
]


@pytest.mark.parametrize(
    ("rules", "expected"), [(r, e) for _, r, e in BAD], ids=[n for n, _, _ in BAD]
)
def test_rejected(rules: Any, expected: str) -> None:
    found = problems_of(rules)
    assert any(expected in p for p in found), found


def test_problems_name_the_rule() -> None:
    profile = inspect_rules({"good": rule({"k": 1}), "bad": rule({"$nex": {"k": 1}})})
    assert [p.rule_id for p in profile.problems] == ["bad"]
    assert str(profile.problems[0]).startswith("bad: ")


def test_network_problems_describe_the_path() -> None:
    found = problems_of(_many(251, lambda i: rule(anchored({"phase": "due"}))))
    assert any("scope == 'subject' -> phase == 'due'" in p for p in found), found


def test_mutually_exclusive_equalities_do_not_count_towards_the_stack() -> None:
    # 400 rules on distinct values of one field: one fact matches at most one of them.
    profile = inspect_rules(_many(400, lambda i: rule(anchored({"code": f"c{i}"}))))
    assert profile.problems == ()
    assert profile.alpha_stack == 1


def test_profile_reports_field_kinds_and_text_fields() -> None:
    profile = inspect_rules(
        {
            "r": rule(
                anchored(
                    {"covered": False},
                    {"$gt": {"age": 17}},
                    {"$mt": {"label": "[a-z]+"}},
                    {"$lt": {"day": "2024-01-01"}},
                    {"$nex": {"gone": 1}},
                )
            )
        }
    )
    assert profile.field_kinds == {
        "scope": "text",
        "covered": "bool",
        "age": "number",
        "label": "text",
        "day": "text",
    }
    assert profile.text_fields == frozenset({"label", "day"})
    assert profile.fields == frozenset({"scope", "covered", "age", "label", "day", "gone"})


def test_validation_error_carries_every_problem() -> None:
    problems = [RuleProblem("rules/x.yaml", "CNR-1", "bad"), RuleProblem(None, None, "worse")]
    err = RuleValidationError(problems)
    assert err.problems == problems
    assert str(problems[0]) == "rules/x.yaml: CNR-1: bad"
    assert str(problems[1]) == "worse"
    assert "2 problems in the rules" in str(err)
    assert "rules/x.yaml: CNR-1: bad" in str(err)


def test_validation_error_message_is_bounded() -> None:
    err = RuleValidationError(RuleProblem(None, f"R{i}", "bad") for i in range(50))
    assert len(err.problems) == 50
    assert "... and 30 more" in str(err)


# -- hashing and serialisation -------------------------------------------------------


def test_field_hash_matches_the_core() -> None:
    # Constants from the core's source (state.h, rete.c).
    assert field_hash("id") == 926444256
    assert field_hash("sid") == 3593476751
    assert field_hash("$and") == 3746487396
    assert field_hash("$forward") == 739185624
    assert field_hash(COLLIDING_PAIR[0]) == field_hash(COLLIDING_PAIR[1])
    assert RESERVED_HASHES[field_hash(HASHES_LIKE_ID)] == "id"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-05, "0.00001"),
        (1.5e-07, "0.00000015"),
        (1e16, "10000000000000000.0"),
        (-2.5e20, "-250000000000000000000.0"),
        (0.1, "0.1"),
        (-0.0, "-0.0"),
        (3.0, "3.0"),
    ],
)
def test_format_float_has_no_exponent_and_round_trips(value: float, text: str) -> None:
    assert format_float(value) == text
    assert float(text) == value


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_format_float_refuses_non_finite(value: float) -> None:
    with pytest.raises(ValueError):
        format_float(value)


def test_to_engine_json_is_json() -> None:
    rules = {"r": rule(anchored({"name": 'a"b\\c\né'}, {"$gt": {"x": 1e-05}}, {"ok": True}))}
    text = to_engine_json(rules)
    assert json.loads(text) == rules
    assert "e-05" not in text
    assert "é" in text  # written as UTF-8, as facts are


def test_to_engine_json_refuses_other_types() -> None:
    with pytest.raises(ValueError):
        to_engine_json({"a": None})
