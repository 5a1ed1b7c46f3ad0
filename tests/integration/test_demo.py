"""The one-command demo: it shows flags within seconds and Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.workers import interruptible, read_all, wait_for


def _processes_using(bootstrap: str) -> list[int]:
    found = []
    marker = f"CDI_KAFKA_BOOTSTRAP_SERVERS={bootstrap}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_demo_shows_breaches_within_seconds_and_stops_cleanly(tmp_path: Path) -> None:
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdi_stream.cli",
            "demo",
            "--speed",
            "36000",
            "--rate",
            "100",
            "--incidents",
            "400",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CDI_")},
        preexec_fn=interruptible,
    )
    try:
        deadline = time.monotonic() + 30
        bootstrap = None
        while bootstrap is None and time.monotonic() < deadline:
            found = re.search(
                rb"broker on (127\.0\.0\.1:\d+)", (tmp_path / "demo.log").read_bytes()
            )
            bootstrap = found.group(1).decode() if found else None
            time.sleep(0.2)
        assert bootstrap, (tmp_path / "demo.log").read_text()
        started = time.monotonic()
        wait_for(
            lambda: read_all(bootstrap, "cdi.ddm-review", idle=1.0, partitions=8),
            lambda m: any(x["finding"] == "crime_not_recorded" for x in m),
            timeout=60,
        )
        assert time.monotonic() - started < 60
        assert _processes_using(bootstrap)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(45) == 0
        time.sleep(1)
        assert _processes_using(bootstrap) == []
    finally:
        if demo.poll() is None:
            demo.kill()
        log.close()
