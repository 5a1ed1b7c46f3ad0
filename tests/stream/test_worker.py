"""Starting a worker: what it refuses before it joins the group."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdi_stream.stream.worker import DataDirInUse, lock_data_dir


def test_a_data_directory_serves_one_worker_at_a_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = lock_data_dir(data)
    with pytest.raises(DataDirInUse, match="in use by another worker"):
        lock_data_dir(data)
    first.close()  # the worker stopped
    lock_data_dir(data).close()
