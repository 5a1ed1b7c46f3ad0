"""A real Prometheus scrapes a worker; the dashboard's and alerts' PromQL run against it.

The share recorded within 24 hours that the dashboard shows must come out as the
stream's true share (the simulator's ground truth), computed by Prometheus from what
it scraped, not by this test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdi_stream.broker import free_port
from cdi_stream.simulate import DefectRates, SimConfig, write_jsonl
from tests.integration.workers import (
    Topics,
    events_as_messages,
    prepare,
    publish,
    read_all,
    running,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "cdi-stream.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SHARE_PANEL = "Recorded within 24 hours"
# Grafana's variables, as Grafana would fill them in for the last 15 minutes.
VARIABLES = {"$__range": "15m", "$__rate_interval": "1m", "$instance": ".*"}


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, int]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("needs Debian's prometheus package (installed by .ci/run)")
    target = free_port()
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "cdi-stream", "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{server.base}/-/ready", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "prometheus.log").read_text()) from None
                time.sleep(0.3)
        yield server, target
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def expressions() -> dict[str, str]:
    """Every PromQL expression of the dashboard (by panel) and the alerts (by name)."""
    found: dict[str, str] = {}
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for i, target in enumerate(panel.get("targets", [])):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            found[f"panel {panel['title']} #{i}"] = expr
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    return found


def until(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s")
        time.sleep(0.5)


def test_dashboard_share_recorded_within_24_hours_is_the_true_share(
    broker: str, prometheus: tuple[Prometheus, int], tmp_path: Path
) -> None:
    server, port = prometheus
    rates = DefectRates(
        unrecorded=0, late=0.25, misclassified=0, undercounted=0, wrongly_cancelled=0
    )
    path = tmp_path / "events.jsonl"
    truths = write_jsonl(SimConfig(seed=51, incidents=150, defects=rates), path)
    lines = path.read_bytes().splitlines()
    within = sum(t.recordable_subjects for t in truths if t.recorded_within_24h)
    recorded = sum(t.recordable_subjects for t in truths)
    assert 0 < within < recorded

    topics = Topics()
    prepare(broker, topics)
    env = topics.env(broker, CDI_METRICS_PORT=str(port))
    with running(env, tmp_path / "worker.log"):
        # Prometheus must see the counters at zero before the stream starts, as it
        # would for a worker that has been running.
        until(
            lambda: (
                server.scalar('sum(cdi_crimes_recorded_in_time_total{job="cdi-stream"})') == 0.0
            ),
            "scrape of the idle worker",
        )
        publish(broker, topics.incidents, events_as_messages(lines))
        changelog = f"{env['CDI_CONSUMER_GROUP']}-cases-changelog"
        wait_for(lambda: read_all(broker, changelog), lambda m: len(m) >= len(lines))
        total = 'sum(cdi_events_consumed_total{job="cdi-stream"})'
        until(lambda: server.scalar(total) == len(lines), "scrape of every event")
        time.sleep(2.5)  # a few more scrapes with the final values

        share_exprs = [e for k, e in expressions().items() if k.startswith(f"panel {SHARE_PANEL}")]
        assert len(share_exprs) == 1
        share = server.scalar(share_exprs[0])
        assert share is not None
        assert share == pytest.approx(within / recorded, abs=1e-9)

        failures = []
        for name, expr in expressions().items():
            try:
                server.query(expr)
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
        assert not failures, failures
        # Prometheus loaded the alert rules and evaluates every one without error.
        groups = server.get("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert len(rules) == sum(1 for k in expressions() if k.startswith("alert "))
        assert all(r["health"] in ("ok", "unknown") and not r.get("lastError") for r in rules)
        assert any(r["health"] == "ok" for r in rules)
