"""The memory measurement quoted in docs/operations.md still runs (on a tiny stream)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.deploy.support import DEPLOY, ROOT

SCRIPT = DEPLOY / "sizing" / "measure_state_memory.py"


def test_measurement_runs_with_the_worker_state_layout() -> None:
    command = [sys.executable, str(SCRIPT), "--one", "worker-memory", "--incidents", "120"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["held"] == 120
    assert result["events"] > result["held"]
    assert result["record_bytes_mean"] > 0


def test_operations_guide_gives_the_command() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert "deploy/sizing/measure_state_memory.py" in guide
