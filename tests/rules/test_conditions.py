"""The compiled form of a condition agrees with its Python reading on every fact."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cdi_stream.rules.catalog import FACTS
from cdi_stream.rules.conditions import check, compile_condition, holds
from cdi_stream.rules.evaluator import RuleEvaluator

SUBJECT = FACTS["subject"]


def value_for(name: str) -> st.SearchStrategy[Any]:
    spec = SUBJECT[name]
    if spec.type is bool:
        return st.booleans()
    return st.sampled_from(spec.values)


def leaf_for(name: str) -> st.SearchStrategy[dict[str, Any]]:
    spec = SUBJECT[name]
    if spec.type is bool:
        return st.booleans().map(lambda v: {name: v})
    plain = st.sampled_from(spec.values).map(lambda v: {name: v})
    ops = st.tuples(st.sampled_from(["eq", "ne"]), st.sampled_from(spec.values)).map(
        lambda t: {name: {t[0]: t[1]}}
    )
    lists = st.tuples(
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(spec.values), min_size=1, max_size=3, unique=True),
    ).map(lambda t: {name: {t[0]: t[1]}})
    return st.one_of(plain, ops, lists)


leaf = st.sampled_from(sorted(SUBJECT)).flatmap(leaf_for)
conditions = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
    ),
    max_leaves=6,
)
facts = st.fixed_dictionaries({name: value_for(name) for name in sorted(SUBJECT)})


@settings(max_examples=60, deadline=None)
@given(condition=conditions, samples=st.lists(facts, min_size=1, max_size=15))
def test_compiled_condition_matches_python_semantics(
    condition: dict[str, Any], samples: list[dict[str, Any]]
) -> None:
    assert check(condition, "subject") == []
    pattern = {"$and": [{"scope": "subject"}, compile_condition(condition)]}
    with RuleEvaluator("cond_prop", {"R": {"all": [{"m": pattern}], "pri": 1}}) as evaluator:
        for sample in samples:
            fact = {"scope": "subject", **sample}
            assert (evaluator.match(fact) == ("R",)) == holds(condition, sample), (
                condition,
                sample,
            )


def test_check_rejects_empty_and_non_mapping() -> None:
    assert check({}, "subject")
    assert check([], "subject")
    assert check({"all": []}, "subject")
    assert check({"any": "x"}, "subject")
