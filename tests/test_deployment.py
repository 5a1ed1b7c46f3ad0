"""Private deployments: names of their own, and nothing inherited from the caller."""

from __future__ import annotations

import pytest

from cdi_stream.deployment import PrivateDeployment
from cdi_stream.settings import load_settings


def test_two_new_deployments_share_no_topic_or_group() -> None:
    a, b = PrivateDeployment.new("t"), PrivateDeployment.new("t")
    assert not ({*a.topics, a.group} & {*b.topics, b.group})


def test_the_environment_gives_a_worker_exactly_these_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDI_CLOCK", "event")
    monkeypatch.setenv("CDI_STORE", "rocksdb://")
    deployment = PrivateDeployment("staging", incidents_topic="shared.incidents")
    env = deployment.env("127.0.0.1:9999", CDI_PARTITIONS="2")
    assert "CDI_CLOCK" not in env and "CDI_STORE" not in env  # nothing leaks in
    monkeypatch.delenv("CDI_CLOCK")
    monkeypatch.delenv("CDI_STORE")
    for name, value in env.items():
        if name.startswith("CDI_"):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.topics == [
        "shared.incidents",
        "staging.decisions",
        "staging.review",
        "staging.dlq",
    ]
    assert settings.consumer_group == "staging-cdi"
    assert settings.partitions == 2
    assert settings.bootstrap_servers == ["127.0.0.1:9999"]
    assert load_settings(**deployment.settings()).topics == settings.topics
