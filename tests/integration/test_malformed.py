"""Ten thousand malformed messages among a valid stream, through a real worker."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from cdi_stream.rules.book import RuleBook
from tests.integration.test_stream import converged, replayed, simulated
from tests.integration.workers import (
    Topics,
    events_as_messages,
    open_view,
    prepare,
    publish,
    read_all,
    running,
    wait_for,
)

BAD = 10_000


def malformed(rng: random.Random, valid: dict[str, object], i: int) -> tuple[bytes, str]:
    """One bad message and the dead-letter kind it must get."""
    choice = i % 8
    if choice == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))) + b"\xff", "not_json"
    if choice == 1:
        text = json.dumps(valid)
        return text[: rng.randint(1, len(text) - 1)].encode(), "not_json"
    if choice == 2:
        return json.dumps([valid]).encode(), "not_object"
    if choice == 3:
        return json.dumps({**valid, "event_type": f"incident.x{i}"}).encode(), "unknown_event_type"
    if choice == 4:
        return json.dumps({**valid, "occurred_at": "2026-01-05T08:00:00"}).encode(), "schema"
    if choice == 5:
        return json.dumps({**valid, "victims": "nobody"}).encode(), "schema"
    if choice == 6:
        return json.dumps({**valid, "schema_version": 99}).encode(), "unsupported_schema_version"
    return json.dumps({**valid, "padding": "x" * 5000}).encode(), "too_large"


def test_ten_thousand_bad_messages_lose_no_valid_event(
    broker: str, book: RuleBook, tmp_path: Path
) -> None:
    lines = simulated(tmp_path, 120, seed=61)
    expected = replayed(book, lines)
    valid = list(events_as_messages(lines))
    template = json.loads(lines[0])
    rng = random.Random(3)
    bad = [malformed(rng, {**template, "event_id": f"bad-{i}"}, i) for i in range(BAD)]
    mixed: list[tuple[bytes | None, bytes]] = []
    per_valid = BAD // len(valid) + 1
    queue = list(bad)
    for message in valid:
        mixed.append(message)
        for _ in range(per_valid):
            if queue:
                raw, _ = queue.pop()
                mixed.append((f"bad-{len(queue)}".encode(), raw))
    mixed.extend((b"bad-tail", raw) for raw, _ in queue)

    topics = Topics()
    prepare(broker, topics)
    env = topics.env(broker, CDI_MAX_MESSAGE_BYTES="4096")
    with running(env, tmp_path / "worker.log") as worker:
        publish(broker, topics.incidents, mixed)
        got = wait_for(lambda: read_all(broker, topics.review), converged(expected), timeout=180)
        letters = wait_for(
            lambda: read_all(broker, topics.dlq), lambda m: len(m) >= BAD, timeout=180
        )
        assert worker.proc.poll() is None, "the worker died"
    assert open_view(got) == open_view(expected)
    assert len(letters) == BAD
    assert Counter(x["error"]["kind"] for x in letters) == Counter(kind for _, kind in bad)
    assert all(x["error"]["message"] for x in letters)
