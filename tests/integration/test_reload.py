"""Rules reloaded in a running worker on SIGHUP: valid changes swap in, broken ones do not."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from cdi_stream.broker import free_port
from cdi_stream.rules.loader import content_hash
from tests.conftest import RULES_DIR
from tests.engine.scenario import Incident
from tests.integration.test_metrics import Samples, scrape, value
from tests.integration.workers import Topics, prepare, publish, read_all, running, wait_for

OLD_TITLE = "title: Crime-related incident closed without a rationale"
NEW_TITLE = "title: CRI closure with no rationale recorded"


def hashes(samples: Samples) -> set[str]:
    return {dict(labels)["hash"] for name, labels in samples if name == "cdi_rules_info"}


def wait_scrape(port: int, done: Callable[[Samples], bool], timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if done(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never satisfied the condition: {hashes(samples)}")
        time.sleep(0.3)


def test_sighup_reloads_valid_rules_and_keeps_old_ones_on_error(
    broker: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    original = content_hash(rules)
    topics = Topics()
    prepare(broker, topics)
    port = free_port()
    env = topics.env(
        broker,
        CDI_RULES_DIR=str(rules),
        CDI_RULES_RELOAD_SECONDS="0",  # SIGHUP only
        CDI_METRICS_PORT=str(port),
    )
    closure = rules / "closure.yaml"
    with running(env, tmp_path / "worker.log") as worker:
        assert hashes(scrape(port)) == {original}
        closure.write_text(closure.read_text().replace(OLD_TITLE, NEW_TITLE))
        changed = content_hash(rules)
        time.sleep(1.0)
        assert hashes(scrape(port)) == {original}, "no poll: nothing happens before SIGHUP"
        os.kill(worker.proc.pid, signal.SIGHUP)
        after = wait_scrape(port, lambda s: hashes(s) == {changed})
        assert value(after, "cdi_rules_reloads_total", result="ok") == 1

        events = Incident("INC-HUP").reported(0).closed(1, "cri").events
        publish(
            broker,
            topics.incidents,
            [(b"INC-HUP", json.dumps(e).encode()) for e in events],
        )
        got = wait_for(
            lambda: read_all(broker, topics.review),
            lambda m: any(x["finding"] == "cri_without_rationale" for x in m),
        )
        flag = next(x for x in got if x["finding"] == "cri_without_rationale")
        assert flag["rule_title"] == NEW_TITLE.removeprefix("title: ")

        closure.write_text("id: CRI-RATIONALE\ntitle: [broken\n")
        os.kill(worker.proc.pid, signal.SIGHUP)
        failed = wait_scrape(
            port, lambda s: value(s, "cdi_rules_reloads_total", result="error") == 1
        )
        assert hashes(failed) == {changed}, "the broken version was not swapped in"
        assert worker.proc.poll() is None
    log = worker.log.read_text()
    assert "rules reloaded" in log and "not reloaded" in log and "closure.yaml" in log
