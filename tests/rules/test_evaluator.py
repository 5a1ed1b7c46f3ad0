"""The evaluator against the real C core: semantics, isolation between calls, recovery."""

from __future__ import annotations

import enum
import gc
import json
import math
import random
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import durable_rules_engine as core
import pytest

from cdi_stream.rules import evaluator as evaluator_module
from cdi_stream.rules.errors import (
    RuleCompileError,
    RuleEvaluationError,
    RulesError,
    RuleValidationError,
)
from cdi_stream.rules.evaluator import (
    MAX_FACT_PROPERTIES,
    FactValue,
    RuleEvaluator,
    clean_fact,
)
from cdi_stream.rules.limits import RulesProfile
from cdi_stream.runtime import resident_set_bytes

Rules = dict[str, dict[str, Any]]
Make = Callable[[Rules], RuleEvaluator]

COLLIDING_PAIR = ("bgjpjidz", "yprixkjc")  # one FNV-1a hash
HASHES_LIKE_ID = "jg_uvnv"


def rule(cond: Any, **extra: Any) -> dict[str, Any]:
    return {"all": [{"m": cond}], **extra}


def anchored(*conds: Any) -> dict[str, Any]:
    return {"$and": [{"scope": "s"}, *conds]}


@pytest.fixture
def make() -> Iterator[Make]:
    made: list[RuleEvaluator] = []

    def _make(rules: Rules) -> RuleEvaluator:
        made.append(RuleEvaluator("test", rules))
        return made[-1]

    yield _make
    for ev in made:
        ev.close()


def stored_facts(ev: RuleEvaluator) -> str:
    return str(core.get_facts(ev._handle, "0"))


# -- matching semantics --------------------------------------------------------------


def test_equality_and_no_match(make: Make) -> None:
    ev = make({"r": rule(anchored({"phase": "warn_12"}))})
    assert ev.match({"scope": "s", "phase": "warn_12"}) == ("r",)
    assert ev.match({"scope": "s", "phase": "warn_20"}) == ()
    assert ev.match({"scope": "other", "phase": "warn_12"}) == ()
    assert ev.match({"unrelated": 1}) == ()
    assert ev.match({}) == ()


def test_warning_example(make: Make) -> None:
    cond = {
        "$and": [
            {"scope": "subject"},
            {"covered": False},
            {"$or": [{"phase": "warn_12"}, {"phase": "warn_20"}]},
        ]
    }
    ev = make({"warn": {"all": [{"m": cond}], "pri": 1}})
    assert ev.match({"scope": "subject", "covered": False, "phase": "warn_20"}) == ("warn",)
    assert ev.match({"scope": "subject", "covered": True, "phase": "warn_20"}) == ()
    assert ev.match({"scope": "subject", "phase": "warn_20"}) == ()


def test_neq_is_false_on_a_missing_key(make: Make) -> None:
    ev = make({"r": rule(anchored({"$neq": {"x": 5}}))})
    assert ev.match({"scope": "s", "x": 6}) == ("r",)
    assert ev.match({"scope": "s", "x": 5}) == ()
    assert ev.match({"scope": "s", "x": 5.0}) == ()
    assert ev.match({"scope": "s"}) == ()  # unlike Python's fact.get("x") != 5


def test_nex_matches_only_a_missing_key(make: Make) -> None:
    ev = make({"r": rule(anchored({"$nex": {"x": 1}})), "e": rule(anchored({"$ex": {"x": 1}}))})
    assert ev.match({"scope": "s"}) == ("r",)
    assert ev.match({"scope": "s", "x": 0}) == ("e",)


@pytest.mark.parametrize(
    ("op", "bound", "value", "expected"),
    [
        ("$lt", 10, 9, True),
        ("$lt", 10, 10, False),
        ("$lt", 10, 9.99, True),
        ("$lte", 10, 10, True),
        ("$lte", 10, 10.01, False),
        ("$gt", 10, 11, True),
        ("$gt", 10, 10, False),
        ("$gt", 2.5, 2.51, True),
        ("$gt", 2.5, 2, False),
        ("$gte", 2.5, 2.5, True),
        ("$gte", -1, -1.5, False),
        ("$gt", 0.00001, 0.00002, True),
        ("$gt", 0.00001, 0.000001, False),
        ("$lt", 1e16, 1e15, True),
        ("$lt", 1e16, 1e17, False),
        ("$gt", -(2**63), -(2**63) + 1, True),
        ("$lt", 2**63 - 1, 2**63 - 2, True),
    ],
)
def test_ordering(make: Make, op: str, bound: float, value: float, expected: bool) -> None:
    ev = make({"r": rule(anchored({op: {"x": bound}}))})
    assert ev.match({"scope": "s", "x": value}) == (("r",) if expected else ())
    assert ev.match({"scope": "s"}) == ()


