"""Whatever the decoder accepts, the engine takes without failing.

Streams of fuzzed messages (mostly contract-valid events with awkward values, some
broken) go through the decoder and then `Engine.apply`, with event time moved to odd
moments and DDM decisions in between. The engine may refuse an input only with its
documented `EngineError`; every flag change it emits must be JSON that reads back as
the same change; its stored state must survive the JSON round trip a state store does.

The facts handed to the durable-rules core are checked on the way in: every value a
bool, an int within +-2**53 or a short string without NUL, and every fact accepted by
the evaluator's own guard.
"""

from __future__ import annotations

import math
from contextlib import suppress
from typing import Any, Final

from hypothesis import given
from hypothesis import strategies as st

from cdi_stream.contract import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    ContractError,
    DdmDecision,
    FlagChange,
    parse_decision,
    parse_incident_event,
)
from cdi_stream.engine import Engine, EngineConfig, EngineError
from cdi_stream.offences import load_offences
from cdi_stream.rules.book import RuleBook
from tests.fuzz import strategies as fz
from tests.fuzz.budget import budget
from tests.fuzz.checks import check_changes, check_state, inspected_facts

OFFENCES: Final = load_offences()
END_OF_TIME: Final = LATEST_TIMESTAMP.timestamp() + 400 * 86400


# A step of a fuzzed run: a raw message, a move of event time, or a DDM decision.
Step = tuple[str, Any]

moments = st.one_of(
    st.integers(-86400, 60 * 86400).map(lambda s: fz.T0.timestamp() + s),
    st.sampled_from(
        [
            EARLIEST_TIMESTAMP.timestamp(),
            LATEST_TIMESTAMP.timestamp(),
            END_OF_TIME,
            -1e12,
            0.0,
        ]
    ),
)
steps = st.lists(
    st.one_of(
        fz.events().map(lambda doc: ("message", fz.encode(doc))),
        fz.events().map(lambda doc: ("message", fz.encode(doc))),
        fz.events().map(lambda doc: ("message", fz.encode(doc))),
        fz.messages().map(lambda raw: ("message", raw)),
        st.tuples(st.just("advance"), st.tuples(moments, st.booleans())),
        st.tuples(st.just("decide"), st.tuples(st.integers(0, 50), fz.decisions())),
    ),
    min_size=1,
    max_size=14,
)
configs = st.sampled_from(
    [EngineConfig(), EngineConfig(max_events_per_incident=3), EngineConfig(retention=3600.0)]
)


def run(book: RuleBook, config: EngineConfig, plan: list[Step]) -> Engine:
    engine = Engine(book, config=config, offences=OFFENCES)
    flag_ids: list[str] = []

    def emitted(changes: list[FlagChange]) -> None:
        check_changes(changes)
        flag_ids.extend(c.flag_id for c in changes)

    for kind, arg in plan:
        if kind == "message":
            try:
                event = parse_incident_event(arg)
            except ContractError:
                continue
            with suppress(EngineError):
                emitted(engine.apply(event))
        elif kind == "advance":
            at, inclusive = arg
            emitted(engine.advance_to(at, inclusive=inclusive))
        else:
            index, doc = arg
            if flag_ids:
                doc = {**doc, "flag_id": flag_ids[index % len(flag_ids)]}
            try:
                decision = parse_decision(fz.encode(doc))
            except ContractError:
                continue
            assert isinstance(decision, DdmDecision)
            with suppress(EngineError):
                emitted(engine.decide(decision))
    emitted(engine.advance_to(END_OF_TIME))
    for incident_id in list(engine.store):
        emitted(engine.current_flags(incident_id))
    return engine


@budget(120)
@given(configs, steps)
def test_whatever_parses_goes_through_the_engine(
    book: RuleBook, config: EngineConfig, plan: list[Step]
) -> None:
    with inspected_facts():
        engine = run(book, config, plan)
        check_state(engine)


@budget(60)
@given(st.lists(fz.events(incidents=("INC-1",)), min_size=1, max_size=8))
def test_one_incident_with_awkward_values_keeps_state_and_facts_clean(
    book: RuleBook, docs: list[dict[str, Any]]
) -> None:
    """Everything on one incident, so that the rules see the awkward values together."""
    with inspected_facts() as facts:
        engine = run(book, EngineConfig(), [("message", fz.encode(d)) for d in docs])
        check_state(engine)
    assert all(math.isfinite(v) for f in facts for v in f.values() if isinstance(v, float))


def test_the_last_accepted_instant_leaves_room_for_deadlines_and_retention(
    book: RuleBook,
) -> None:
    """Deadlines, warnings and the retention wake-up of an incident reported at the
    last accepted instant can all be written as timestamps."""
    at = LATEST_TIMESTAMP.isoformat().replace("+00:00", "Z")
    plan: list[Step] = [
        ("message", fz.encode(fz.report(at, event_id="E1"))),
        ("message", fz.encode(fz.closure(at, event_id="E2"))),
    ]
    with inspected_facts() as facts:
        engine = run(book, EngineConfig(retention=3650 * 86400.0), plan)
    assert facts
    assert engine.now == END_OF_TIME


def test_first_accepted_instant_goes_through_the_engine(book: RuleBook) -> None:
    at = EARLIEST_TIMESTAMP.isoformat().replace("+00:00", "Z")
    engine = run(book, EngineConfig(), [("message", fz.encode(fz.report(at)))])
    check_state(engine)
