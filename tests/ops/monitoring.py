"""Real Prometheus and Alertmanager for the operations tests, configured from deploy/.

The project's own files are loaded with PyYAML and transformed for a test (loopback ports,
one-second intervals, short `for:` durations, webhook URLs pointed at a local recorder);
nothing is copied by hand, so a change under deploy/ is what the test runs.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.stage_kafka import wait_for

from .support import ALERTMANAGER_DIR, PROMETHEUS_DIR

HOST = "127.0.0.1"
JOB = "claims-stage"

PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RECORDING_RULES = PROMETHEUS_DIR / "recording-rules.yml"
ALERT_RULES = PROMETHEUS_DIR / "alert-rules.yml"
ALERTMANAGER_CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"


def http_json(url: str, data: Any = None, timeout: float = 10.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def running(
    args: list[str], log: Path, ready_url: str, timeout: float = 60.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process, logging to log, until ready_url answers 200; stop it on exit."""
    with (
        log.open("wb") as output,
        subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT) as process,
    ):
        try:

            def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError(
                        f"{args[0]} exited with {process.returncode}\n{log.read_text()[-4000:]}"
                    )
                return _ready(ready_url)

            wait_for(ready, timeout, f"{args[0]} at {ready_url}", lambda: log.read_text()[-4000:])
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --- configuration transforms -------------------------------------------------------------


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _dump(document: Any, path: Path) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def short_alert_rules(target: Path, for_duration: str = "5s") -> tuple[Path, dict[str, str]]:
    """alert-rules.yml with every `for:` replaced by for_duration; {alert: original for}."""
    rules = _load(ALERT_RULES)
    original: dict[str, str] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule:
                original.setdefault(rule["alert"], str(rule["for"]))
                rule["for"] = for_duration
    assert original, f"no alert with a `for:` in {ALERT_RULES}"
    return _dump(rules, target), original


def prometheus_config(
    target: Path, worker: str, alertmanager: str, alert_rules: Path, interval: str = "1s"
) -> Path:
    """prometheus.yml scraping worker (host:port) every interval as job claims-stage, with
    the project's recording rules and alert_rules, alerting to alertmanager (host:port)."""
    config = _load(PROMETHEUS_CONFIG)
    config["global"]["scrape_interval"] = interval
    config["global"]["scrape_timeout"] = interval
    config["global"]["evaluation_interval"] = interval
    names = [Path(f).name for f in config["rule_files"]]
    assert sorted(names) == sorted([RECORDING_RULES.name, ALERT_RULES.name]), names
    config["rule_files"] = [str(RECORDING_RULES), str(alert_rules)]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == JOB]
    assert len(jobs) == 1, f"no single job {JOB!r} in {PROMETHEUS_CONFIG}"
    job = jobs[0]
    job["scrape_interval"] = interval
    job["scrape_timeout"] = interval
    job["static_configs"] = [{"targets": [worker]}]
    config["scrape_configs"] = [job]
    return _dump(config, target)


def alertmanager_config(target: Path, webhook_base: str, interval: str = "1s") -> Path:
    """alertmanager.yml with every webhook URL's scheme, host and port replaced by
    webhook_base (its path kept), and group_wait/group_interval short on every route."""
    config = _load(ALERTMANAGER_CONFIG)
    base = urllib.parse.urlsplit(webhook_base)
    webhooks = 0
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            url = urllib.parse.urlsplit(webhook["url"])
            webhook["url"] = urllib.parse.urlunsplit(
                (base.scheme, base.netloc, url.path, url.query, "")
            )
            webhooks += 1
    assert webhooks, f"no webhook receiver in {ALERTMANAGER_CONFIG}"

    def shorten(route: dict[str, Any]) -> None:
        route["group_wait"] = interval
        route["group_interval"] = interval
        route["repeat_interval"] = "1h"  # a repeat is not a new notification
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return _dump(config, target)


# --- the webhook recorder -------------------------------------------------------------------


class Webhooks:
    """A loopback HTTP server recording every POSTed JSON body with its path and arrival."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hooks._lock:
                    hooks.received.append((time.monotonic(), self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhooks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def notifications(self) -> list[tuple[float, str, dict[str, Any]]]:
        with self._lock:
            return list(self.received)

    def alertnames(self, path_suffix: str) -> set[str]:
        """Every alert name notified on a path ending so (a receiver's webhook)."""
        return {
            alert["labels"]["alertname"]
            for _, path, payload in self.notifications()
            if path.endswith(path_suffix)
            for alert in payload["alerts"]
        }

    def find(
        self, alertname: str, receiver: str, status: str, since: float = 0.0
    ) -> dict[str, Any] | None:
        """The first notification of receiver, at or after since, whose group has status and
        holds alertname with that status."""
        for arrived, _, payload in self.notifications():
            if arrived < since or payload.get("receiver") != receiver:
                continue
            if payload.get("status") != status:
                continue
            if any(
                alert["labels"].get("alertname") == alertname and alert["status"] == status
                for alert in payload.get("alerts", [])
            ):
                return payload
        return None

    def summary(self) -> str:
        return "\n".join(
            f"{path} {payload.get('receiver')} {payload.get('status')} "
            f"{[a['labels'].get('alertname') for a in payload.get('alerts', [])]}"
            for _, path, payload in self.notifications()
        )


# --- the Prometheus HTTP API ----------------------------------------------------------------


class PrometheusAPI:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            reply = http_json(f"{self.url}{path}?{query}")
        except urllib.error.HTTPError as error:  # 400/422: a bad query, with Prometheus' reason
            reply = json.loads(error.read())
            error.close()
        return reply

    def query(self, expr: str, at: float | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        reply: dict[str, Any] = self.get("/api/v1/query", **params)
        return reply

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[str, Any]:
        reply: dict[str, Any] = self.get(
            "/api/v1/query_range",
            query=expr,
            start=f"{start:.3f}",
            end=f"{end:.3f}",
            step=f"{step:g}",
        )
        return reply

    def value(self, expr: str) -> float | None:
        """The single value of a scalar-like instant query, or None when it has no result."""
        reply = self.query(expr)
        assert reply["status"] == "success", reply
        result = reply["data"]["result"]
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def targets(self, job: str) -> list[dict[str, Any]]:
        reply = self.get("/api/v1/targets", state="active")
        return [t for t in reply["data"]["activeTargets"] if t["labels"].get("job") == job]

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.get("/api/v1/alerts")["data"]["alerts"]
        return alerts
