"""Starting a worker: check the rules, create the topics, run the faust app."""

from __future__ import annotations

import logging

import faust

from cdi_stream.broker import create_topics
from cdi_stream.metrics import Metrics
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.loader import default_rules_dir
from cdi_stream.runtime import tune_gc
from cdi_stream.settings import Settings, unknown_env_vars
from cdi_stream.stream.app import build_app, changelog_topic

COMPACT = {"cleanup.policy": "compact"}
log = logging.getLogger(__name__)


def ensure_topics(settings: Settings) -> None:
    """Every topic the app uses, with the configured partition count.

    Created explicitly because brokers that auto-create topics pick their own
    partition count, and a topic with another count than the app expects would
    re-map keys: a mismatch is a start-up error, never a silent repair.
    """
    topics = {name: settings.partitions for name in settings.topics}
    topics[changelog_topic(settings)] = settings.partitions
    create_topics(
        ",".join(settings.bootstrap_servers),
        topics,
        replication=settings.replication_factor,
        config={changelog_topic(settings): COMPACT},
    )


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
    book = RuleBook.from_directory(settings.rules_dir or default_rules_dir())
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

    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    tune_gc()
    worker.execute_from_commandline()
