"""Every monitoring piece against the real thing, together.

A real worker decides the example stream on the session's real broker; a real Prometheus
scrapes it every second with the project's recording rules and its alert rules (every `for:`
shortened so that alerts fire within seconds) and alerts a real Alertmanager that runs the
project's routing with its webhooks pointed at a recorder on loopback. Then:

- every query of every Grafana panel (deploy/grafana/generate_dashboard.py) returns data, as an
  instant query and as a range query over the last minute, with the labels its legend names;
- stopping the worker pages (ClaimsStageWorkerDown reaches the pager webhook, firing), and
  starting it again on the same port resolves the page.

Waits poll the Prometheus HTTP API and the webhook recorder, never a fixed sleep.

With every `for:` at 5 s, other alerts fire too and reach the webhooks; only the worker-down
page is asserted. Expected here: ClaimsStageDeadLetterBudgetBurnFast (the example stream is 5 %
dead letters, the page threshold 1.44 %), ClaimsStageAbsent right after Prometheus starts
(service discovery hands over the first target after about 5 s, as long as the shortened
`for:`), ClaimsStageEndToEndLatencyHigh (the burst is produced by a cold producer whose first
batch waits for its connection: its records' timestamps are 0.5 to 1 s old on arrival).
"""

from __future__ import annotations

import math
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.kafka.send import send_lines
from tests.stage_kafka import HOST, StageDeployment, free_port, wait_for

from .examples import example_lines, expected_counts, expected_rows
from .monitoring import (
    ALERT_RULES,
    JOB,
    PrometheusAPI,
    Webhooks,
    alertmanager_config,
    prometheus_config,
    running,
    short_alert_rules,
)
from .support import load_dashboard_generator, require_tool

pytestmark = [pytest.mark.ops, pytest.mark.integration]

SHORT_FOR = "5s"
RANGE_SECONDS = 60
STEP_SECONDS = 1

#: Panel queries that cannot have data in a Prometheus a test starts: (panel title, refId) ->
#: why. For these the test proves only that Prometheus accepts the query (status success),
#: and that the result is empty for exactly that reason.
EXEMPT_FROM_DATA: dict[tuple[str, str], str] = {
    ("Rejection ratio (1h), now and a day earlier", "B"): (
        "`offset 1d` reads the hour that ended a day before the query time; a Prometheus "
        "started by this test has a minute of history, so the series cannot exist"
    ),
    ("Review ratio (1h), now and a day earlier", "B"): (
        "`offset 1d`, as for the rejection ratio: no series a day before a new Prometheus"
    ),
}

REVIEW_POLICY = '[rules.MET-018]\nroute = "review"\n'
"""The worker's policy: validated claims with a MET-018 finding go to review, so the review
panels have data; no outcome changes (MET-018 is a warning)."""

#: Rate queries whose data is all zeros in this test: (panel title, refId) -> why. Every other
#: query with a rate() must show movement (a nonzero value) over the last minute.
FLAT_RATES: dict[tuple[str, str], str] = {
    ("Kafka messages per second", "C"): (
        "claims_output_send_errors_total counts output deliveries the broker refused; "
        "none is refused in this test"
    ),
    ("Transactions (exactly-once)", "B"): (
        "claims_transaction_aborts_total counts aborted transactions; none aborts in this test"
    ),
}

LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _worker_down_alert() -> tuple[str, dict[str, Any]]:
    """The alert rule whose expression is `up{...} == 0`."""
    rules = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))
    found = [
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule and re.fullmatch(r"\s*up(\{[^}]*\})?\s*==\s*0\s*", rule["expr"])
    ]
    assert len(found) == 1, f"expected one alert on `up == 0`, found {found}"
    return found[0]["alert"], found[0]


def _finite(value: str) -> bool:
    return math.isfinite(float(value))


def _check_labels(result: list[dict[str, Any]], legend: str, where: str) -> None:
    wanted = set(LEGEND_LABEL.findall(legend))
    for series in result:
        missing = wanted - set(series["metric"])
        assert not missing, f"{where}: legend {legend!r} needs {missing}, got {series['metric']}"


