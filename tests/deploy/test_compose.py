"""deploy/docker-compose.yml: docker-compose accepts it, and it wires the stack as the
operations guide describes (KRaft Kafka, the contract's topics, two workers in one
group, the simulator on demand, Prometheus and Grafana with their files)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.support import DEPLOY, METRICS_PORT, PROMETHEUS, TOPICS, run, tool

COMPOSE = DEPLOY / "docker-compose.yml"
WORKERS = ("worker-1", "worker-2")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, Any]:
    result: dict[str, Any] = compose()["services"]
    return result


def test_docker_compose_accepts_the_file() -> None:
    """Schema validation and interpolation by docker-compose itself (no engine needed)."""
    out = run([tool("docker-compose"), "-f", COMPOSE, "--profile", "simulator", "config"])
    resolved = yaml.safe_load(out.stdout)
    assert set(resolved["services"]) == set(services())
    # Defaults of ${...} interpolated: eight partitions everywhere.
    assert resolved["services"]["worker-1"]["environment"]["CDI_PARTITIONS"] == "8"
    assert resolved["services"]["topics"]["environment"]["PARTITIONS"] == "8"


def test_kafka_runs_in_kraft_mode() -> None:
    kafka = services()["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "zookeeper" not in " ".join(services())
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka["healthcheck"]["test"]


def test_topics_are_created_once_with_eight_partitions() -> None:
    topics = services()["topics"]
    assert topics["restart"] == "no"
    script = " ".join(topics["command"])
    loop = re.search(r"for topic in ([^;]+);", script)
    assert loop is not None
    assert tuple(loop.group(1).split()) == TOPICS
    assert "--partitions" in script and "--if-not-exists" in script
    assert topics["environment"]["PARTITIONS"] == "${CDI_PARTITIONS:-8}"


def test_two_workers_share_one_group_in_production() -> None:
    envs = [services()[name]["environment"] for name in WORKERS]
    assert envs[0] == envs[1], "workers differ only in their name and data volume"
    env = envs[0]
    assert env["CDI_PROFILE"] == "production"
    assert env["CDI_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert str(env["CDI_METRICS_PORT"]) == str(METRICS_PORT)
    assert env["CDI_PARTITIONS"] == "${CDI_PARTITIONS:-8}"
    volumes = [services()[name]["volumes"][0].split(":") for name in WORKERS]
    assert volumes[0][1] == volumes[1][1] == env["CDI_DATA_DIR"]
    assert volumes[0][0] != volumes[1][0], "each worker needs its own RocksDB volume"
    for name in WORKERS:
        worker = services()[name]
        assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert worker["build"]["dockerfile"] == "deploy/Dockerfile"


def test_simulator_is_optional_and_publishes() -> None:
    simulator = services()["simulator"]
    assert simulator["profiles"] == ["simulator"]
    assert simulator["command"][:2] == ["simulate", "--publish"]
    assert simulator["image"] == services()["worker-1"]["image"]
    # Regression: without it the simulator expected 8 partitions and refused to publish
    # to topics created with another CDI_PARTITIONS.
    assert simulator["environment"]["CDI_PARTITIONS"] == "${CDI_PARTITIONS:-8}"


def test_prometheus_scrapes_every_worker_and_loads_the_rules() -> None:
    mounts = services()["prometheus"]["volumes"]
    for name in ("prometheus.yml", "alerts.yml"):
        assert f"./prometheus/{name}:/etc/prometheus/{name}:ro" in mounts
        assert (PROMETHEUS / name).is_file()
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "cdi-stream")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:{METRICS_PORT}" for name in WORKERS}


def test_bind_mounts_exist() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


def test_every_cdi_variable_is_a_setting(settings_variables: set[str]) -> None:
    for name, service in services().items():
        for variable in service.get("environment", {}):
            if variable.startswith("CDI_"):
                assert variable in settings_variables, f"{name}: unknown setting {variable}"
