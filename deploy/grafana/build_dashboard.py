"""Writes deploy/grafana/dashboards/cdi-stream.json, the Grafana dashboard of cdi-stream.

The JSON is generated so that every panel is built the same way (datasource, instance
filter, units); edit this file, then run

    python deploy/grafana/build_dashboard.py

and commit both. ``tests/deploy/test_grafana.py`` fails when the JSON is out of date,
and checks every query against the metrics the workers export.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "cdi-stream.json"

# The uid of the datasource in provisioning/datasources/prometheus.yml.
DATASOURCE_UID = "cdi-prometheus"
DS = {"type": "prometheus", "uid": DATASOURCE_UID}
SEL = 'job="cdi-stream", instance=~"$instance"'

Panel = dict[str, Any]


class Layout:
    """Places panels left to right on Grafana's 24-column grid, row by row."""

    def __init__(self) -> None:
        self.panels: list[Panel] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def _next_id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "id": self._next_id(),
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def add(self, panel: Panel, w: int, h: int) -> None:
        if self._x + w > 24:
            self._newline()
        panel["id"] = self._next_id()
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._row_height = max(self._row_height, h)

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Panel:
    return {
        "refId": ref,
        "datasource": DS,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
    }


def thresholds(*steps: tuple[float | None, str]) -> Panel:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def stat(
    title: str,
    description: str,
    expr: str,
    unit: str = "short",
    steps: tuple[tuple[float | None, str], ...] = ((None, "blue"),),
    instant: bool = False,
    decimals: int | None = None,
) -> Panel:
    defaults: Panel = {
        "unit": unit,
        "thresholds": thresholds(*steps),
        "color": {"mode": "thresholds"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, instant=instant)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none" if instant else "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
    }


def timeseries(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    unit: str = "short",
    stack: bool = False,
    bars: bool = False,
    min_zero: bool = True,
) -> Panel:
    custom: Panel = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else (25 if stack else 10),
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults: Panel = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}}
    if min_zero:
        defaults["min"] = 0
    refs = "ABCDEFGHIJ"
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, legend, refs[i]) for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def table(title: str, description: str, expr: str) -> Panel:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [{**target(expr, instant=True), "format": "table"}],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm"},
        "transformations": [
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "Value": True, "__name__": True, "job": True},
                    "renameByName": {},
                },
            }
        ],
    }


def quantiles(metric: str, label: str) -> list[tuple[str, str]]:
    rate = f"sum by (le) (rate({metric}_bucket{{{SEL}}}[$__rate_interval]))"
    return [
        (f"histogram_quantile(0.5, {rate})", f"{label} p50"),
        (f"histogram_quantile(0.99, {rate})", f"{label} p99"),
    ]


