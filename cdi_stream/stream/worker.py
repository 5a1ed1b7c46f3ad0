"""Starting a worker: check the rules, create the topics, run the faust app."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import faust

from cdi_stream.broker import create_topics
from cdi_stream.metrics import Metrics
from cdi_stream.rules.book import RuleBook
from cdi_stream.runtime import tune_gc
from cdi_stream.settings import Settings, unknown_env_vars
from cdi_stream.stream.app import build_app

COMPACT = {"cleanup.policy": "compact"}
log = logging.getLogger(__name__)


def ensure_topics(settings: Settings) -> None:
    """Every topic the app uses, with the configured partition count.

    Created explicitly because brokers that auto-create topics pick their own
    partition count, and a topic with another count than the app expects would
    re-map keys: a mismatch is a start-up error, never a silent repair.
    """
    topics = {name: settings.partitions for name in settings.topics}
    topics[settings.changelog_topic] = settings.partitions
    create_topics(
        ",".join(settings.bootstrap_servers),
        topics,
        replication=settings.replication_factor,
        config={settings.changelog_topic: COMPACT},
        client_config=settings.kafka_python_config("admin"),
    )


SHUTDOWN_TIMEOUT_EXIT = 1


class _Worker(faust.Worker):
    """faust's worker, with a bound on how long stopping may take.

    Stopping flushes the producer and commits offsets. With the broker gone both wait
    for ever, and a consumer thread outlives the event loop, so the process would never
    exit: the orchestrator would wait out its grace period, and a worker started by
    hand would linger. Everything unflushed is safe to drop: its input offsets were not
    committed either, so the next owner processes that input again.
    """

    def __init__(self, *args: Any, shutdown_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shutdown_timeout = shutdown_timeout

    def on_worker_shutdown(self) -> None:
        super().on_worker_shutdown()
        threading.Thread(
            target=_exit_after,
            args=(self._shutdown_timeout,),
            name="cdi-shutdown-watchdog",
            daemon=True,
        ).start()


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    # Written straight to the file descriptor: a logging handler's lock may be held by
    # the very thread that is stuck.
    message = (
        f"[ERROR] stopping took longer than {seconds:g} s (CDI_SHUTDOWN_TIMEOUT_SECONDS; is "
        "the broker reachable?): exiting without flushing; uncommitted input will be "
        "processed again\n"
    )
    with contextlib.suppress(OSError):
        os.write(2, message.encode())
    os._exit(SHUTDOWN_TIMEOUT_EXIT)


class DataDirInUse(RuntimeError):
    """Another worker holds the data directory: a clear start-up error, not a crash."""


class DataDirUnusable(RuntimeError):
    """The data directory cannot be created (a file in the way, no permission)."""


def make_data_dir(path: Path) -> None:
    """Created before faust starts, parents included: faust makes only the last part,
    and would fail with a traceback once the topics were already set up."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirUnusable(
            f"cannot use {path} as the data directory (CDI_DATA_DIR): {exc.strerror}"
        ) from None


def lock_data_dir(path: Path) -> BinaryIO:
    """Hold the data directory for this process.

    RocksDB opens a database in one process at a time; a second worker on the same
    directory would retry for half a minute, crash, and force two rebalances on the
    group. The lock lasts as long as the returned file stays open (the process's life).
    """
    path.mkdir(parents=True, exist_ok=True)
    handle = (path / "worker.lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(
            f"data directory {path} is in use by another worker; give each worker its "
            "own CDI_DATA_DIR"
        ) from None
    return handle


class MetricsPortInUse(RuntimeError):
    """The metrics endpoint could not listen: a clear start-up error, not a traceback."""


def serve_metrics(settings: Settings) -> Metrics:
    """The worker's metrics, served on ``/metrics`` unless the port is 0."""
    metrics = Metrics(process=True)
    if settings.metrics_port:
        host = settings.metrics_address()
        try:
            metrics.serve(settings.metrics_port, host)
        except OSError as exc:
            raise MetricsPortInUse(
                f"cannot serve metrics on {host}:{settings.metrics_port}: {exc.strerror}; "
                "set CDI_METRICS_PORT to a free port, or 0 to turn the endpoint off"
            ) from exc
    return metrics


def run_worker(settings: Settings, *, loglevel: str = "info") -> None:
    """Run until stopped (Ctrl-C or SIGTERM); raises on a start-up error."""
    book = RuleBook.from_directory(settings.rules_directory())
    make_data_dir(settings.data_directory())
    lock = lock_data_dir(settings.data_directory()) if settings.store != "memory://" else None
    try:
        _run_locked(settings, book, loglevel)
    finally:
        if lock is not None:
            lock.close()


def _run_locked(settings: Settings, book: RuleBook, loglevel: str) -> None:
    ensure_topics(settings)
    metrics = serve_metrics(settings)
    app, _ = build_app(settings, book, metrics)
    logging.getLogger("cdi_stream").setLevel(loglevel.upper())

    @app.task  # type: ignore[untyped-decorator]
    async def announce() -> None:
        # Logged once faust has set up logging; earlier lines would go nowhere.
        if settings.metrics_port:
            log.info(
                "metrics on http://%s:%d/metrics", settings.metrics_address(), settings.metrics_port
            )
        for name in unknown_env_vars():
            log.warning("ignored, not a setting: %s", name)

    worker = _Worker(
        app, loglevel=loglevel, quiet=True, shutdown_timeout=settings.shutdown_timeout_seconds
    )
    tune_gc()
    worker.execute_from_commandline()
