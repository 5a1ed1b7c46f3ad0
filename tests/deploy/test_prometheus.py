"""Prometheus configuration and alert rules: promtool accepts them, their unit tests
pass, and every expression uses only metrics the workers export."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cdi_stream.metrics import Metrics
from tests.deploy.support import (
    COUNTERS,
    GAUGES,
    HISTOGRAMS,
    JOB,
    K8S,
    KNOWN_LABELS,
    METRICS_PORT,
    PROMETHEUS,
    grouping_labels,
    metric_names,
    run,
    tool,
    unknown_metrics,
)

ALERTS = PROMETHEUS / "alerts.yml"
CONFIG = PROMETHEUS / "prometheus.yml"
ALERTS_TEST = PROMETHEUS / "alerts_test.yml"
SEVERITIES = {"critical", "warning", "info"}


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_alert_rules() -> None:
    out = run([tool("promtool"), "check", "rules", ALERTS])
    assert f"{len(alert_rules())} rules found" in out.stdout


def test_promtool_accepts_the_config() -> None:
    # Also loads the rule files the config names, relative to the config file.
    run([tool("promtool"), "check", "config", CONFIG])


def test_alert_unit_tests_pass() -> None:
    """Synthetic series in alerts_test.yml make the alerts fire (and not fire) as meant."""
    out = run([tool("promtool"), "test", "rules", ALERTS_TEST], cwd=PROMETHEUS)
    assert "SUCCESS" in out.stdout


def test_unit_tests_cover_breaches_and_dead_letters() -> None:
    doc = yaml.safe_load(ALERTS_TEST.read_text())
    assert doc["rule_files"] == [ALERTS.name]
    firing = {
        case["alertname"]
        for test in doc["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {"CdiDeadlineBreachesRising", "CdiDeadLettersHigh"} <= firing


def test_the_expected_alerts_exist() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "CdiDeadlineBreachesRising",
        "CdiDeadLettersHigh",
        "CdiNoEventsConsumed",
        "CdiWorkerDown",
        "CdiWatermarkLagGrowing",
        "CdiRulesReloadFailing",
    } <= names
    down = next(r for r in alert_rules() if r["alert"] == "CdiWorkerDown")
    assert down["expr"].strip() == f'up{{job="{JOB}"}} == 0'


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_is_complete(rule: dict[str, Any]) -> None:
    assert rule.get("for"), "every alert waits before firing"
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alerts_use_only_exported_metrics(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names, "an alert must select some metric"
    assert not unknown_metrics(names)
    assert grouping_labels(rule["expr"]) <= KNOWN_LABELS


def test_scrape_job_matches_the_rules() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == [ALERTS.name]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == JOB)
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets and all(t.endswith(f":{METRICS_PORT}") for t in targets)


def test_kubernetes_prometheus_rule_holds_the_same_groups() -> None:
    rule = yaml.safe_load((K8S / "prometheusrule.yaml").read_text())
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_metric_list_matches_what_a_worker_exports() -> None:
    """The names the alerts and the dashboard are checked against are the real ones."""
    worker = Metrics(process=True)
    worker.cases_held = lambda: 0  # a worker counts the cases in its table
    text = worker.exposition().decode()
    exported: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("cdi_") and not family.name.endswith("_created"):
            exported.setdefault(family.type, set()).add(family.name)
    assert exported.get("counter", set()) == set(COUNTERS)
    assert exported.get("gauge", set()) == set(GAUGES)
    assert exported.get("histogram", set()) == set(HISTOGRAMS)
    assert any(line.startswith("process_resident_memory_bytes") for line in text.splitlines())
