"""Small claim files for the reader tests: events written as 837s and FHIR by
`bench.claimfiles`, then broken or reshaped the way other senders write them."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

from bench import claimfiles
from stream.cli.readers import read_input
from stream.core.adapters.formats import AdaptedClaim
from stream.core.adapters.x12 import InterchangeReader
from stream.core.contracts import DeadLetter, Decision, FileSource
from stream.core.decision import Decider, Output

CREATED = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)
SOURCE = FileSource(file="test", line=1)


def event(
    claim_id: str,
    diagnoses: list[str],
    procedures: list[str] | None = None,
    *,
    setting: str = "professional",
    date: str = "2026-05-14",
    discharge: str | None = None,
    patient: str = "PT-1",
    sex: str = "F",
) -> dict[str, Any]:
    """A native encounter event with everything an 837 or a FHIR claim carries."""
    built: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"e-{claim_id}",
        "claim_id": claim_id,
        "setting": setting,
        "date_of_service": date,
        "patient": {"id": patient, "birth_date": "1956-03-02", "sex": sex},
        "payer_id": "AETNA",
        "diagnoses": [{"sequence": n, "code": c} for n, c in enumerate(diagnoses, 1)],
        "procedures": [
            {"line": n, "code": c, "units": 1, "diagnosis_pointers": [1]}
            for n, c in enumerate(procedures or [], 1)
        ],
    }
    if discharge:
        built["discharge_date"] = discharge
    return built


def x12(
    *transactions: list[dict[str, Any]], guide: claimfiles.Guide = "837p", control: int = 7
) -> str:
    """One interchange, a transaction set for each list of events."""
    envelope = claimfiles.Envelope("SENDER", "RECEIVER", CREATED, control, control)
    return claimfiles.interchange(envelope, [(guide, list(events)) for events in transactions])


def recount(text: str) -> str:
    """The 837 with each transaction set's SE01 counted again (after lines were changed)."""
    lines = text.splitlines()
    start = 0
    for number, line in enumerate(lines):
        if line.startswith("ST*"):
            start = number
        elif line.startswith("SE*"):
            control = line.rstrip("~").split("*")[2]
            lines[number] = f"SE*{number - start + 1}*{control}~"
    return "\n".join(lines) + "\n"


def read(data: str | bytes) -> tuple[list[AdaptedClaim], list[str]]:
    """The claims the X12 reader makes of an input, and its notes."""
    reader = InterchangeReader(io.BytesIO(data.encode() if isinstance(data, str) else data))
    return list(reader.claims()), reader.notes


def outputs(decider: Decider, data: str | bytes, name: str = "input") -> list[Output]:
    """What `claims-stage check` decides for each record of an input, whatever its format."""
    reading = read_input(io.BytesIO(data.encode() if isinstance(data, str) else data), name)
    return [decider.decide(value, source) for value, source in reading.records]


def letter(output: Output) -> DeadLetter:
    assert output.route == "dead_letter", output.value
    return DeadLetter.model_validate_json(output.value)


def decision(output: Output) -> Decision:
    assert output.route != "dead_letter", json.loads(output.value)["error"]
    return Decision.model_validate_json(output.value)


def verdict(output: Output) -> dict[str, Any]:
    """What must not depend on the format: outcome, findings, the codes as described."""
    document = json.loads(output.value)
    if output.route == "dead_letter":
        return {"dead_letter": document["error"]["message"]}
    return {k: document[k] for k in ("claim_id", "outcome", "findings", "diagnoses", "procedures")}


def note_types(output: Output) -> list[str]:
    origin = json.loads(output.value).get("origin") or {}
    return [note["type"] for note in origin.get("notes") or ()]
