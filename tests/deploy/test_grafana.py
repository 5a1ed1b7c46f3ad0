"""The Grafana dashboard and its provisioning: valid JSON built by its generator, every
panel on the provisioned datasource, every query valid PromQL over exported metrics."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    GRAFANA,
    JOB,
    KNOWN_LABELS,
    grouping_labels,
    metric_names,
    run,
    selectors,
    tool,
    unknown_metrics,
)

DASHBOARD = GRAFANA / "dashboards" / "cdi-stream.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "cdi-stream.yml"
# Grafana's variables, replaced by values of the right kind before promtool parses them.
VARIABLES = {"__range": "1d", "__rate_interval": "1m", "__interval": "1m", "instance": ".*"}


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def data_panels() -> list[dict[str, Any]]:
    return [p for p in panels(load_dashboard()) if p["type"] != "row"]


def queries() -> list[tuple[str, str]]:
    """(where, expression) of every PromQL query: panel targets and annotations."""
    found = [
        (f"panel {p['id']} {p['title']!r} {t['refId']}", t["expr"])
        for p in data_panels()
        for t in p["targets"]
    ]
    for note in load_dashboard()["annotations"]["list"]:
        if "expr" in note:
            found.append((f"annotation {note['name']!r}", note["expr"]))
    return found


def substitute(expr: str) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: VARIABLES[m.group(1)], expr)


def provisioned_uid() -> str:
    doc = yaml.safe_load(DATASOURCES.read_text())
    (source,) = doc["datasources"]
    assert source["type"] == "prometheus"
    uid: str = source["uid"]
    return uid


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboard_is_what_its_generator_writes() -> None:
    assert DASHBOARD.read_text() == generator().render(), (
        "run python deploy/grafana/build_dashboard.py"
    )


def test_dashboard_identity() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "cdi-stream"
    assert dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_panels_fit_the_grid_without_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels(load_dashboard()):
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{panel['title']!r} overlaps another panel"
        taken |= cells


def test_every_panel_queries_the_provisioned_datasource() -> None:
    uid = provisioned_uid()
    for panel in data_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], f"{panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()
    for variable in load_dashboard()["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid


def test_dashboard_covers_the_operations_views() -> None:
    exprs = " ".join(e for _, e in queries())
    for metric in (
        "cdi_open_flags",
        "cdi_flag_changes_total",
        "cdi_open_deadlines",
        "cdi_next_deadline_timestamp_seconds",
        "cdi_crimes_recorded_in_time_total",
        "cdi_crimes_recorded_late_total",
        "cdi_dead_letters_total",
        "cdi_publish_to_flag_seconds_bucket",
        "cdi_rule_evaluation_seconds_bucket",
        "cdi_events_consumed_total",
        "cdi_rebalances_total",
        "cdi_assigned_partitions",
        "cdi_watermark_lag_seconds",
        "up",
    ):
        assert re.search(rf"\b{metric}\b", exprs), f"no panel shows {metric}"
    assert "histogram_quantile(0.99, " in exprs and "histogram_quantile(0.5, " in exprs


@pytest.mark.parametrize(("where", "expr"), queries(), ids=[w for w, _ in queries()])
def test_queries_use_only_exported_metrics(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, where
    assert not unknown_metrics(names), where
    assert grouping_labels(expr) <= KNOWN_LABELS, where
    for name, matchers in selectors(expr):
        assert f'job="{JOB}"' in matchers, f"{where}: {name} not restricted to the job"


def test_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each query becomes a recording rule; promtool parses every one."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": substitute(expr)}
        for i, (_, expr) in enumerate(queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run([tool("promtool"), "check", "rules", path])
    assert f"{len(rules)} rules found" in out.stdout


def test_dashboard_provider_loads_the_mounted_directory() -> None:
    doc = yaml.safe_load(PROVIDERS.read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((GRAFANA.parent / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
