"""The wire contract: what is an encounter event, and the dead letter each violation gives."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import ValidationError

from stream.core.contracts import (
    MAX_RECORD_BYTES,
    DeadLetter,
    Decision,
    EncounterEvent,
    FileSource,
    KafkaSource,
    normalize_icd10cm,
)
from stream.core.decision import Decider
from tests.claims import encode, encounter

SOURCE = KafkaSource(topic="encounters", partition=3, offset=18422)


def good() -> dict[str, Any]:
    event = encounter(["C34.11", "C79.51"], ["71260"], primary_status="active")
    event["procedures"][0]["diagnosis_pointers"] = [1, 2]
    return event


def dead(decider: Decider, raw: bytes, key: bytes | None = b"CLM-1") -> DeadLetter:
    output = decider.decide(raw, SOURCE, key=key)
    assert output.route == "dead_letter", output.value
    letter = DeadLetter.model_validate_json(output.value)
    assert output.dead_letter_kind == letter.error.kind
    assert output.key == key  # the input record's key, unchanged
    headers = dict(output.headers)
    assert headers["error_kind"] == letter.error.kind.encode()
    assert headers["source_topic"] == b"encounters"
    assert headers["source_partition"] == b"3"
    assert headers["source_offset"] == b"18422"
    # nothing of the input is lost
    if letter.raw_value_encoding == "utf-8":
        assert letter.raw_value.encode() == raw
    else:
        assert base64.b64decode(letter.raw_value) == raw
    return letter


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("c3411", "C34.11"),
        (" C34.11 ", "C34.11"),
        ("C3.411", "C34.11"),
        ("c61", "C61"),
        ("m84551a", "M84.551A"),
        ("Z85.3", "Z85.3"),
        ("", ""),
    ],
)
def test_codes_are_normalised_to_dotted_upper_case(raw: str, expected: str) -> None:
    assert normalize_icd10cm(raw) == expected


def test_a_good_event_is_decided_with_key_and_headers(decider: Decider) -> None:
    raw = encode(good())
    output = decider.decide(raw, SOURCE, key=b"ignored-for-decisions")
    assert output.route == "validated"
    assert output.key == b"CLM-TEST-1"
    assert dict(output.headers) == {
        "event_id": b"evt-test-1",
        "outcome": b"validated",
        "ruleset_version": decider.ruleset.version.encode(),
    }
    decision = Decision.model_validate_json(output.value)
    assert decision.source == SOURCE
    assert decision.code_sets.icd10cm == "2026-04-01"  # the code set of 2026-05-15
    assert decision.code_sets.icd10cm_fiscal_year == 2026
    assert decision.code_sets.icd10cm_descriptions == "2026-04-01"
    assert output.code_set == "FY2026"
    assert [d.code for d in decision.diagnoses] == ["C34.11", "C79.51"]
    assert decision.diagnoses[1].kind == "secondary_malignancy"
    assert decision.procedures[0].description == "chest CT, contrast"
    # the encounter is carried as received, not as re-serialised
    assert json.loads(output.value)["encounter"] == json.loads(raw)


def test_dotless_lower_case_codes_come_out_dotted(decider: Decider) -> None:
    event = encounter(["c3411", "C7951"], primary_status="active")
    decision = Decision.model_validate_json(decider.decide(encode(event), SOURCE).value)
    assert [d.code for d in decision.diagnoses] == ["C34.11", "C79.51"]
    assert decision.findings == ()
    assert json.loads(decision.model_dump_json())["encounter"]["diagnoses"][0]["code"] == "C34.11"


def test_diagnoses_out_of_array_order_are_read_by_sequence(decider: Decider) -> None:
    event = encounter(["C18.7", "C78.7"], treatment_directed_at="secondary")
    event["diagnoses"] = list(reversed(event["diagnoses"]))
    decision = Decision.model_validate_json(decider.decide(encode(event), SOURCE).value)
    assert [d.sequence for d in decision.diagnoses] == [1, 2]
    assert [f.rule_id for f in decision.findings] == ["MET-013"]


def test_a_code_that_does_not_exist_is_a_claim_not_a_dead_letter(decider: Decider) -> None:
    output = decider.decide(encode(encounter(["XYZ"])), SOURCE)
    assert output.route == "rejected"
    assert [f.rule_id for f in output.findings] == ["MET-001"]


def test_not_utf8(decider: Decider) -> None:
    raw = encode(good()).replace(b"C34.11", b"C34.\xff1")
    letter = dead(decider, raw)
    assert letter.error.kind == "not_utf8"
    assert letter.raw_value_encoding == "base64"
    assert "0xff" in letter.error.message


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"a": 1,}', b"   "])
def test_invalid_json(decider: Decider, raw: bytes) -> None:
    letter = dead(decider, raw)
    assert letter.error.kind == "invalid_json"
    assert letter.error.message.startswith(("the record is not valid JSON", "the record is empty"))


def test_a_tombstone_is_a_dead_letter(decider: Decider) -> None:
    output = decider.decide(None, SOURCE, key=b"CLM-1")
    letter = DeadLetter.model_validate_json(output.value)
    assert letter.error.kind == "invalid_json"
    assert "tombstone" in letter.error.message


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"an event"', b"42", b"null"])
def test_json_but_not_an_object(decider: Decider, raw: bytes) -> None:
    letter = dead(decider, raw)
    assert letter.error.kind == "contract_violation"
    assert letter.error.message == (
        "the record is JSON but not an object: an encounter event is a JSON object"
    )


def _violation(decider: Decider, event: dict[str, Any]) -> DeadLetter:
    letter = dead(decider, encode(event))
    assert letter.error.kind == "contract_violation"
    return letter


def test_missing_required_field(decider: Decider) -> None:
    event = good()
    del event["claim_id"]
    letter = _violation(decider, event)
    assert letter.error.message == "claim_id: required field is missing"
    assert letter.error.details[0].loc == ("claim_id",)


def test_unknown_field_is_rejected_so_that_typos_surface(decider: Decider) -> None:
    event = good()
    event["patient"] = {"id": "PT-1", "ssn": "000-00-0000"}
    letter = _violation(decider, event)
    assert letter.error.message == "patient.ssn: unknown field: the contract does not have it"


def test_sequence_gap(decider: Decider) -> None:
    event = good()
    event["diagnoses"][1]["sequence"] = 3
    event["procedures"][0]["diagnosis_pointers"] = [1]
    letter = _violation(decider, event)
    assert letter.error.message == "diagnoses.1.sequence: sequences must run 1..2 without gaps"
    assert letter.error.details[0].loc == ("diagnoses", 1, "sequence")


def test_duplicate_sequence(decider: Decider) -> None:
    event = good()
    event["diagnoses"][1]["sequence"] = 1
    letter = _violation(decider, event)
    assert letter.error.message == "diagnoses.1.sequence: sequence 1 is used twice"


def test_dangling_diagnosis_pointer(decider: Decider) -> None:
    event = good()
    event["procedures"][0]["diagnosis_pointers"] = [1, 4]
    letter = _violation(decider, event)
    assert letter.error.details[0].loc == ("procedures", 0, "diagnosis_pointers", 1)
    assert "points at diagnosis sequence 4" in letter.error.message


def test_duplicate_procedure_line(decider: Decider) -> None:
    event = good()
    event["procedures"].append({"line": 1, "code": "78815"})
    letter = _violation(decider, event)
    assert letter.error.message == "procedures.1.line: line 1 is used twice"


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("date_of_service", "2026-02-30", "date_of_service"),
        ("date_of_service", "20260406", "date_of_service"),
        ("discharge_date", "2026-13-01", "discharge_date"),
        ("occurred_at", "yesterday", "occurred_at"),
        ("schema_version", 2, "schema_version"),
        ("schema_version", "1", "schema_version"),
        ("schema_version", True, "schema_version"),  # booleans are not integers
        ("schema_version", 1.0, "schema_version"),
        ("setting", "emergency", "setting"),
        ("event_id", "", "event_id"),
        ("event_id", "   ", "event_id"),
        ("event_type", "encounter.deleted", "event_type"),
        ("diagnoses", [], "diagnoses"),
    ],
)
def test_field_violations(decider: Decider, field: str, value: Any, where: str) -> None:
    event = good()
    event[field] = value
    letter = _violation(decider, event)
    assert letter.error.details[0].loc[0] == where
    assert letter.error.message.startswith(f"{where}: ")


def test_too_many_diagnoses(decider: Decider) -> None:
    event = encounter(["C34.11"] * 26)
    letter = _violation(decider, event)
    assert letter.error.details[0].loc == ("diagnoses",)


@pytest.mark.parametrize(
    ("procedure", "where"),
    [
        ({"line": 1, "code": "71260", "units": 0}, ("procedures", 0, "units")),
        ({"line": 1, "code": "71260", "modifiers": ["RT", "L"]}, ("procedures", 0, "modifiers", 1)),
        (
            {"line": 1, "code": "71260", "modifiers": ["26", "TC", "59", "RT", "LT"]},
            ("procedures", 0, "modifiers"),
        ),
        ({"line": 0, "code": "71260"}, ("procedures", 0, "line")),
    ],
)
def test_procedure_violations(
    decider: Decider, procedure: dict[str, Any], where: tuple[Any, ...]
) -> None:
    event = good()
    event["procedures"] = [procedure]
    assert _violation(decider, event).error.details[0].loc == where


def test_optional_fields_may_be_absent_or_null(decider: Decider) -> None:
    minimal = {
        "schema_version": 1,
        "event_id": "e",
        "claim_id": "c",
        "setting": "professional",
        "date_of_service": "2026-04-06",
        "diagnoses": [{"sequence": 1, "code": "C61"}],
    }
    assert decider.decide(encode(minimal), SOURCE).route == "validated"
    nulls = dict(minimal, context=None, patient=None, procedures=None, discharge_date=None)
    assert decider.decide(encode(nulls), SOURCE).route == "validated"
    event = EncounterEvent.model_validate_json(encode(minimal))
    assert event.event_type == "encounter.coded"


def test_too_large(decider: Decider) -> None:
    event = good()
    event["context"]["reason_for_encounter"] = "x" * MAX_RECORD_BYTES
    raw = encode(event)
    letter = dead(decider, raw)
    assert letter.error.kind == "too_large"
    assert f"{len(raw):,} bytes" in letter.error.message


def test_a_record_of_exactly_the_limit_is_read(decider: Decider) -> None:
    # Every field has a limit of its own far below the record's: JSON whitespace fills it.
    event = encode(good())
    raw = event[:-1] + b" " * (MAX_RECORD_BYTES - len(event)) + event[-1:]
    assert len(raw) == MAX_RECORD_BYTES
    # Read and decided: its decision, which carries the whole record, is over the output
    # topics' 1 MiB, so that decision is what the dead letter reports.
    assert decider.decide(raw, SOURCE).dead_letter_kind == "decision_too_large"
    assert decider.decide(raw + b" ", SOURCE).dead_letter_kind == "too_large"


def test_internal_error_keeps_the_input(decider: Decider, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(decider.ruleset, "evaluate", broken)
    raw = encode(good())
    letter = dead(decider, raw)
    assert letter.error.kind == "internal_error"
    assert "RuntimeError" in letter.error.message


def test_dead_letter_key_that_is_not_utf8(decider: Decider) -> None:
    output = decider.decide(b"nope", SOURCE, key=b"\xff\x00")
    assert output.key == b"\xff\x00"
    assert DeadLetter.model_validate_json(output.value).raw_key == "base64:/wA="


def test_file_source_in_batch_mode(decider: Decider) -> None:
    output = decider.decide(b"nope", FileSource(file="in.jsonl", line=7))
    letter = DeadLetter.model_validate_json(output.value)
    assert letter.source == FileSource(file="in.jsonl", line=7)
    assert dict(output.headers) == {"error_kind": b"invalid_json"}


def test_decision_outcome_must_match_findings(decider: Decider) -> None:
    stage_output = decider.decide(encode(encounter(["C79.51"])), SOURCE)
    document = json.loads(stage_output.value)
    assert document["outcome"] == "rejected"
    document["outcome"] = "validated"
    with pytest.raises(ValueError, match="outcome is 'rejected' exactly when"):
        Decision.model_validate_json(json.dumps(document))


def test_the_hot_path_finding_has_the_contract_fields_in_order() -> None:
    from dataclasses import fields

    from stream.core.contracts import Finding
    from stream.core.rules.config import RuleFinding

    assert [f.name for f in fields(RuleFinding)] == list(Finding.model_fields)


def test_inpatient_procedures_are_reported_but_not_judged(decider: Decider) -> None:
    event = encounter(["C34.11"], ["32405"], setting="inpatient", primary_status="active")
    output = decider.decide(encode(event), SOURCE)
    decision = Decision.model_validate_json(output.value)
    assert decision.findings == ()  # MET-003 reads outpatient and professional claims only
    assert [p.code for p in decision.procedures] == ["32405"]


def test_schema_version_true_is_a_contract_violation(decider: Decider) -> None:
    raw = encode(good()).replace(b'"schema_version": 1', b'"schema_version": true')
    output = decider.decide(raw, SOURCE)
    assert output.dead_letter_kind == "contract_violation"
    letter = DeadLetter.model_validate_json(output.value)
    assert letter.error.message.startswith("schema_version: ")
    assert "bool" in letter.error.message


def test_outputs_with_schema_version_true_are_refused_too(decider: Decider) -> None:
    for raw in (b"not json", encode(good())):
        document = json.loads(decider.decide(raw, SOURCE).value)
        model = DeadLetter if "error" in document else Decision
        model.model_validate_json(json.dumps(document))  # as produced: valid
        document["schema_version"] = True
        with pytest.raises(ValidationError) as caught:
            model.model_validate_json(json.dumps(document))
        assert caught.value.errors()[0]["loc"] == ("schema_version",)


def test_a_discharge_before_the_date_of_service_is_a_contract_violation(decider: Decider) -> None:
    event = good()
    event.update(setting="inpatient", date_of_service="2026-10-03", discharge_date="2026-09-30")
    letter = _violation(decider, event)
    assert letter.error.details[0].loc == ("discharge_date",)
    assert "before the date of service" in letter.error.message


def test_each_decision_records_the_code_set_of_its_own_date(decider: Decider) -> None:
    cases = {
        ("outpatient", "2022-10-01", None): ("2022-10-01", 2023, "FY2023"),
        ("outpatient", "2023-04-01", None): ("2023-04-01", 2023, "FY2023"),
        ("outpatient", "2024-09-30", None): ("2024-04-01", 2024, "FY2024"),
        ("outpatient", "2025-06-30", None): ("2024-10-01", 2025, "FY2025"),
        ("outpatient", "2026-03-31", None): ("2025-10-01", 2026, "FY2026"),
        ("outpatient", "2026-10-01", None): ("2026-10-01", 2027, "FY2027"),
        # inpatient: the discharge date chooses
        ("inpatient", "2026-09-28", "2026-10-02"): ("2026-10-01", 2027, "FY2027"),
        ("inpatient", "2026-09-28", None): ("2026-04-01", 2026, "FY2026"),
        # no cliff: FY2027 stays in force after the masters end, through 2027-09-30
        ("outpatient", "2027-04-01", None): ("2026-10-01", 2027, "FY2027"),
        ("outpatient", "2027-09-30", None): ("2026-10-01", 2027, "FY2027"),
        # no loaded set covers the date: the nearest judges it (MET-042)
        ("outpatient", "2027-10-05", None): ("2026-10-01", 2027, "FY2027"),
        ("outpatient", "2022-09-30", None): ("2022-10-01", 2023, "FY2023"),
    }
    for (setting, day, discharge), (release, year, label) in cases.items():
        event = encounter(
            ["C34.11"], setting=setting, date_of_service=day, discharge_date=discharge
        )
        output = decider.decide(encode(event), SOURCE)
        decision = Decision.model_validate_json(output.value)
        assert decision.code_sets.icd10cm == release, (setting, day, discharge)
        assert decision.code_sets.icd10cm_fiscal_year == year
        assert decision.code_sets.icd10cm_source == decider.icd10cm.calendar.source
        assert output.code_set == label
        assert output.nearest_code_set == (day in ("2027-10-05", "2022-09-30"))


def test_a_code_newer_than_the_descriptions_says_so_and_is_described_by_its_parent(
    decider: Decider,
) -> None:
    event = encounter(["C34.11", "C79.83"], date_of_service="2026-10-15")
    decision = Decision.model_validate_json(decider.decide(encode(event), SOURCE).value)
    assert decision.outcome == "validated"
    new = decision.diagnoses[1]
    assert new.billable
    assert new.kind == "secondary_malignancy"
    assert new.description is not None
    assert new.description.startswith("No description in the bundled ICD-10-CM 2026-04-01")
    assert "C79.8, Secondary malignant neoplasm of other specified sites" in new.description


def test_a_code_invalid_on_the_claim_date_is_reported_invalid_and_not_billable(
    decider: Decider,
) -> None:
    event = encounter(["C86.00", "C86.0"], date_of_service="2024-09-30")
    decision = Decision.model_validate_json(decider.decide(encode(event), SOURCE).value)
    assert [(d.kind, d.billable) for d in decision.diagnoses] == [
        ("invalid", False),
        ("primary_malignancy", True),
    ]
    message = decision.findings[0].message
    assert "C86.00 is not valid on 2024-09-30: it takes effect on 2024-10-01" in message