def test_numbers_compare_numerically(make: Make) -> None:
    ev = make({"five": rule(anchored({"x": 5})), "zero": rule(anchored({"x": 0.0}))})
    assert ev.match({"scope": "s", "x": 5.0}) == ("five",)
    assert ev.match({"scope": "s", "x": -0.0}) == ("zero",)
    assert ev.match({"scope": "s", "x": 2**63 - 1}) == ()


def test_or_branches_are_reported_once(make: Make) -> None:
    ev = make({"r": rule(anchored({"$or": [{"a": 1}, {"b": 2}, {"$gt": {"a": 0}}]}))})
    assert ev.match({"scope": "s", "a": 1, "b": 2}) == ("r",)
    assert ev.match({"scope": "s", "b": 2}) == ("r",)


def test_any_rule_is_reported_once(make: Make) -> None:
    ev = make({"r": {"any": [{"m": {"k": "a"}}, {"n": {"j": 1}}, {"o": {"k": "a"}}]}})
    assert ev.match({"k": "a", "j": 1}) == ("r",)


def test_several_rules_in_pri_then_definition_order(make: Make) -> None:
    rules = {
        "z": rule(anchored(), pri=2),
        "y": rule(anchored({"$gt": {"n": 0}}), pri=1),
        "x": rule(anchored({"$or": [{"n": 1}, {"k": "a"}]}), pri=1),
        "w": rule({"scope": "s"}),
        "v": rule({"scope": "other"}),
    }
    ev = make(rules)
    expected = ("w", "y", "x", "z")
    for _ in range(50):
        assert ev.match({"scope": "s", "n": 1, "k": "a"}) == expected
    assert ev.rule_names == ("z", "y", "x", "w", "v")


def test_booleans(make: Make) -> None:
    ev = make(
        {
            "is_true": rule(anchored({"flag": True})),
            "is_false": rule(anchored({"flag": False})),
            "not_true": rule(anchored({"$neq": {"flag": True}})),
            "not_false": rule(anchored({"$neq": {"flag": False}})),
        }
    )
    assert ev.match({"scope": "s", "flag": True}) == ("is_true", "not_false")
    assert ev.match({"scope": "s", "flag": False}) == ("is_false", "not_true")
    assert ev.match({"scope": "s"}) == ()


@pytest.mark.parametrize(
    ("fact", "field"),
    [
        ({"scope": "s", "flag": 1}, "flag"),
        ({"scope": "s", "flag": "true"}, "flag"),
        ({"scope": "s", "n": True}, "n"),
        ({"scope": "s", "n": "5"}, "n"),
        ({"scope": 5}, "scope"),
    ],
)
def test_a_value_of_another_kind_is_refused(make: Make, fact: dict[str, Any], field: str) -> None:
    # The core would compare these loosely: True == 1, True == "true", "5" == 5.
    ev = make({"b": rule(anchored({"flag": True})), "n": rule(anchored({"$gt": {"n": 4}}))})
    handle = ev._handle
    with pytest.raises(RuleEvaluationError, match=f"'{field}'") as info:
        ev.match(fact)
    assert info.value.code is None
    assert ev._handle == handle  # refused before reaching the core: nothing to rebuild
    assert ev.match({"scope": "s", "flag": True}) == ("b",)


