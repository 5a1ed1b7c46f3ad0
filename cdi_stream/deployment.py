"""A private deployment: one consumer group with topics of its own, named by a prefix.

Several deployments can share a Kafka cluster without seeing each other's events or
state: each has its own input, decision, review and dead-letter topics and its own
consumer group, and so its own changelog. The integration tests, the benchmarks and the
soak run one per worker group on a single local broker; a staging copy can run beside
production the same way.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from cdi_stream.settings import ENV_PREFIX


@dataclass(frozen=True)
class PrivateDeployment:
    prefix: str
    # Read this topic instead of the deployment's own input (a stream published once
    # and replayed by several deployments).
    incidents_topic: str | None = None

    @classmethod
    def new(cls, stem: str) -> PrivateDeployment:
        """A deployment under a prefix no other run has used."""
        return cls(f"{stem}{uuid.uuid4().hex[:8]}")

    @property
    def incidents(self) -> str:
        return self.incidents_topic or f"{self.prefix}.incidents"

    @property
    def decisions(self) -> str:
        return f"{self.prefix}.decisions"

    @property
    def review(self) -> str:
        return f"{self.prefix}.review"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def group(self) -> str:
        return f"{self.prefix}-cdi"

    @property
    def topics(self) -> tuple[str, str, str, str]:
        return (self.incidents, self.decisions, self.review, self.dlq)

    def settings(self) -> dict[str, str]:
        """The names as settings fields (keyword arguments of ``load_settings``)."""
        return {
            "consumer_group": self.group,
            "topic_incidents": self.incidents,
            "topic_decisions": self.decisions,
            "topic_review": self.review,
            "topic_dlq": self.dlq,
        }

    def env(self, bootstrap: str, **variables: str) -> dict[str, str]:
        """The environment of a worker or tool of this deployment: this process's
        environment without its own ``CDI_`` variables (so nothing leaks in from the
        caller), the broker, the names, then ``variables`` (``CDI_...`` names)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env[f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        env.update(
            {f"{ENV_PREFIX}{name.upper()}": value for name, value in self.settings().items()}
        )
        env.update(variables)
        return env
