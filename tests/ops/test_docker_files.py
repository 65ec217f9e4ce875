"""The container files cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"


@pytest.mark.ops
def test_compose_prometheus_config_is_valid_with_the_project_rules(tmp_path: Path) -> None:
    shutil.copy(DOCKER / "prometheus.yml", tmp_path / "prometheus.yml")
    for rules in ("recording-rules.yml", "alert-rules.yml"):
        shutil.copy(ROOT / "deploy" / "prometheus" / rules, tmp_path / rules)
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_wires_broker_topics_worker_and_prometheus() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"kafka", "topics", "worker", "prometheus"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["topics"]["command"] == ["topics", "create"]
    bootstrap = services["worker"]["environment"]["CLAIMS_KAFKA_BOOTSTRAP"]
    assert bootstrap == services["topics"]["environment"]["CLAIMS_KAFKA_BOOTSTRAP"]
    assert (
        "INTERNAL://" + bootstrap in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert services["worker"]["depends_on"]["topics"]["condition"] == (
        "service_completed_successfully"
    )
    for service in ("topics", "worker"):
        build = services[service]["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == (
            DOCKER / "Dockerfile"
        ).resolve()


def test_dockerfile_runs_the_worker_unprivileged_with_a_health_check() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["claims-stage"]' in dockerfile
    assert 'CMD ["worker"]' in dockerfile
    assert "USER 10001" in dockerfile
    assert "/healthz" in dockerfile