TEXTS = [
    "with spaces",
    'O"Brien',
    "back\\slash",
    'mixed \\" both',
    '"',
    "\\",
    "new\nline",
    "tab\there",
    "é ü 中文",
    "it's",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_text_equality_is_exact(make: Make, text: str) -> None:
    ev = make(
        {"eq": rule(anchored({"name": text})), "ne": rule(anchored({"$neq": {"name": text}}))}
    )
    assert ev.match({"scope": "s", "name": text}) == ("eq",)
    assert ev.match({"scope": "s", "name": text + "x"}) == ("ne",)
    assert ev.match({"scope": "s", "name": "x" + text}) == ("ne",)
    if text:
        assert ev.match({"scope": "s", "name": text[:-1]}) == ("ne",)


def test_regex_is_a_full_match(make: Make) -> None:
    ev = make({"r": rule(anchored({"$mt": {"ref": "[a-z]+[.][0-9]+"}}))})
    assert ev.match({"scope": "s", "ref": "abc.12"}) == ("r",)
    assert ev.match({"scope": "s", "ref": "abc.12x"}) == ()
    assert ev.match({"scope": "s", "ref": "abcx12"}) == ()
    assert ev.match({"scope": "s", "ref": "ABC.1"}) == ()
    with pytest.raises(RuleEvaluationError, match="escaped"):
        ev.match({"scope": "s", "ref": 'ab"c.1'})


def test_text_order(make: Make) -> None:
    ev = make({"r": rule(anchored({"$lt": {"day": "2024-01-01"}}))})
    assert ev.match({"scope": "s", "day": "2023-12-31"}) == ("r",)
    assert ev.match({"scope": "s", "day": "2024-01-02"}) == ()
    with pytest.raises(RuleEvaluationError, match="escaped"):
        ev.match({"scope": "s", "day": "2023\n"})


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


def test_enum_values_are_written_as_their_base_values(make: Make) -> None:
    ev = make({"r": rule(anchored({"colour": "red"}, {"size": 3}))})
    assert ev.match({"scope": "s", "colour": Colour.RED, "size": Size.BIG}) == ("r",)


# -- facts ---------------------------------------------------------------------------


def test_clean_fact_writes_what_the_core_parses() -> None:
    fact = {"a": 1.5e-05, "b": 1e16, "c": 'q"\n', "d": True, "e": -(2**63), "f": "é"}
    assert clean_fact(fact) == (
        '"a":0.000015,"b":10000000000000000.0,"c":"q\\"\\n","d":true,'
        '"e":-9223372036854775808,"f":"é"'
    )
    assert clean_fact({}) == ""


BAD_FACTS: list[tuple[str, Any, str]] = [
    ("not a mapping", [("a", 1)], "a fact is a mapping"),
    ("nested", {"case": {"victims": 2}}, "got dict"),
    ("list", {"a": [1]}, "got list"),
    ("none", {"a": None}, "got NoneType"),
    ("nan", {"a": math.nan}, "not a finite number"),
    ("inf", {"a": math.inf}, "not a finite number"),
    ("too big", {"a": 2**63}, "64 bits"),
    ("too small", {"a": -(2**63) - 1}, "64 bits"),
    ("id", {"id": "x"}, "'id'"),
    ("sid", {"sid": "0"}, "'sid'"),
    ("state marker", {"$s": 1}, "'$s'"),
    ("upper case", {"A": 1}, "[a-z_]"),
    ("leading digit", {"1a": 1}, "[a-z_]"),
    ("dotted", {"a.b": 1}, "flat facts only"),
    ("dash", {"a-b": 1}, "[a-z_]"),
    ("empty key", {"": 1}, "[a-z_]"),
    ("int key", {1: 1}, "[a-z_]"),
    ("long key", {"k" * 65: 1}, "at most 64"),
    ("key hashing like id", {HASHES_LIKE_ID: "x"}, "read this key as 'id'"),
    ("lone surrogate", {"a": "\ud800"}, "not valid Unicode"),
    ("long text", {"a": "x" * 65537}, "longer than"),
    ("too many", {f"k{i}": i for i in range(MAX_FACT_PROPERTIES + 1)}, "properties"),
]


@pytest.mark.parametrize(
    ("fact", "message"), [(f, m) for _, f, m in BAD_FACTS], ids=[n for n, _, _ in BAD_FACTS]
)
def test_bad_facts_are_refused(make: Make, fact: Any, message: str) -> None:
    with pytest.raises(RuleEvaluationError, match=re.escape(message)):
        clean_fact(fact)
    ev = make({"r": rule(anchored())})
    with pytest.raises(RuleEvaluationError, match=re.escape(message)):
        ev.match(fact)
    assert ev.match({"scope": "s"}) == ("r",)


def test_200_properties_are_accepted(make: Make) -> None:
    ev = make({"r": rule(anchored({"k198": 198}))})
    fact: dict[str, Any] = {f"k{i}": i for i in range(MAX_FACT_PROPERTIES - 1)}
    assert ev.match({**fact, "scope": "s"}) == ("r",)


def test_a_key_colliding_with_a_rule_field_is_refused(make: Make) -> None:
    # The core finds properties by hash alone: this key would satisfy the rule.
    ev = make({"r": rule(anchored({COLLIDING_PAIR[1]: 1}))})
    with pytest.raises(RuleEvaluationError, match="rule field"):
        ev.match({"scope": "s", COLLIDING_PAIR[0]: 1})
    assert ev.match({"scope": "s", COLLIDING_PAIR[1]: 1}) == ("r",)
    assert clean_fact({COLLIDING_PAIR[0]: 1}) == f'"{COLLIDING_PAIR[0]}":1'
    only_absence = make({"r": rule(anchored({"$nex": {COLLIDING_PAIR[1]: 1}}))})
    with pytest.raises(RuleEvaluationError, match="rule field"):
        only_absence.match({"scope": "s", COLLIDING_PAIR[0]: 1})


# -- isolation between calls ---------------------------------------------------------


TEN_RULES: Rules = {
    f"r{i}": rule(
        {
            "$and": [
                {"kind": f"k{i % 5}"},
                {"$gt": {"amount": i * 10}},
                {"$neq": {"flag": i % 2 == 0}},
            ]
        },
        pri=i % 3,
    )
    for i in range(10)
}


def test_nothing_accumulates_over_100k_calls(make: Make) -> None:
    ev = make(TEN_RULES)
    rng = random.Random(1)
    facts: list[dict[str, FactValue]] = [
        {"kind": f"k{rng.randrange(6)}", "amount": rng.randrange(120), "flag": rng.random() < 0.5}
        for _ in range(1000)
    ]
    matched = sum(len(ev.match(facts[i % 1000])) for i in range(10_000))
    assert matched > 1000
    gc.collect()
    rss_before = resident_set_bytes()
    tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    for i in range(90_000):
        ev.match(facts[i % 1000])
    gc.collect()
    traced_growth = tracemalloc.get_traced_memory()[0] - traced_before
    tracemalloc.stop()
    rss_growth = resident_set_bytes() - rss_before
    assert rss_growth < 3_000_000, rss_growth
    assert traced_growth < 200_000, traced_growth
    assert stored_facts(ev) == "[]"
    assert str(core.get_events(ev._handle, "0")) == "[]"
    # The session holds its state fact only; nothing else was ever written into it.
    assert set(json.loads(core.get_state(ev._handle, "0"))) == {"sid", "id", "$s"}


def test_each_call_sees_only_its_own_fact(make: Make) -> None:
    # If a fact outlived its call, this rule would fire on a later fact missing 'b'.
    ev = make({"any_a": rule(anchored({"$ex": {"a": 1}})), "both": rule(anchored({"b": 1}))})
    assert ev.match({"scope": "s", "a": 1, "b": 1}) == ("any_a", "both")
    assert ev.match({"scope": "s"}) == ()
    assert ev.match({"scope": "s", "b": 1}) == ("both",)
    assert stored_facts(ev) == "[]"


# -- engine errors and rebuilding ----------------------------------------------------


def test_engine_error_then_rebuild(make: Make) -> None:
    ev = make({"r": rule(anchored())})
    assert ev.match({"scope": "s"}) == ("r",)
    handle = ev._handle
    assert handle is not None
    # Past the fact guard: 300 properties is error 302 in the core.
    props = ",".join(f'"k{i}":{i}' for i in range(300))
    with pytest.raises(RuleEvaluationError, match="302") as info:
        ev._evaluate(handle, f'{{"sid":"0","id":"big","scope":"s",{props}}}')
    assert info.value.code == 302
    assert ev._handle is None
    assert ev.match({"scope": "s"}) == ("r",)
    assert ev._handle is not None
    assert stored_facts(ev) == "[]"


def test_ruleset_deleted_behind_its_back(make: Make) -> None:
    ev = make({"r": rule(anchored())})
    core.delete_ruleset(ev._handle)
    with pytest.raises(RuleEvaluationError) as info:
        ev.match({"scope": "s"})
    assert info.value.code == 111  # invalid handle
    assert ev.match({"scope": "s"}) == ("r",)
    assert ev.match({"scope": "t"}) == ()


def test_match_time_engine_error_from_rules_past_the_limits(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 65 tests one fact can satisfy at once overflow the core's 64-entry stack (error
    # 303). Validation refuses such rules, so it is switched off to reach the core.
    monkeypatch.setattr(
        evaluator_module,
        "inspect_rules",
        lambda rules: RulesProfile(
            problems=(), fields=frozenset(), field_kinds={}, text_fields=frozenset(), alpha_stack=0
        ),
    )
    ev = make({f"r{i}": rule(anchored({"$gt": {f"f{i}": 0}})) for i in range(65)})
    wide: dict[str, FactValue] = {"scope": "s", **{f"f{i}": 1 for i in range(65)}}
    with pytest.raises(RuleEvaluationError) as info:
        ev.match(wide)
    assert info.value.code == 303
    assert ev.match({"scope": "s", "f3": 1}) == ("r3",)
    assert stored_facts(ev) == "[]"


def test_a_failed_rebuild_is_retried(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    ev = make({"r": rule(anchored())})
    core.delete_ruleset(ev._handle)
    with pytest.raises(RuleEvaluationError):
        ev.match({"scope": "s"})
    with monkeypatch.context() as patch:

        def refuse(name: str, text: str) -> int:
            raise core.error("Could not create ruleset, error code: 101")

        patch.setattr(core, "create_ruleset", refuse)
        with pytest.raises(RuleEvaluationError, match="could not rebuild") as info:
            ev.match({"scope": "s"})
        assert info.value.code == 101
    assert ev.match({"scope": "s"}) == ("r",)


def test_an_interrupted_call_rebuilds(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    ev = make({"a": rule(anchored({"k": 1})), "b": rule(anchored({"k": 2}))})
    with monkeypatch.context() as patch:

        def interrupted(handle: int, state: int) -> None:
            raise KeyboardInterrupt

        patch.setattr(core, "start_action_for_state", interrupted)
        with pytest.raises(KeyboardInterrupt):
            ev.match({"scope": "s", "k": 1})
    assert ev._handle is None  # the asserted fact and its queued action are dropped with it
    assert ev.match({"scope": "s", "k": 2}) == ("b",)
    assert stored_facts(ev) == "[]"


def test_no_host_layer_and_no_threads() -> None:
    script = (
        "import sys, threading\n"
        "from cdi_stream.rules.evaluator import RuleEvaluator\n"
        "with RuleEvaluator('t', {'r': {'all': [{'m': {'k': 1}}]}}) as ev:\n"
        "    for _ in range(1000): ev.match({'k': 1})\n"
        "host = [m for m in sys.modules if m == 'durable' or m.startswith('durable.')]\n"
        "print(threading.active_count(), host)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split(maxsplit=1) == ["1", "[]\n"]


@pytest.mark.parametrize("name", ["CNR-1", 'say "hi"', "back\\slash", "é", "with space", "a/b:c.d"])
def test_any_rule_name_comes_back_intact(make: Make, name: str) -> None:
    ev = make({name: rule(anchored({"k": 1})), "other": rule(anchored({"k": 1}), pri=1)})
    assert ev.match({"scope": "s", "k": 1}) == (name, "other")


def test_escaped_rule_names_are_not_confused() -> None:
    # One backslash is written as two: the first rule's action must not read as the second.
    with RuleEvaluator("esc", {"a\\": rule({"k": 1}), "a\\\\": rule({"k": 2})}) as ev:
        assert ev.match({"k": 1}) == ("a\\",)
        assert ev.match({"k": 2}) == ("a\\\\",)


def test_rules_the_core_refuses_raise_compile_error() -> None:
    with pytest.raises(RuleCompileError) as info:
        RuleEvaluator("bad", {"r": rule(anchored({"$mt": {"s": "["}}))})
    assert info.value.code == 501


def test_invalid_rules_raise_validation_error() -> None:
    with pytest.raises(RuleValidationError) as info:
        RuleEvaluator("bad", {"ok": rule({"k": 1}), "loops": rule({"$nex": {"k": 1}})})
    assert [p.rule_id for p in info.value.problems] == ["loops"]


def test_name_is_required() -> None:
    with pytest.raises(RulesError):
        RuleEvaluator("", {"r": rule({"k": 1})})


# -- lifecycle -----------------------------------------------------------------------


def test_close_is_idempotent_and_final() -> None:
    ev = RuleEvaluator("c", {"r": rule({"k": 1})})
    assert ev.match({"k": 1}) == ("r",)
    ev.close()
    ev.close()
    with pytest.raises(RulesError, match="closed"):
        ev.match({"k": 1})
    assert "closed" in repr(ev)


def test_context_manager_closes() -> None:
    with RuleEvaluator("c", {"r": rule({"k": 1})}) as ev:
        assert ev.match({"k": 1}) == ("r",)
    with pytest.raises(RulesError):
        ev.match({"k": 1})


def test_many_evaluators_in_one_process() -> None:
    names = set()
    for i in range(50):
        with RuleEvaluator("same-name", {f"r{i}": rule({"k": i})}) as ev:
            names.add(ev._engine_name)
            assert ev.match({"k": i}) == (f"r{i}",)
            assert ev.match({"k": i + 1}) == ()
    assert len(names) == 50
    alive = [
        RuleEvaluator("alive", {f"only{i}": rule({"k": i}), "all": rule({"j": 1})})
        for i in range(5)
    ]
    try:
        assert len({ev._engine_name for ev in alive} | names) == 55
        for _ in range(100):
            for i, ev in enumerate(alive):
                assert ev.match({"k": i, "j": 1}) == (f"only{i}", "all")
                assert ev.match({"k": (i + 1) % 5}) == ()
        for ev in alive:
            assert stored_facts(ev) == "[]"
    finally:
        for ev in alive:
            ev.close()


# -- against a Python oracle ---------------------------------------------------------

_TEXTS = ["a", "b", 'q"', "x y", "é"]
_LABELS = ["ab", "abc", "a1", "zz9"]


def _random_condition(rng: random.Random, depth: int) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.35:
        group = rng.choice(["$and", "$or"])
        return {group: [_random_condition(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    field = rng.choice(["t", "n", "b", "label"])
    if field == "t":
        op = rng.choice(["==", "$neq", "$ex", "$nex"])
        value: Any = rng.choice(_TEXTS)
    elif field == "n":
        op = rng.choice(["==", "$neq", "$lt", "$lte", "$gt", "$gte", "$nex"])
        value = rng.choice([0, 1, 2, 1.5, -1, 2.0])
    elif field == "b":
        op = rng.choice(["==", "$neq", "$ex"])
        value = rng.random() < 0.5
    else:
        op = "$mt"
        value = rng.choice(["[a-z]+", "a[a-z0-9]*", "[a-z]+[0-9]"])
    return {field: value} if op == "==" else {op: {field: value}}


def _holds(cond: Mapping[str, Any], fact: Mapping[str, Any]) -> bool:
    key, value = next(iter(cond.items()))
    if key == "$and":
        return all(_holds(c, fact) for c in value)
    if key == "$or":
        return any(_holds(c, fact) for c in value)
    if key in ("$neq", "$lt", "$lte", "$gt", "$gte", "$ex", "$nex", "$mt"):
        field, operand = next(iter(value.items()))
        if key == "$nex":
            return field not in fact
        if field not in fact:
            return False
        actual = fact[field]
        if key == "$ex":
            return True
        if key == "$mt":
            return re.fullmatch(operand, actual) is not None
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "$neq": lambda a, b: a != b,
            "$lt": lambda a, b: a < b,
            "$lte": lambda a, b: a <= b,
            "$gt": lambda a, b: a > b,
            "$gte": lambda a, b: a >= b,
        }
        return compare[key](actual, operand)
    return key in fact and fact[key] == value


def _random_fact(rng: random.Random) -> dict[str, Any]:
    fact: dict[str, Any] = {"scope": rng.choice(["s", "s", "s", "other"])}
    if rng.random() < 0.8:
        fact["t"] = rng.choice(_TEXTS)
    if rng.random() < 0.8:
        fact["n"] = rng.choice([0, 1, 2, 1.5, -1, 3, 2.0, 0.5])
    if rng.random() < 0.8:
        fact["b"] = rng.random() < 0.5
    if rng.random() < 0.8:
        fact["label"] = rng.choice(_LABELS)
    return fact


def test_matches_a_python_oracle_on_random_rules(make: Make) -> None:
    rng = random.Random(20240501)
    checked = matched = 0
    for _ in range(40):
        rules: Rules = {
            f"r{i}": rule(anchored(_random_condition(rng, 0)), pri=rng.randint(0, 3))
            for i in range(rng.randint(1, 8))
        }
        ev = make(rules)
        order = {name: (body["pri"], i) for i, (name, body) in enumerate(rules.items())}
        for _ in range(150):
            fact = _random_fact(rng)
            expected = sorted(
                (name for name, body in rules.items() if _holds(body["all"][0]["m"], fact)),
                key=order.__getitem__,
            )
            assert ev.match(fact) == tuple(expected), (rules, fact)
            checked += 1
            matched += bool(expected)
        ev.close()
    assert checked == 6000
    assert matched > 1000