def panels() -> list[Panel]:
    lay = Layout()
    in_time = f"sum(increase(cdi_crimes_recorded_in_time_total{{{SEL}}}[$__range]))"
    late = f"sum(increase(cdi_crimes_recorded_late_total{{{SEL}}}[$__range]))"

    lay.row("Compliance")
    lay.add(
        stat(
            "Open P1 flags",
            "Flags open now with priority P1 (rape, serious violence, vulnerable victims, "
            "missed deadlines), summed over the workers.",
            f'sum(cdi_open_flags{{{SEL}, priority="P1"}}) or vector(0)',
            steps=((None, "green"), (1, "orange"), (50, "red")),
        ),
        w=4,
        h=5,
    )
    lay.add(
        stat(
            "Open deadlines",
            "Subjects awaiting a crime record whose 24-hour deadline has not passed yet.",
            f"sum(cdi_open_deadlines{{{SEL}}})",
        ),
        w=4,
        h=5,
    )
    lay.add(
        stat(
            "Time to next breach",
            "Until the earliest open 24-hour deadline (over all workers). Empty when no "
            "deadline is open; negative would mean a deadline that has not fired.",
            f"min(cdi_next_deadline_timestamp_seconds{{{SEL}}} > 0) - time()",
            unit="s",
            steps=((None, "red"), (0, "orange"), (3600, "blue")),
        ),
        w=4,
        h=5,
    )
    lay.add(
        stat(
            "Recorded within 24 hours",
            "Share of subjects first recorded at or before their 24-hour deadline, of all "
            "first recorded in the selected time range.",
            f"{in_time} / ({in_time} + {late})",
            unit="percentunit",
            steps=((None, "red"), (0.9, "orange"), (0.95, "green")),
            instant=True,
            decimals=1,
        ),
        w=4,
        h=5,
    )
    lay.add(
        stat(
            "Deadline breaches",
            "Subjects whose 24-hour deadline passed with no crime recorded, in the "
            "selected time range.",
            f"sum(increase(cdi_deadline_breaches_total{{{SEL}}}[$__range]))",
            steps=((None, "green"), (1, "orange")),
            instant=True,
            decimals=0,
        ),
        w=4,
        h=5,
    )
    lay.add(
        stat(
            "Deadline warnings",
            "12-hour and 20-hour warnings given in the selected time range.",
            f"sum(increase(cdi_deadline_warnings_total{{{SEL}}}[$__range]))",
            instant=True,
            decimals=0,
        ),
        w=4,
        h=5,
    )
    lay.add(
        timeseries(
            "Open flags by finding and priority",
            "Flags open now, summed over the workers.",
            [(f"sum by (finding, priority) (cdi_open_flags{{{SEL}}})", "{{finding}} {{priority}}")],
            stack=True,
        ),
        w=12,
        h=9,
    )
    lay.add(
        timeseries(
            "Flags raised by finding and priority",
            "Flag changes published with status open (raised or updated), per hour.",
            [
                (
                    "sum by (finding, priority) "
                    f'(rate(cdi_flag_changes_total{{{SEL}, status="open"}}[$__rate_interval])) '
                    "* 3600",
                    "{{finding}} {{priority}}",
                )
            ],
            unit="short",
            stack=True,
        ),
        w=12,
        h=9,
    )
    lay.add(
        timeseries(
            "Flags resolved and withdrawn",
            "Flag changes that closed a flag, per hour: resolved (the record was put "
            "right) and withdrawn (not needed, or rejected by a DDM).",
            [
                (
                    "sum by (status) "
                    f'(rate(cdi_flag_changes_total{{{SEL}, status!="open"}}[$__rate_interval])) '
                    "* 3600",
                    "{{status}}",
                )
            ],
        ),
        w=8,
        h=8,
    )
    lay.add(
        timeseries(
            "Open deadlines",
            "Subjects awaiting a crime record, summed over the workers.",
            [(f"sum(cdi_open_deadlines{{{SEL}}})", "open deadlines")],
        ),
        w=8,
        h=8,
    )
    lay.add(
        timeseries(
            "Deadline warnings and breaches",
            "Per hour.",
            [
                (
                    f"sum(rate(cdi_deadline_warnings_total{{{SEL}}}[$__rate_interval])) * 3600",
                    "warnings",
                ),
                (
                    f"sum(rate(cdi_deadline_breaches_total{{{SEL}}}[$__rate_interval])) * 3600",
                    "breaches",
                ),
            ],
        ),
        w=8,
        h=8,
    )
    lay.add(
        timeseries(
            "Time from report to crime record",
            "Quantiles of the time from a subject's clock start to its first crime record, "
            "over the last hour.",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(increase(cdi_time_to_record_seconds_bucket{{{SEL}}}[1h])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            unit="s",
        ),
        w=12,
        h=8,
    )
    lay.add(
        timeseries(
            "Recorded in time and late",
            "Subjects first recorded at or before their deadline, and after it, per hour.",
            [
                (
                    f"sum(rate(cdi_crimes_recorded_in_time_total{{{SEL}}}[$__rate_interval])) "
                    "* 3600",
                    "in time",
                ),
                (
                    f"sum(rate(cdi_crimes_recorded_late_total{{{SEL}}}[$__rate_interval])) * 3600",
                    "late",
                ),
            ],
            stack=True,
        ),
        w=12,
        h=8,
    )

    lay.row("Pipeline")
    lay.add(
        timeseries(
            "Events consumed",
            "Incident events and DDM decisions accepted, per second, by event type.",
            [
                (
                    "sum by (event_type) "
                    f"(rate(cdi_events_consumed_total{{{SEL}}}[$__rate_interval]))",
                    "{{event_type}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        w=12,
        h=8,
    )
    lay.add(
        timeseries(
            "Dead letters by kind",
            "Messages sent to cdi.incidents.dlq per second, by reason.",
            [
                (
                    f"sum by (kind) (rate(cdi_dead_letters_total{{{SEL}}}[$__rate_interval]))",
                    "{{kind}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        w=12,
        h=8,
    )
    lay.add(
        timeseries(
            "Publish to flag latency",
            "From an event's publication to the flag changes it caused being sent.",
            quantiles("cdi_publish_to_flag_seconds", "latency"),
            unit="s",
        ),
        w=12,
        h=8,
    )
    lay.add(
        timeseries(
            "Rule evaluation time",
            "Time to evaluate one incident against the rules.",
            [
                *quantiles("cdi_rule_evaluation_seconds", "evaluation"),
                (
                    f"sum(rate(cdi_rule_evaluation_seconds_sum{{{SEL}}}[$__rate_interval])) / "
                    f"sum(rate(cdi_rule_evaluation_seconds_count{{{SEL}}}[$__rate_interval]))",
                    "evaluation mean",
                ),
            ],
            unit="s",
        ),
        w=12,
        h=8,
    )

    lay.row("Consumers")
    lay.add(
        timeseries(
            "Workers up",
            "1 when Prometheus scraped the worker successfully.",
            [(f"up{{{SEL}}}", "{{instance}}")],
            min_zero=True,
        ),
        w=8,
        h=8,
    )
    lay.add(
        timeseries(
            "Assigned partitions",
            "Input partitions each worker owns; the sum should equal CDI_PARTITIONS.",
            [
                (f"cdi_assigned_partitions{{{SEL}}}", "{{instance}}"),
                (f"sum(cdi_assigned_partitions{{{SEL}}})", "total"),
            ],
        ),
        w=8,
        h=8,
    )
    lay.add(
        timeseries(
            "Rebalances",
            "Partition assignments completed (start-up included), per worker and interval.",
            [
                (
                    "sum by (instance) "
                    f"(increase(cdi_rebalances_total{{{SEL}}}[$__rate_interval]))",
                    "{{instance}}",
                )
            ],
            bars=True,
        ),
        w=8,
        h=8,
    )
    lay.add(
        timeseries(
            "Watermark lag by partition",
            "How far the latest event time seen on each partition is behind the wall clock.",
            [
                (
                    f"max by (partition) (cdi_watermark_lag_seconds{{{SEL}}})",
                    "partition {{partition}}",
                )
            ],
            unit="s",
        ),
        w=12,
        h=8,
    )
    lay.add(
        timeseries(
            "Events consumed per worker",
            "Per second.",
            [
                (
                    "sum by (instance) "
                    f"(rate(cdi_events_consumed_total{{{SEL}}}[$__rate_interval]))",
                    "{{instance}}",
                )
            ],
            unit="ops",
        ),
        w=12,
        h=8,
    )
    lay.add(
        table(
            "Rules in use",
            "Each worker's rule editions and the rules' content hash; every worker should "
            "show the same hash.",
            f"max by (instance, edition, hash) (cdi_rules_info{{{SEL}}})",
        ),
        w=12,
        h=8,
    )
    lay.add(
        timeseries(
            "Rules reloads",
            "Reloads of a changed rules directory, by result; errors keep the old rules. "
            "The dashboard's annotations mark each time a worker loaded rules.",
            [
                (
                    "sum by (result) "
                    f"(increase(cdi_rules_reloads_total{{{SEL}}}[$__rate_interval]))",
                    "{{result}}",
                ),
            ],
            bars=True,
        ),
        w=12,
        h=8,
    )
    lay.add(
        timeseries(
            "Resident memory",
            "Per worker; the case state grows with the incidents held (docs/operations.md).",
            [(f"process_resident_memory_bytes{{{SEL}}}", "{{instance}}")],
            unit="bytes",
        ),
        w=12,
        h=8,
    )
    lay.add(
        timeseries(
            "CPU",
            "Cores used per worker; a worker runs one event loop, so about 1 is its limit.",
            [
                (
                    f"rate(process_cpu_seconds_total{{{SEL}}}[$__rate_interval])",
                    "{{instance}}",
                )
            ],
            unit="short",
        ),
        w=12,
        h=8,
    )
    return lay.panels


def dashboard() -> dict[str, Any]:
    return {
        "uid": "cdi-stream",
        "title": "cdi-stream",
        "description": "Crime-recording compliance flags, deadlines and worker health.",
        "tags": ["cdi-stream", "kafka"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "datasource": DS,
                    "enable": True,
                    "iconColor": "orange",
                    "name": "Rules loaded",
                    "expr": 'changes(cdi_rules_loaded_timestamp_seconds{job="cdi-stream"}[2m]) > 0',
                    "step": "1m",
                    "titleFormat": "Rules loaded",
                    "textFormat": "{{instance}}",
                },
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "label": "Worker",
                    "type": "query",
                    "datasource": DS,
                    "query": {
                        "query": 'label_values(up{job="cdi-stream"}, instance)',
                        "refId": "instance",
                    },
                    "definition": 'label_values(up{job="cdi-stream"}, instance)',
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "sort": 1,
                    "hide": 0,
                    "options": [],
                }
            ]
        },
        "panels": panels(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.is_file() or OUT.read_text() != text:
            sys.exit(f"{OUT} is out of date: run python {Path(__file__).name}")
        return
    OUT.write_text(text)
    print(OUT)


if __name__ == "__main__":
    main()
