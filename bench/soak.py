"""Soak: a worker under a steady live load for a long time, watched through its metrics.

A local broker, one ``cdi-stream worker`` (hybrid clock) and the simulator publishing at
``--rate`` events a second with event time compressed ``--speed`` times, so that weeks
of event time pass: deadlines fire, incidents close, and closed incidents are dropped
after the retention period. Every ``--interval`` seconds the worker's ``/metrics`` are
scraped for resident memory, cases held, open flags and deadlines, and the
publish-to-flag latency percentiles of that interval (interpolated in the histogram's
buckets, as Prometheus's ``histogram_quantile`` does).

Memory must level off once the first incidents pass their retention: the last third of
the run may not grow more than ``--max-growth`` (fraction) over the middle third's
peak, in resident memory and in cases held. The exit status says whether it did.

    python bench/soak.py [--minutes 30] [--rate 200] [--speed 4000] [--retention-days 30]
        [--interval 60] [--csv FILE] [--chart FILE.svg]

The defaults are the documented run (about 31 minutes). ``--minutes 2
--retention-days 1 --interval 10`` is the short version the test suite runs.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cdi_stream.broker import LocalBroker, free_port
from cdi_stream.deployment import PrivateDeployment
from cdi_stream.settings import load_settings
from cdi_stream.stream.worker import ensure_topics

LATENCY = "cdi_publish_to_flag_seconds"


@dataclass(frozen=True, slots=True)
class Sample:
    elapsed: float
    rss_mib: float
    cases_held: float
    open_flags: float
    open_deadlines: float
    events: float
    events_per_second: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass
class Soak:
    samples: list[Sample] = field(default_factory=list)
    max_growth: float = 0.1

    def third(self, which: int) -> list[Sample]:
        n = len(self.samples)
        return self.samples[(n * which) // 3 : (n * (which + 1)) // 3]

    def growth(self, attribute: str) -> float:
        """How much the last third's peak exceeds the middle third's (fraction)."""
        middle: list[float] = [getattr(s, attribute) for s in self.third(1)]
        last: list[float] = [getattr(s, attribute) for s in self.third(2)]
        if not middle or not last or max(middle) <= 0:
            return math.inf
        return max(last) / max(middle) - 1.0

    @property
    def levelled(self) -> bool:
        return all(self.growth(a) <= self.max_growth for a in ("rss_mib", "cases_held"))


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(scraped: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(v for _, v in scraped.get(name, []))


def buckets(scraped: dict[str, list[tuple[dict[str, str], float]]]) -> list[tuple[float, float]]:
    found = [(float(labels["le"]), v) for labels, v in scraped.get(f"{LATENCY}_bucket", [])]
    return sorted(found)


def quantile(
    q: float, before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> float | None:
    """``histogram_quantile`` over the increase between two scrapes of the buckets."""
    prior = dict(before)
    counts = [(le, v - prior.get(le, 0.0)) for le, v in after]
    if not counts or counts[-1][1] <= 0:
        return None
    rank = q * counts[-1][1]
    low_le, low_count = 0.0, 0.0
    for le, count in counts:
        if count >= rank:
            if math.isinf(le):
                return low_le
            if count == low_count:
                return le
            return low_le + (le - low_le) * (rank - low_count) / (count - low_count)
        low_le, low_count = le, count
    return None


def run_soak(
    *,
    minutes: float,
    rate: float,
    speed: float,
    retention_days: float,
    interval: float,
    max_growth: float = 0.1,
    log_dir: Path | None = None,
    echo: bool = True,
) -> Soak:
    logs = log_dir or Path(tempfile.mkdtemp(prefix="cdi-soak-"))
    soak = Soak(max_growth=max_growth)
    port = free_port()
    # The worker creates a data directory even with the in-memory store; without one
    # given it would be left in the working directory. Removed after the worker stops.
    with (
        LocalBroker() as broker,
        tempfile.TemporaryDirectory(prefix="cdi-soak-data-", ignore_cleanup_errors=True) as data,
    ):
        broker.start()
        deployment = PrivateDeployment(f"soak{os.getpid()}{int(time.time())}")
        env = deployment.env(
            broker.bootstrap,
            CDI_DATA_DIR=data,
            CDI_PROFILE="local",
            CDI_CLOCK="hybrid",
            CDI_PARTITIONS="4",
            CDI_METRICS_PORT=str(port),
            CDI_RETENTION_DAYS=str(retention_days),
            CDI_MAX_EVENT_AHEAD_SECONDS="0",  # event time runs ahead on purpose
        )
        ensure_topics(
            load_settings(
                kafka_bootstrap_servers=broker.bootstrap,
                profile="local",
                partitions=4,
                **deployment.settings(),
            )
        )
        worker = spawn(["worker"], env, logs / "worker.log")
        simulator: subprocess.Popen[bytes] | None = None
        try:
            wait_ready(logs / "worker.log", worker)
            incidents = int(rate * minutes * 60 / 2.5) + 1000
            simulator = spawn(
                [
                    "simulate",
                    "--publish",
                    "--start",
                    "now",
                    f"--topic={deployment.incidents}",
                    f"--incidents={incidents}",
                    f"--rate={rate}",
                    f"--speed={speed}",
                ],
                env,
                logs / "simulate.log",
            )
            started = time.monotonic()
            previous = scrape(port)
            previous_at = started
            while (elapsed := time.monotonic() - started) < minutes * 60:
                time.sleep(min(interval, minutes * 60 - elapsed))
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited; see {logs / 'worker.log'}")
                now = time.monotonic()
                scraped = scrape(port)
                before, after = buckets(previous), buckets(scraped)
                p50, p99 = quantile(0.5, before, after), quantile(0.99, before, after)
                events = total(scraped, "cdi_events_consumed_total")
                sample = Sample(
                    elapsed=now - started,
                    rss_mib=total(scraped, "process_resident_memory_bytes") / 2**20,
                    cases_held=total(scraped, "cdi_cases_held"),
                    open_flags=total(scraped, "cdi_open_flags"),
                    open_deadlines=total(scraped, "cdi_open_deadlines"),
                    events=events,
                    events_per_second=(events - total(previous, "cdi_events_consumed_total"))
                    / (now - previous_at),
                    p50_ms=None if p50 is None else p50 * 1000,
                    p99_ms=None if p99 is None else p99 * 1000,
                )
                soak.samples.append(sample)
                previous, previous_at = scraped, now
                if echo:
                    print(row(sample), flush=True)
        finally:
            for proc in (simulator, worker):
                if proc is not None:
                    stop(proc)
    return soak


def spawn(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cdi_stream.cli", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(log: Path, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while b"cases recovered" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start; see {log}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


HEADER = (
    "  minute   RSS MiB   cases held   open flags   open deadlines   events/s   p50 ms   p99 ms"
)


def row(s: Sample) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    return (
        f"{s.elapsed / 60:8.1f} {s.rss_mib:9.1f} {s.cases_held:12,.0f} {s.open_flags:12,.0f} "
        f"{s.open_deadlines:16,.0f} {s.events_per_second:10.0f} {ms(s.p50_ms):>8} {ms(s.p99_ms):>8}"
    )


def chart(samples: Sequence[Sample], path: Path) -> None:
    """Resident memory and cases held over time, as a small SVG."""
    width, height, pad = 640, 240, 40
    t_max = max(s.elapsed for s in samples) / 60 or 1.0

    def line(values: list[float], color: str) -> str:
        top = max(values) or 1.0
        points = " ".join(
            f"{pad + (s.elapsed / 60) / t_max * (width - 2 * pad):.1f},"
            f"{height - pad - v / top * (height - 2 * pad):.1f}"
            for s, v in zip(samples, values, strict=True)
        )
        return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>'

    rss = [s.rss_mib for s in samples]
    held = [s.cases_held for s in samples]
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">'
        f'<rect width="{width}" height="{height}" fill="white"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#888"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>'
        f"{line(rss, '#1f77b4')}{line(held, '#d62728')}"
        f'<text x="{pad}" y="20" fill="#1f77b4">resident memory (peak {max(rss):.0f} MiB)</text>'
        f'<text x="{width / 2}" y="20" fill="#d62728">cases held (peak {max(held):,.0f})</text>'
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">minutes ({t_max:.0f})</text>'
        "</svg>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="events a second")
    parser.add_argument("--speed", type=float, default=4000.0, help="event seconds per second")
    parser.add_argument("--retention-days", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--max-growth", type=float, default=0.1)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--chart", type=Path)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        f"soak: {args.minutes:g} min at {args.rate:g} events/s, event time x{args.speed:g}, "
        f"retention {args.retention_days:g} days"
    )
    print(HEADER, flush=True)
    soak = run_soak(
        minutes=args.minutes,
        rate=args.rate,
        speed=args.speed,
        retention_days=args.retention_days,
        interval=args.interval,
        max_growth=args.max_growth,
    )
    if args.csv:
        with args.csv.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(Sample.__slots__)
            for s in soak.samples:
                writer.writerow([getattr(s, k) for k in Sample.__slots__])
    if args.chart:
        chart(soak.samples, args.chart)
    print(
        f"growth, last third over middle third: RSS {soak.growth('rss_mib'):+.1%}, "
        f"cases held {soak.growth('cases_held'):+.1%} (limit {args.max_growth:+.0%}): "
        + ("levelled off" if soak.levelled else "STILL GROWING")
    )
    sys.exit(0 if soak.levelled else 1)


if __name__ == "__main__":
    main()
