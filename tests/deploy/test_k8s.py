"""deploy/k8s: every manifest valid against the Kubernetes API schemas, the custom
resources complete, the objects referring to each other by the right names, and the
generated manifests in step with rules/ and the alert rules."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from tests.deploy.support import JOB, K8S, METRICS_PORT, ROOT, run

# The oldest Kubernetes release the manifests are meant for, and the newest the
# validator knows.
KUBERNETES_VERSIONS = ("1.27.0", "latest")
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
WORKER_LABELS = {"app.kubernetes.io/name": "cdi-stream", "app.kubernetes.io/component": "worker"}


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@functools.cache
def _resources() -> tuple[tuple[Path, dict[str, Any]], ...]:
    return tuple((path, doc) for path in manifest_files() for doc in documents(path))


def resources() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every manifest, parsed once (tests that change one work on a deep copy)."""
    return iter(_resources())


def find(kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        d
        for _, d in resources()
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def worker() -> dict[str, Any]:
    return find("StatefulSet")


def container() -> dict[str, Any]:
    (main,) = worker()["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = main
    return result


BUILTIN = [
    (f"{path.name}:{doc['kind']}", doc)
    for path, doc in resources()
    if doc["kind"] not in CUSTOM_KINDS
]


@pytest.fixture(scope="module")
def validate() -> Iterator[Any]:
    """kubernetes-validate, reading each bundled schema file once instead of per call."""
    module = pytest.importorskip("kubernetes_validate")
    with mock.patch.object(
        module.utils, "schema_contents", functools.cache(module.utils.schema_contents)
    ):
        yield module


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("where", "resource"), BUILTIN, ids=[w for w, _ in BUILTIN])
def test_manifest_matches_the_api_schema(
    where: str, resource: dict[str, Any], version: str, validate: Any
) -> None:
    """Strict: unknown fields (a typo, a field in the wrong place) are errors too."""
    if version == "latest":
        version = validate.utils.latest_version()
    validate.validate(resource, version, strict=True)


def test_validator_rejects_a_misplaced_field(validate: Any) -> None:
    broken = copy.deepcopy(worker())
    broken["spec"]["template"]["spec"]["containers"][0]["probes"] = {}
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, validate.utils.latest_version(), strict=True)


def test_every_manifest_names_the_namespace() -> None:
    for path, doc in resources():
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == "cdi-stream"
        else:
            assert doc["metadata"].get("namespace") == "cdi-stream", path.name


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifest_files()} - {"secret.example.yaml"}


def test_kustomize_builds_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (its built-in kustomize renders deploy/k8s)")
    out = run([kubectl, "kustomize", K8S])
    kinds = {d["kind"] for d in yaml.safe_load_all(out.stdout) if d}
    assert {"StatefulSet", "Service", "ServiceMonitor", "PodDisruptionBudget"} <= kinds
    assert "image: registry.example.org/cdi-stream:" in out.stdout


def test_generated_manifests_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, K8S / "generate.py", "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_rules_configmap_holds_every_rule_file() -> None:
    data = find("ConfigMap", "cdi-stream-rules")["data"]
    files = {p.name: p.read_text() for p in (ROOT / "rules").glob("*.y*ml")}
    assert data == files


def test_service_monitor_is_complete() -> None:
    monitor = find("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    service = find("Service")
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert spec["endpoints"]
    for endpoint in spec["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint.get("path", "/metrics") == "/metrics"
    # The operator names the job after the Service: the alert rules select it.
    assert service["metadata"]["name"] == JOB
    assert "jobLabel" not in spec


def test_prometheus_rule_is_complete() -> None:
    rule = find("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = rule["spec"]["groups"]
    assert groups
    for group in groups:
        assert group["name"] and group["rules"]
        for item in group["rules"]:
            assert ("alert" in item) != ("record" in item)
            assert item["expr"].strip()


def test_workers_wiring() -> None:
    sts = worker()
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    main = container()
    assert spec["selector"]["matchLabels"] == WORKER_LABELS
    assert WORKER_LABELS.items() <= spec["template"]["metadata"]["labels"].items()
    assert spec["serviceName"] == find("Service")["metadata"]["name"]
    assert find("Service")["spec"]["selector"] == WORKER_LABELS
    assert find("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == WORKER_LABELS
    config = find("ConfigMap", "cdi-stream-env")
    refs = {
        ("configMap" if "configMapRef" in e else "secret"): next(iter(e.values()))["name"]
        for e in main["envFrom"]
    }
    assert refs["configMap"] == config["metadata"]["name"]
    assert refs["secret"] == find("Secret")["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["rules"]["configMap"]["name"] == "cdi-stream-rules"
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    assert "subPath" not in mounts["rules"], "a subPath mount never sees ConfigMap updates"
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["CDI_RULES_DIR"] == mounts["rules"]["mountPath"]
    assert env["CDI_DATA_DIR"] == mounts["data"]["mountPath"]
    assert [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]] == ["data"]
    assert config["data"]["CDI_STORE"] == "rocksdb://"
    assert int(config["data"]["CDI_PARTITIONS"]) >= spec["replicas"]


def test_workers_probes_and_resources() -> None:
    main = container()
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports["metrics"] == METRICS_PORT
    assert int(find("ConfigMap", "cdi-stream-env")["data"]["CDI_METRICS_PORT"]) == METRICS_PORT
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        action = main[probe].get("httpGet") or main[probe].get("tcpSocket")
        assert action is not None and action["port"] in ("metrics", METRICS_PORT), probe
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(main["resources"][kind])


def test_workers_run_non_root() -> None:
    pod = worker()["spec"]["template"]["spec"]
    main = container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    context = main["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False


def test_secret_example_holds_placeholders_only(settings_variables: set[str]) -> None:
    secret = find("Secret")
    assert set(secret["stringData"]) == {"CDI_SASL_USERNAME", "CDI_SASL_PASSWORD"}
    assert set(secret["stringData"].values()) == {"change-me"}
    config = find("ConfigMap", "cdi-stream-env")["data"]
    assert set(config) | set(secret["stringData"]) <= settings_variables
