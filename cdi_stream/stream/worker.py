"""Starting a worker: check the rules, create the topics, run the faust app."""

from __future__ import annotations

import logging

import faust

from cdi_stream.broker import create_topics
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.loader import default_rules_dir
from cdi_stream.settings import Settings
from cdi_stream.stream.app import build_app, changelog_topic

COMPACT = {"cleanup.policy": "compact"}


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


def run_worker(settings: Settings, *, loglevel: str = "info") -> None:
    """Run until stopped (Ctrl-C or SIGTERM); raises on a start-up error."""
    book = RuleBook.from_directory(settings.rules_dir or default_rules_dir())
    ensure_topics(settings)
    app, _ = build_app(settings, book)
    logging.getLogger("cdi_stream").setLevel(loglevel.upper())
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
