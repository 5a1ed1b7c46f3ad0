"""Kafka credentials stay out of a worker's output, even when authentication fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.workers import Topics
from tests.test_privacy import PASSWORD, password_forms


def test_a_worker_never_logs_its_sasl_password(broker: str, tmp_path: Path) -> None:
    """The local broker offers no SASL mechanism, so the handshake of the worker's first
    client (the one that sets up the topics) fails and the worker stops at once; what it
    prints, at debug level, must not hold the password."""
    env = Topics().env(
        broker,
        CDI_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        CDI_SASL_MECHANISM="PLAIN",
        CDI_SASL_USERNAME="cdi",
        CDI_SASL_PASSWORD=PASSWORD,
        CDI_DATA_DIR=str(tmp_path / "data"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "cdi_stream.cli", "worker", "--loglevel", "debug"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert result.returncode == 2
    assert "over SASL_PLAINTEXT" in output  # authentication was attempted
    assert [form for form in password_forms() if form in output] == []
