"""The worker's status page (/status) as a person sees it: rendered by real headless Chromium.

A real worker on the session's broker decides the example stream; Chromium then loads the
page, takes a screenshot (also kept as docs/status-page.png) and dumps the DOM after
rendering, which must show what the stream came to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from stream import __version__
from stream.core.rules import RULESET_VERSION
from stream.kafka.send import send_lines
from tests.stage_kafka import HOST, StageDeployment, scrape, wait_for

from .browser import dump_dom, keep_for_docs, parse_dom, png_size, screenshot
from .examples import example_lines, expected_counts, expected_rows, metrics_match
from .support import REPO

pytestmark = [pytest.mark.ops, pytest.mark.integration]

WIDTH, HEIGHT = 1280, 800
DOCS_SCREENSHOT = REPO / "docs" / "status-page.png"
ICD10CM_COVERAGE = "FY2023-FY2027 (2022-10-01..2027-09-30)"
OUTCOME_LABELS = {"validated": "validated", "rejected": "rejected", "dead_letter": "dead letters"}


def _number(text: str) -> int:
    match = re.fullmatch(r"([\d,]+)", text)
    assert match, f"not a count: {text!r}"
    return int(match.group(1).replace(",", ""))


def _input_partitions(deployment: StageDeployment) -> list[int]:
    """The input topic's partitions, as the broker reports them."""
    topic = deployment.settings.input_topic
    metadata = AdminClient({"bootstrap.servers": deployment.bootstrap}).list_topics(topic, 30)
    return sorted(metadata.topics[topic].partitions)


def test_status_page_in_a_real_browser(deployment: StageDeployment, tmp_path: Path) -> None:
    counts = expected_counts()
    deployment.create_topics()
    _, port = deployment.start_worker()
    deployment.wait_healthy(port)
    partitions = _input_partitions(deployment)
    assert len(partitions) == deployment.partitions

    lines = example_lines()
    assert len(lines) == counts.records
    report = send_lines(deployment.settings, lines)
    assert report.delivered == len(lines)

    wait_for(
        lambda: metrics_match(scrape(port), counts), 60, "every record decided", deployment.logs
    )

    def drained() -> bool:  # every partition's lag measured, and nothing waiting
        lag = {k: v for k, v in scrape(port).items() if k.startswith("claims_consumer_lag{")}
        return len(lag) == len(partitions) and sum(lag.values()) == 0

    wait_for(drained, 60, "the lag of every partition to be measured at 0", deployment.logs)

    url = f"http://{HOST}:{port}/status"

    # --- the screenshot ------------------------------------------------------------------
    shot = tmp_path / "status-page.png"
    screenshot(url, shot, WIDTH, HEIGHT)
    assert png_size(shot) == (WIDTH, HEIGHT)
    assert shot.stat().st_size > 10_000, "a blank page compresses to almost nothing"
    keep_for_docs(shot, DOCS_SCREENSHOT)

    # --- the DOM after rendering ---------------------------------------------------------
    document = dump_dom(url)
    dom = parse_dom(document)
    for element_id in (
        "health",
        "rate",
        "outcomes",
        "rules",
        "dead-letters",
        "code-sets",
        "lag",
        "versions",
    ):
        assert element_id in dom.text, f"no element #{element_id} in\n{document}"

    assert dom.text["health"] == "healthy", document

    outcomes = {row[0]: _number(row[1]) for row in dom.tables["outcomes"]}
    assert outcomes == {label: counts.routes[route] for route, label in OUTCOME_LABELS.items()}, (
        outcomes
    )

    versions = {row[0]: row[1] for row in dom.tables["versions"]}
    assert {k: v for k, v in versions.items() if k != "ICD-10-CM"} == {
        "claims-stage": __version__,
        "ruleset": RULESET_VERSION,
    }, versions
    assert versions["ICD-10-CM"].startswith(ICD10CM_COVERAGE), versions

    by_year = {row[0]: _number(row[1]) for row in dom.tables["code-sets"]}
    assert sum(by_year.values()) == sum(counts.routes[r] for r in ("validated", "rejected"))
    assert list(by_year) == ["FY2023", "FY2024", "FY2025", "FY2026", "FY2027"], by_year
    # the covered dates and the claims judged by a nearest code set (MET-042)
    nearest = sum(1 for row in expected_rows() if "MET-042" in (row["findings"] or {}))
    coverage = dom.text["code-sets-coverage"]
    assert coverage.startswith("covered through 2027-09-30 ("), coverage
    assert f"; {nearest} judged by the nearest set (MET-042)" in coverage, coverage

    dead_letters = {row[0]: _number(row[1]) for row in dom.tables["dead-letters"]}
    assert dead_letters == dict(counts.dead_letter_kinds), dead_letters

    lag_rows = {row[0]: row[1:] for row in dom.tables["lag"]}
    assert set(lag_rows) == {f"partition {p}" for p in partitions}, lag_rows
    for name, cells in lag_rows.items():
        assert cells == ["0 waiting", "0.0 s behind"], (name, cells)

    # Top failing rules: error findings only, each with its true count, most frequent first.
    errors = {rule: n for (rule, severity), n in counts.findings.items() if severity == "error"}
    shown: list[tuple[str, int]] = []
    for cells in dom.tables["rules"]:
        match = re.match(r"(MET-\d{3}) error\b", cells[0])
        assert match, cells
        shown.append((match.group(1), _number(cells[1])))
    assert shown, document
    for rule, n in shown:
        assert errors.get(rule) == n, (rule, n, errors.get(rule))
    assert [n for _, n in shown] == sorted((n for _, n in shown), reverse=True), shown
    assert shown[0][1] == max(errors.values()), shown
    assert len(shown) == min(8, len(errors))

    # self-contained: nothing loaded or linked from elsewhere, and it refreshes itself
    external = [
        (tag, name, value)
        for tag, name, value in dom.urls()
        if "http" in value.lower() or value.strip().startswith("//")
    ]
    assert not external, f"external assets or links: {external}"
    assert not any(re.search(r"url\(|@import", style) for style in dom.styles), dom.styles
    refresh = [m for m in dom.metas() if m.get("http-equiv", "").lower() == "refresh"]
    assert len(refresh) == 1, dom.metas()
    assert re.fullmatch(r"\d+", refresh[0]["content"].strip()), refresh
    assert int(refresh[0]["content"]) > 0
    print(f"\nstatus page: {url} -> {DOCS_SCREENSHOT} ({WIDTH}x{HEIGHT})")
