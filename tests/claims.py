"""Building encounter events for tests, in the shape the catalogue's examples use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATE_OF_SERVICE = "2026-05-15"  # inside the catalogue's 2026-04-01..2026-09-30


def encounter(
    diagnoses: list[str],
    procedures: list[str] | None = None,
    *,
    setting: str = "outpatient",
    treatment_directed_at: str | None = None,
    primary_status: str | None = None,
    tnm: str | None = None,
    reason: str | None = None,
    event_id: str = "evt-test-1",
    claim_id: str = "CLM-TEST-1",
    date_of_service: str = DATE_OF_SERVICE,
    discharge_date: str | None = None,
) -> dict[str, Any]:
    """An encounter event dict; procedures get one unit each, as in the catalogue."""
    context = {
        "reason_for_encounter": reason,
        "treatment_directed_at": treatment_directed_at,
        "primary_status": primary_status,
        "tnm": tnm,
    }
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id,
        "claim_id": claim_id,
        "setting": setting,
        "date_of_service": date_of_service,
        "context": {k: v for k, v in context.items() if v is not None},
        "diagnoses": [{"sequence": i, "code": c} for i, c in enumerate(diagnoses, 1)],
        "procedures": [{"line": i, "code": c} for i, c in enumerate(procedures or [], 1)],
    }
    if discharge_date is not None:
        event["discharge_date"] = discharge_date
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def claims_in(path: Path) -> int:
    """How many claims an example file holds, counted on its text: CLM segments of an 837,
    Claim and ExplanationOfBenefit resources of FHIR JSON."""
    text = path.read_text()
    if path.suffix == ".x12":
        return text.count("\nCLM*")
    return text.count('"resourceType": "Claim"') + text.count(
        '"resourceType": "ExplanationOfBenefit"'
    )
