"""The Alertmanager configuration under deploy/alertmanager, checked by the real tools.

amtool (Alertmanager 0.25, installed by deploy/ops-tools.sh) validates the file and resolves
routes; a real Alertmanager on a loopback port shows the inhibition and the delivery to each
receiver's webhook. Every test here fails when the tools are missing.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.monitoring import Webhooks, alertmanager_config, running
from tests.stage_kafka import free_port, wait_for

from .support import ALERTMANAGER_DIR, PROMETHEUS_DIR, require_tool

CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"

pytestmark = pytest.mark.ops


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    amtool = require_tool("amtool")
    return subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60, check=False)


def test_amtool_check_config() -> None:
    result = _amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "1 inhibit rules" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ClaimsStageWorkerDown", "severity=page", "job=claims-stage"], "pager"),
        (["alertname=ClaimsStageLagGrowing", "severity=ticket", "job=claims-stage"], "ticket"),
        # an alert without a severity still reaches a human
        (["alertname=SomethingElse"], "ticket"),
    ],
    ids=["page", "ticket", "no-severity"],
)
def test_amtool_routes(labels: list[str], receiver: str) -> None:
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_amtool_routes_can_fail() -> None:
    """--verify.receivers really verifies: a page is not routed to the ticket receiver."""
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        "--verify.receivers=ticket",
        "severity=page",
    )
    assert result.returncode != 0


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS_DIR / "alert-rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: f"{r['alert']}-{r['for']}")
def test_every_alert_routes_by_its_severity(rule: dict[str, Any]) -> None:
    labels = {"alertname": rule["alert"], "job": "claims-stage", **rule["labels"]}
    receiver = {"page": "pager", "ticket": "ticket"}[labels["severity"]]
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={receiver}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- a real Alertmanager ------------------------------------------------------------------


def _http_json(url: str, data: Any = None) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST" if body else "GET",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Webhooks]]:
    """The example configuration, its webhook URLs pointed at a local recorder and its
    group waits shortened (the routes, receivers and inhibitions are what is tested),
    running."""
    binary = require_tool("alertmanager", "prometheus-alertmanager")
    with Webhooks() as hooks:
        config = alertmanager_config(tmp_path / "alertmanager.yml", hooks.url)
        assert f":{hooks.port}/claims-stage/pager" in config.read_text()
        url = f"http://127.0.0.1:{free_port()}"
        with running(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
                "--cluster.listen-address=",  # no gossip: a single instance
            ],
            tmp_path / "alertmanager.log",
            f"{url}/-/ready",
        ):
            yield url, hooks


def test_page_inhibits_tickets_of_its_family_and_receivers_get_their_alerts(
    alertmanager: tuple[str, Webhooks],
) -> None:
    url, hooks = alertmanager
    common = {"job": "claims-stage"}
    alerts = [
        # a page and a ticket of the same family: the ticket is inhibited
        {
            "alertname": "ClaimsStageStalled",
            "severity": "page",
            "family": "progress",
            "instance": "w1",
        },
        {"alertname": "ClaimsStageLagGrowing", "severity": "ticket", "family": "progress"},
        # a ticket of another family goes through
        {"alertname": "ClaimsStageVersionSkew", "severity": "ticket", "family": "versions"},
    ]
    _http_json(f"{url}/api/v2/alerts", [{"labels": {**common, **labels}} for labels in alerts])

    def states() -> dict[str, dict[str, Any]]:
        return {a["labels"]["alertname"]: a["status"] for a in _http_json(f"{url}/api/v2/alerts")}

    def all_three() -> dict[str, dict[str, Any]] | None:
        current = states()
        return current if len(current) == 3 else None

    status = wait_for(all_three, 30, "the three alerts")
    assert status["ClaimsStageLagGrowing"]["state"] == "suppressed"
    assert status["ClaimsStageLagGrowing"]["inhibitedBy"]
    assert status["ClaimsStageStalled"]["state"] == "active"
    assert status["ClaimsStageVersionSkew"]["state"] == "active"

    wait_for(
        lambda: (
            "ClaimsStageStalled" in hooks.alertnames("/pager")
            and "ClaimsStageVersionSkew" in hooks.alertnames("/ticket")
        ),
        60,
        "a page and a ticket at the webhooks",
        lambda: f"webhooks received: {hooks.received}",
    )
    assert hooks.alertnames("/pager") == {"ClaimsStageStalled"}
    assert hooks.alertnames("/ticket") == {"ClaimsStageVersionSkew"}
