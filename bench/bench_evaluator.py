"""Evaluations per second of RuleEvaluator: 10 rules, 50,000 facts per scenario.

Run: python bench/bench_evaluator.py. Prints figures; asserts nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from cdi_stream.rules.evaluator import FactValue, RuleEvaluator, clean_fact

FACTS = 50_000
PHASES = ("pending", "warn_12", "warn_20", "overdue")


def rules() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(10):
        tests: list[dict[str, Any]] = [{"scope": "subject"}, {"phase": PHASES[i % 4]}]
        if i % 2:
            tests.append({"covered": False})
        if i % 3 == 0:
            tests.append({"$gt": {"hours": 6 * i}})
        if i % 5 == 0:
            tests.append({"$or": [{"rape": True}, {"breach": "due"}]})
        out[f"R{i}"] = {"all": [{"m": {"$and": tests}}], "pri": i % 3}
    return out


def fact(rng: random.Random, phase: str | None = None) -> dict[str, FactValue]:
    return {
        "scope": "subject",
        "phase": phase or rng.choice(PHASES),
        "covered": rng.random() < 0.5,
        "hours": rng.randrange(60) + 0.5,
        "rape": rng.random() < 0.2,
        "breach": rng.choice(("none", "due", "immediate")),
        "incident_id": f"INC-{rng.randrange(10**6):06d}",
        "subject_kind": "victim",
    }


def run(name: str, facts: list[dict[str, FactValue]], step: Callable[[Any], Any]) -> None:
    start = time.perf_counter()
    results = [step(f) for f in facts]
    elapsed = time.perf_counter() - start
    matched = sum(len(r) for r in results if isinstance(r, tuple))
    print(
        f"{name:<34} {len(facts) / elapsed:>9,.0f} /s  "
        f"{elapsed / len(facts) * 1e6:6.1f} us each  {matched / len(facts):.2f} matches/fact"
    )


def main() -> None:
    rng = random.Random(42)
    mixed = [fact(rng) for _ in range(FACTS)]
    none = [{**f, "scope": "victim"} for f in mixed]
    busy = [
        {**fact(rng, "warn_12"), "covered": False, "rape": True, "hours": 59.5}
        for _ in range(FACTS)
    ]
    with RuleEvaluator("bench", rules()) as ev:
        ev.match(mixed[0])
        run("mixed facts (10 rules)", mixed, ev.match)
        run("facts matching nothing", none, ev.match)
        run("facts matching several rules", busy, ev.match)
        run("clean_fact alone (no core call)", mixed, clean_fact)


if __name__ == "__main__":
    main()
