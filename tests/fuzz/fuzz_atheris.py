"""Coverage-guided fuzzing of the decoder and the engine with atheris, run by hand.

Not part of the test suite (atheris is optional: it ships Linux x86-64 wheels only).
From the repository root::

    .venv/bin/python -m tests.fuzz.fuzz_atheris --seeds fuzz-corpus
    .venv/bin/python -m tests.fuzz.fuzz_atheris fuzz-corpus -max_total_time=600

``--seeds DIR`` writes a starting corpus (valid events from the simulator and the
hostile inputs of the hypothesis tests) and exits; every other argument goes to
libFuzzer. The first byte of an input picks the target: the incident decoder, the
decision decoder, or the rest of the input as newline-separated messages through one
engine. Any exception other than `ContractError` and `EngineError`, or a broken
invariant from `tests.fuzz.checks`, is reported as a crash with its input saved.
"""

from __future__ import annotations

import contextlib
import random
import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["cdi_stream"]):
    from cdi_stream.contract import ContractError, parse_decision, parse_incident_event
    from cdi_stream.engine import Engine, EngineConfig, EngineError
    from cdi_stream.rules.book import RuleBook

from tests.fuzz.checks import check_changes, check_state, decode, inspected_facts

ROOT = Path(__file__).resolve().parents[2]
BOOK = RuleBook.from_directory(ROOT / "rules")
TARGETS = 3


def run_engine(data: bytes) -> None:
    engine = Engine(BOOK, config=EngineConfig(max_events_per_incident=50))
    with inspected_facts():
        for line in data.split(b"\n")[:64]:
            try:
                event = parse_incident_event(line)
            except ContractError:
                continue
            with contextlib.suppress(EngineError):
                check_changes(engine.apply(event))
        if engine.now is not None:
            check_changes(engine.advance_to(engine.now + 60 * 86400.0))
    check_state(engine)


def one_input(data: bytes) -> None:
    if not data:
        return
    target, body = data[0] % TARGETS, data[1:]
    if target == 0:
        decode(parse_incident_event, body)
    elif target == 1:
        decode(parse_decision, body)
    else:
        run_engine(body)


def write_seeds(directory: Path) -> int:
    from cdi_stream.simulate import SimConfig, encode_event, generate
    from tests.fuzz.test_decoder import VALID
    from tests.fuzz.test_malformed_stream import BREAKERS

    directory.mkdir(parents=True, exist_ok=True)
    valid = [encode_event(e) for e, _ in generate(SimConfig(seed=1, incidents=40))]
    rng = random.Random(1)
    seeds = [bytes([0]) + VALID, bytes([1]) + VALID]
    seeds += [bytes([0]) + line for line in valid[:50]]
    seeds += [bytes([0]) + breaker(rng, rng.choice(valid))[0] for breaker, _ in BREAKERS]
    seeds += [bytes([2]) + b"\n".join(valid[i : i + 12]) for i in range(0, len(valid), 12)]
    for n, seed in enumerate(seeds):
        (directory / f"seed-{n:04d}").write_bytes(seed)
    return len(seeds)


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--seeds":
        print(f"wrote {write_seeds(Path(argv[2]))} seeds to {argv[2]}")
        return
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
