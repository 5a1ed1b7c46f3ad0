"""Shared by the deploy tests: paths, external tools, and reading PromQL."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
K8S = DEPLOY / "k8s"

JOB = "cdi-stream"
METRICS_PORT = 9108
TOPICS = ("cdi.incidents", "cdi.ddm-decisions", "cdi.ddm-review", "cdi.incidents.dlq")

# What a worker exports (cdi_stream/metrics.py), by exported sample name.
COUNTERS = (
    "cdi_events_consumed",
    "cdi_duplicate_events",
    "cdi_dead_letters",
    "cdi_dead_letters_lost",
    "cdi_flag_changes",
    "cdi_deadline_warnings",
    "cdi_deadline_breaches",
    "cdi_crimes_recorded_in_time",
    "cdi_crimes_recorded_late",
    "cdi_rules_reloads",
    "cdi_rebalances",
)
GAUGES = (
    "cdi_open_flags",
    "cdi_open_deadlines",
    "cdi_next_deadline_timestamp_seconds",
    "cdi_watermark_lag_seconds",
    "cdi_rules_info",
    "cdi_rules_loaded_timestamp_seconds",
    "cdi_assigned_partitions",
    "cdi_cases_held",
)
HISTOGRAMS = (
    "cdi_time_to_record_seconds",
    "cdi_publish_to_flag_seconds",
    "cdi_rule_evaluation_seconds",
)
KNOWN_METRICS = frozenset(
    [f"{name}_total" for name in COUNTERS]
    + list(GAUGES)
    + [f"{name}_{part}" for name in HISTOGRAMS for part in ("bucket", "sum", "count")]
    + ["up"]
)
# The standard collectors of prometheus-client (process and Python runtime).
STANDARD_PREFIXES = ("process_", "python_")
# Labels the metrics carry, plus those Prometheus adds and the histogram bucket label.
KNOWN_LABELS = frozenset(
    {"event_type", "kind", "finding", "status", "priority", "partition", "edition", "hash"}
    | {"result", "instance", "job", "le"}
)

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def tool(name: str) -> str:
    """Path of an external command, or skip the test saying which package brings it."""
    path = shutil.which(name)
    if path is None:
        package = {"promtool": "prometheus", "docker-compose": "docker-compose"}.get(name, name)
        pytest.skip(f"{name} not installed (Debian package '{package}'; .ci/run installs it)")
    return path


def run(command: Sequence[str | Path], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it exits non-zero."""
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {result.returncode}\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def _strip(expr: str) -> str:
    """The expression without strings, label matchers, ranges and grouping lists."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _GROUPING.sub("", text)
    return re.sub(r"\boffset\s+-?[0-9a-z]+", "", text)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers that are not functions,
    aggregations, keywords or label names)."""
    text = _strip(expr)
    names: set[str] = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        token = match.group()
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # the exponent of a number such as 1e3
        if text[match.end() :].lstrip().startswith("(") or token.lower() in _KEYWORDS:
            continue
        names.add(token)
    return names


def grouping_labels(expr: str) -> set[str]:
    """Label names in by/without/on/ignoring/group_* lists."""
    labels: set[str] = set()
    for match in _GROUPING.finditer(expr):
        labels.update(x.strip() for x in match.group(2).split(",") if x.strip())
    return labels


def unknown_metrics(names: Iterable[str]) -> set[str]:
    return {n for n in names if n not in KNOWN_METRICS and not n.startswith(STANDARD_PREFIXES)}


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, label matchers) of every vector selector; matchers "" when bare."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: "\0" * len(m.group()), expr)
    found: list[tuple[str, str]] = []
    names = metric_names(expr)
    for match in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?", text):
        if match.group(1) in names:
            braces = match.group(2) or ""
            found.append((match.group(1), expr[match.start(2) : match.end(2)] if braces else ""))
    return found
