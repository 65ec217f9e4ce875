"""The Kubernetes manifests (deploy/kubernetes/) hold together: what one names, the other has.

No cluster here, so the invariants are checked on the parsed files: probes on /healthz,
requests sized, the PodMonitor, PodDisruptionBudget and KEDA ScaledObject select the
Deployment's pods, the scaler watches the stage's own group and topic and never adds more
workers than the input topic has partitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.settings import Settings

KUBERNETES = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
MEASURED_PEAK_RSS_MIB = 323
"""A worker's peak RSS draining 100,000 claims (`make bench`, docs/performance.md)."""
"""The worker's memory target (docs/performance.md): the limit must leave room above it."""


def _documents() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text("utf-8")):
            found[document["kind"]] = document
    return found


DOCUMENTS = _documents()


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**20


@pytest.fixture
def deployment() -> dict[str, Any]:
    return DOCUMENTS["Deployment"]


@pytest.fixture
def settings() -> dict[str, str]:
    data: dict[str, str] = DOCUMENTS["ConfigMap"]["data"]
    return data


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _worker(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_every_manifest_has_the_kinds_a_user_needs() -> None:
    assert {
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "PodMonitor",
        "ScaledObject",
        "TriggerAuthentication",
    } <= set(DOCUMENTS)


def test_the_selector_matches_the_pod_template(deployment: dict[str, Any]) -> None:
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= _pod_labels(deployment).items()


def test_probes_read_healthz_on_the_web_port(
    deployment: dict[str, Any], settings: dict[str, str]
) -> None:
    worker = _worker(deployment)
    (port,) = worker["ports"]
    assert port["containerPort"] == Settings().web_port
    assert settings["CLAIMS_WEB_HOST"] == "0.0.0.0"  # reachable from the kubelet
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert worker[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}, probe


def test_liveness_outlasts_a_rebalance(
    deployment: dict[str, Any], settings: dict[str, str]
) -> None:
    """/healthz is 503 while a worker holds no partitions, which a rebalance causes for up to
    a session timeout: only a verdict that lasts well beyond that may restart the pod."""
    liveness = _worker(deployment)["livenessProbe"]
    tolerated = liveness["periodSeconds"] * liveness["failureThreshold"]
    assert tolerated >= 2 * float(settings["CLAIMS_SESSION_TIMEOUT"])
    readiness = _worker(deployment)["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < tolerated


def test_resources_are_requested_and_memory_is_bounded(deployment: dict[str, Any]) -> None:
    resources = _worker(deployment)["resources"]
    assert float(resources["requests"]["cpu"]) >= 1  # a busy worker uses one core
    requested = _mebibytes(resources["requests"]["memory"])
    assert requested >= MEASURED_PEAK_RSS_MIB
    # Headroom above the measured peak: a larger claim mix must not get the pod killed.
    assert _mebibytes(resources["limits"]["memory"]) >= max(requested, MEASURED_PEAK_RSS_MIB * 1.25)
    assert "cpu" not in resources["limits"]  # throttling would add latency, not safety


def test_a_clean_stop_has_time_to_commit(deployment: dict[str, Any]) -> None:
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


def test_the_pod_monitor_scrapes_the_workers(deployment: dict[str, Any]) -> None:
    monitor = DOCUMENTS["PodMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= _pod_labels(deployment).items()
    (endpoint,) = monitor["podMetricsEndpoints"]
    assert endpoint["port"] == _worker(deployment)["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_the_disruption_budget_covers_the_workers(deployment: dict[str, Any]) -> None:
    budget = DOCUMENTS["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= _pod_labels(deployment).items()
    assert budget["maxUnavailable"] == 1


def test_keda_scales_this_deployment_on_the_stage_group_lag(
    deployment: dict[str, Any], settings: dict[str, str]
) -> None:
    scaled = DOCUMENTS["ScaledObject"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["consumerGroup"] == settings["CLAIMS_APP_ID"]
    assert metadata["topic"] == settings["CLAIMS_INPUT_TOPIC"]
    assert metadata["bootstrapServers"] == settings["CLAIMS_KAFKA_BOOTSTRAP"]
    assert int(metadata["lagThreshold"]) > 0
    assert (
        trigger["authenticationRef"]["name"]
        == DOCUMENTS["TriggerAuthentication"]["metadata"]["name"]
    )


def test_keda_never_adds_more_workers_than_partitions(settings: dict[str, str]) -> None:
    scaled = DOCUMENTS["ScaledObject"]["spec"]
    partitions = int(settings["CLAIMS_PARTITIONS"])
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions
    assert scaled["triggers"][0]["metadata"]["allowIdleConsumers"] == "false"


def test_the_deployment_leaves_the_replica_count_to_keda(deployment: dict[str, Any]) -> None:
    assert "replicas" not in deployment["spec"]


def test_workers_mount_the_code_set_store_where_the_settings_name_it(
    deployment: dict[str, Any], settings: dict[str, str]
) -> None:
    """The loaded ICD-10-CM releases reach every worker: the Deployment mounts the store's
    volume, read-only, at CLAIMS_CODE_SETS_DIR, from the claim the manifests define."""
    mounts = {m["name"]: m for m in _worker(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == settings["CLAIMS_CODE_SETS_DIR"]]
    assert mounts[name]["readOnly"] is True  # workers only read; `codes load` writes elsewhere
    claim = volumes[name]["persistentVolumeClaim"]
    assert claim["claimName"] == DOCUMENTS["PersistentVolumeClaim"]["metadata"]["name"]
    # one volume for every worker and the loading pod: more than a ConfigMap's 1 MiB
    assert "ReadWriteMany" in DOCUMENTS["PersistentVolumeClaim"]["spec"]["accessModes"]
    assert Path(settings["CLAIMS_CODE_SETS_DIR"]).is_absolute()
