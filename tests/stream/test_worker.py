"""Starting a worker: what it refuses before it joins the group."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdi_stream.stream.worker import SHUTDOWN_TIMEOUT_EXIT, DataDirInUse, lock_data_dir


def test_a_data_directory_serves_one_worker_at_a_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = lock_data_dir(data)
    with pytest.raises(DataDirInUse, match="in use by another worker"):
        lock_data_dir(data)
    first.close()  # the worker stopped
    lock_data_dir(data).close()


def test_a_shutdown_that_hangs_ends_the_process_anyway() -> None:
    """What the worker's watchdog does once stopping has begun: a thread that never
    ends (a consumer waiting on a broker that is gone) cannot keep the process alive."""
    program = (
        "import threading, time\n"
        "from cdi_stream.stream import worker\n"
        "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
        "threading.Thread(target=worker._exit_after, args=(0.5,), daemon=True).start()\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == SHUTDOWN_TIMEOUT_EXIT == 1
    assert time.monotonic() - started < 30
    assert "stopping took longer than 0.5 s" in done.stderr
