"""The one-command demo: it shows flags within seconds, and stopping it stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def _data_dir(pid: int) -> Path | None:
    """The process's ``CDI_DATA_DIR``; None when it has none or has already exited."""
    try:
        environ = (Path("/proc") / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    for variable in environ.split(b"\0"):
        name, _, value = variable.partition(b"=")
        if name == b"CDI_DATA_DIR":
            return Path(value.decode())
    return None


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_shows_breaches_within_seconds_and_stops_cleanly(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Ctrl-C, or SIGTERM (a terminal closing sends SIGHUP, handled the same way)."""
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
        cwd=tmp_path,
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
        wait_for(
            lambda: read_all(bootstrap, "cdi.ddm-review", idle=1.0, partitions=8),
            lambda m: any(x["finding"] == "crime_not_recorded" for x in m),
            timeout=60,
        )
        children = _processes_using(bootstrap)
        assert children
        # The worker's data directory is the demo's own, not one in the working directory.
        data_dirs = {d for pid in children if (d := _data_dir(pid)) is not None}
        assert len(data_dirs) == 1, data_dirs
        data_dir = data_dirs.pop()
        assert data_dir.is_dir() and not data_dir.is_relative_to(tmp_path)
        demo.send_signal(stop)
        assert demo.wait(45) == 0
        time.sleep(1)
        assert _processes_using(bootstrap) == []
        assert not data_dir.exists()
        assert [p.name for p in tmp_path.iterdir()] == ["demo.log"]
    finally:
        if demo.poll() is None:
            demo.kill()
        log.close()