def _prove_panel_query(
    api: PrometheusAPI, query: dict[str, str], expr: str, now: float
) -> tuple[bool, bool]:
    """Instant and range query of one panel query: (has data instant, has data range)."""
    where = f"{query['title']} [{query['refId']}] {expr}"
    instant = api.query(expr, at=now)
    assert instant["status"] == "success", f"{where}: {instant}"
    assert instant["data"]["resultType"] == "vector", f"{where}: {instant['data']}"
    ranged = api.query_range(expr, now - RANGE_SECONDS, now, STEP_SECONDS)
    assert ranged["status"] == "success", f"{where}: {ranged}"
    assert ranged["data"]["resultType"] == "matrix", f"{where}: {ranged['data']}"

    key = (query["title"], query["refId"])
    if key in EXEMPT_FROM_DATA:
        assert instant["data"]["result"] == [], f"{where}: exempt, yet has data: {instant}"
        assert ranged["data"]["result"] == [], f"{where}: exempt, yet has data: {ranged}"
        return False, False

    samples = instant["data"]["result"]
    assert samples, f"{where}: no data (instant)"
    _check_labels(samples, query["legendFormat"], f"{where} (instant)")
    bad = [s for s in samples if not _finite(s["value"][1])]
    assert not bad, f"{where}: NaN or infinite values (instant): {bad}"

    series = ranged["data"]["result"]
    assert series, f"{where}: no data (range over {RANGE_SECONDS} s)"
    _check_labels(series, query["legendFormat"], f"{where} (range)")
    values = [float(v) for s in series for _, v in s["values"]]
    assert any(math.isfinite(v) for v in values), f"{where}: no finite value in {series}"

    if "rate(" in expr:
        moved = any(math.isfinite(v) and v != 0 for v in values)
        if key in FLAT_RATES:
            assert not moved, f"{where}: listed as flat ({FLAT_RATES[key]}) but moved: remove it"
        else:
            assert moved, f"{where}: a rate that stayed 0 over the last minute: {series}"
    return True, True


