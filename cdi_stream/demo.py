"""The one-command live demo: a local broker, a worker, the simulator and the DDM queue.

Event time runs an hour a second (``speed`` 3600) from the current time, so warnings
show after about 12 seconds and the first 24-hour breaches after about 24; the worker's
hybrid clock lets the simulated event time drive the deadlines. Everything started
here is stopped on Ctrl-C, in reverse order, and the worker's data directory is a
temporary one removed on exit unless ``CDI_DATA_DIR`` names one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console

from cdi_stream.broker import LocalBroker, free_port
from cdi_stream.ddm import watch_queue
from cdi_stream.settings import load_settings
from cdi_stream.stream.worker import ensure_topics

READY_MARK = b"cases recovered"


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "cdi_stream.cli", *args],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _wait_for(log: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if READY_MARK in log.read_bytes():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the worker stopped; see {log}")
        time.sleep(0.2)
    raise RuntimeError(f"the worker did not start in {timeout:.0f}s; see {log}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(
    *, incidents: int = 5000, rate: float = 40.0, speed: float = 3600.0, seed: int = 1
) -> int:
    """Run until Ctrl-C, SIGTERM or SIGHUP (the terminal closed); return the exit status.

    The worker and the simulator run in sessions of their own, out of reach of the
    terminal's signals, so the demo must stop them itself however it is stopped.
    """
    console = Console(stderr=True)
    logs = Path(tempfile.mkdtemp(prefix="cdi-demo-"))
    with ExitStack() as stack:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            stack.callback(signal.signal, sig, signal.signal(sig, _interrupt))
        broker = stack.enter_context(LocalBroker())
        broker.start()
        console.print(f"broker on {broker.bootstrap}; logs in {logs}", highlight=False)
        settings = load_settings(kafka_bootstrap_servers=broker.bootstrap, profile="local")
        ensure_topics(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDI_")}
        # The worker creates its data directory even with the in-memory store: unless
        # one is chosen, use one that goes with the demo instead of one in the working
        # directory. Entered before the worker starts, so removed after it stops.
        data_dir = os.environ.get("CDI_DATA_DIR") or stack.enter_context(
            tempfile.TemporaryDirectory(prefix="cdi-demo-data-", ignore_cleanup_errors=True)
        )
        metrics_port = free_port()
        env.update(
            CDI_DATA_DIR=data_dir,
            CDI_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
            CDI_PROFILE="local",
            CDI_CLOCK="hybrid",
            CDI_METRICS_PORT=str(metrics_port),
            # Event time runs far ahead of the wall clock on purpose.
            CDI_MAX_EVENT_AHEAD_SECONDS="0",
        )
        worker = _spawn(["worker"], env, logs / "worker.log")
        stack.callback(_stop, worker)
        console.print("starting a worker...", highlight=False)
        _wait_for(logs / "worker.log", worker, timeout=90)
        console.print(f"metrics on http://127.0.0.1:{metrics_port}/metrics", highlight=False)
        simulator = _spawn(
            [
                "simulate",
                "--publish",
                "--start",
                "now",
                f"--incidents={incidents}",
                f"--rate={rate}",
                f"--speed={speed}",
                f"--seed={seed}",
            ],
            env,
            logs / "simulate.log",
        )
        stack.callback(_stop, simulator)
        warn, breach = 12 * 3600 / speed, 24 * 3600 / speed
        console.print(
            f"publishing {incidents} simulated incidents at {rate:g} events/s, event time "
            f"x{speed:g}: warnings appear after ~{warn:.0f} s, breaches after ~{breach:.0f} s. "
            "Ctrl-C stops everything.",
            highlight=False,
        )
        try:
            return watch_queue(settings, follow=True, as_json=False, console=Console())
        except KeyboardInterrupt:
            return 0
        finally:
            console.print("stopping the simulator, the worker and the broker...", highlight=False)