def test_worker_prometheus_alertmanager_and_dashboard_together(
    deployment: StageDeployment, tmp_path: Path
) -> None:
    started = time.monotonic()
    prometheus_bin = require_tool("prometheus")
    alertmanager_bin = require_tool("prometheus-alertmanager", "alertmanager")
    dashboard = load_dashboard_generator()
    queries = dashboard.panel_queries()
    for key in (*EXEMPT_FROM_DATA, *FLAT_RATES):
        assert key in {(q["title"], q["refId"]) for q in queries}, f"stale exemption {key}"
    down_alert, down_rule = _worker_down_alert()
    assert down_rule["labels"]["severity"] == "page"
    counts = expected_counts()

    # --- the worker --------------------------------------------------------------------------
    policy = tmp_path / "policy.toml"
    policy.write_text(REVIEW_POLICY)
    # Exactly-once, so that the dashboard's transaction panels have data to show too.
    deployment.worker_env = {
        "CLAIMS_RULES_CONFIG": str(policy),
        "CLAIMS_PROCESSING_GUARANTEE": "exactly_once",
    }
    reviews = sum(
        1 for row in expected_rows() if row["route"] == "validated" and "MET-018" in row["findings"]
    )
    assert reviews > 0, "the example stream has validated claims with a MET-018 warning"
    deployment.create_topics()
    worker, port = deployment.start_worker()
    deployment.wait_healthy(port)
    instance = f"{HOST}:{port}"

    # --- Alertmanager and Prometheus, configured from deploy/ ---------------------------------
    alert_rules, original_for = short_alert_rules(tmp_path / "alert-rules.yml", SHORT_FOR)
    prometheus_port, alertmanager_port = free_port(), free_port()
    while alertmanager_port == prometheus_port:
        alertmanager_port = free_port()
    with Webhooks() as hooks:
        am_config = alertmanager_config(tmp_path / "alertmanager.yml", hooks.url)
        prom_config = prometheus_config(
            tmp_path / "prometheus.yml", instance, f"{HOST}:{alertmanager_port}", alert_rules
        )
        am_url = f"http://{HOST}:{alertmanager_port}"
        prom_url = f"http://{HOST}:{prometheus_port}"
        with (
            running(
                [
                    alertmanager_bin,
                    f"--config.file={am_config}",
                    f"--storage.path={tmp_path / 'alertmanager-data'}",
                    f"--web.listen-address={HOST}:{alertmanager_port}",
                    "--cluster.listen-address=",
                ],
                tmp_path / "alertmanager.log",
                f"{am_url}/-/ready",
            ),
            running(
                [
                    prometheus_bin,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                    f"--web.listen-address={HOST}:{prometheus_port}",
                ],
                tmp_path / "prometheus.log",
                f"{prom_url}/-/ready",
            ),
        ):
            api = PrometheusAPI(prom_url)

            def logs() -> str:
                return (
                    f"{deployment.logs()}\n--- prometheus.log\n"
                    f"{(tmp_path / 'prometheus.log').read_text()[-3000:]}\n"
                    f"--- alertmanager.log\n{(tmp_path / 'alertmanager.log').read_text()[-3000:]}"
                    f"\n--- webhooks\n{hooks.summary()}"
                )

            def target_health() -> str:
                targets = api.targets(JOB)
                if not targets:  # service discovery has not run yet
                    return "unknown"
                assert len(targets) == 1, targets
                assert targets[0]["labels"]["instance"] == instance, targets
                return str(targets[0]["health"])

            wait_for(lambda: target_health() == "up", 30, "the worker's target to be up", logs)
            # Scraped once before any record: the counters' rates see the whole stream.
            wait_for(
                lambda: api.value(f'sum(claims_decisions_total{{job="{JOB}"}})') == 0,
                30,
                "a scrape before the stream",
                logs,
            )

            # --- the example stream --------------------------------------------------------------
            lines = example_lines()
            assert len(lines) == counts.records
            report = send_lines(deployment.settings, lines)
            assert report.delivered == len(lines)

            selector = f'job="{JOB}", instance="{instance}"'
            wait_for(
                lambda: (
                    api.value(f"sum(claims_decisions_total{{{selector}}})") == counts.decisions
                    and api.value(f"sum(claims_dead_letters_total{{{selector}}})")
                    == counts.dead_letters
                ),
                60,
                f"Prometheus to count {counts.decisions} decisions and "
                f"{counts.dead_letters} dead letters",
                logs,
            )
            for outcome in ("validated", "rejected"):
                assert (
                    api.value(f'claims_decisions_total{{{selector}, outcome="{outcome}"}}')
                    == counts.routes[outcome]
                )
            assert api.value(f"claims_reviews_total{{{selector}}}") == reviews
            # The lag gauges update every second here: wait until every partition has one.
            wait_for(
                lambda: (
                    api.value(f"count(claims_consumer_lag{{{selector}}})") == deployment.partitions
                ),
                30,
                "a lag gauge for every partition",
                logs,
            )
            decided_at = time.monotonic()

            # --- every dashboard panel query ---------------------------------------------------
            now = time.time()
            proven_instant = proven_range = 0
            for query in queries:
                expr = dashboard.expand_variables(query["expr"], JOB, instance)
                has_instant, has_range = _prove_panel_query(api, query, expr, now)
                proven_instant += has_instant
                proven_range += has_range
            panels = len({q["title"] for q in queries})
            proven_panels = len(
                {q["title"] for q in queries if (q["title"], q["refId"]) not in EXEMPT_FROM_DATA}
            )

            # --- the worker goes down: a page ----------------------------------------------------
            stopped_at = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) is not None
            wait_for(
                lambda: target_health() == "down", 30, "Prometheus to see the worker down", logs
            )
            firing = wait_for(
                lambda: hooks.find(down_alert, "pager", "firing", since=stopped_at),
                60,
                f"{down_alert} firing at the pager webhook",
                logs,
            )
            paged_at = time.monotonic()
            [alert] = [a for a in firing["alerts"] if a["labels"]["alertname"] == down_alert]
            assert alert["labels"]["instance"] == instance, alert
            assert alert["labels"]["job"] == JOB, alert
            assert alert["labels"]["severity"] == "page", alert
            assert alert["annotations"]["runbook_url"], alert

            # --- and comes back on the same port: resolved ----------------------------------------
            restarted, same_port = deployment.start_worker(web_port=port)
            assert same_port == port
            deployment.wait_healthy(port)
            wait_for(lambda: target_health() == "up", 30, "the worker's target up again", logs)
            resolved = wait_for(
                lambda: hooks.find(down_alert, "pager", "resolved", since=paged_at),
                60,
                f"{down_alert} resolved at the pager webhook",
                logs,
            )
            resolved_at = time.monotonic()
            [alert] = [a for a in resolved["alerts"] if a["labels"]["alertname"] == down_alert]
            assert alert["labels"]["instance"] == instance, alert
            assert restarted.poll() is None

            notified = sorted(
                {
                    (payload["receiver"], payload["status"], a["labels"]["alertname"])
                    for _, _, payload in hooks.notifications()
                    for a in payload["alerts"]
                }
            )

    duration = time.monotonic() - started
    print(
        f"\nreal components: {duration:.1f} s in all "
        f"(worker up and stream decided in {decided_at - started:.1f} s, "
        f"paged {paged_at - stopped_at:.1f} s after SIGTERM, "
        f"resolved {resolved_at - paged_at:.1f} s after the page)"
    )
    print(
        f"dashboard: {len(queries)} queries in {panels} panels; "
        f"proven with data: {proven_instant} instant, {proven_range} range "
        f"({proven_panels} panels); exempt from data: {len(EXEMPT_FROM_DATA)}"
    )
    for (title, ref), reason in EXEMPT_FROM_DATA.items():
        print(f"  exempt  {title} [{ref}]: {reason}")
    for (title, ref), reason in FLAT_RATES.items():
        print(f"  flat    {title} [{ref}]: {reason}")
    print(f"alerts shortened from {original_for} to for: {SHORT_FOR}")
    print(f"webhook notifications (receiver, status, alert): {notified}")
