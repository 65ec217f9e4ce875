"""The contract's limits: what one record may hold, and what the stage does past them.

Each limit is met by a record exactly at it (decided) and broken by one just past it (a
dead letter that names the limit and keeps the input whole). A dead letter too large for its
topic keeps the input's first part and the SHA-256 of the whole.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from bench.hostile import HOSTILE_DIAGNOSES, hostile_event, hostile_events
from stream.cli.batch import CHUNK_BYTES, chunks
from stream.core.contracts import (
    MAX_CODE_LENGTH,
    MAX_DEAD_LETTER_BYTES,
    MAX_DIAGNOSES,
    MAX_IDENTIFIER_LENGTH,
    MAX_PROCEDURE_LINES,
    MAX_REASON_LENGTH,
    MAX_TNM_LENGTH,
    MAX_UNITS,
    DeadLetter,
    Decision,
    FileSource,
    json_schemas,
)
from stream.core.decision import MAX_ERROR_DETAILS, Decider, Output, dead_letter
from stream.kafka.clients import MAX_MESSAGE_BYTES
from tests.claims import encode, encounter

SOURCE = FileSource(file="limits.jsonl", line=1)
NOW = dt.datetime(2026, 5, 15, 12, 0, tzinfo=dt.UTC)

Change = Callable[[dict[str, Any], int], None]
"""Sets a field of an event to a value of the given length (or count, or number)."""


def _base() -> dict[str, Any]:
    event = encounter(["C34.11", "C79.51"], ["71260"], reason="Restaging", tnm="T2N0M1")
    event["encounter_id"] = "ENC-1"
    event["payer_id"] = "MEDICARE"
    event["patient"] = {"id": "PT-1", "sex": "F"}
    return event


def _code(event: dict[str, Any], n: int) -> None:
    event["diagnoses"][0]["code"] = "C34.11".ljust(n)  # padding is part of a code as sent


def _procedure_code(event: dict[str, Any], n: int) -> None:
    event["procedures"][0]["code"] = "71260".ljust(n)


def _text(*path: str) -> Change:
    def change(event: dict[str, Any], n: int) -> None:
        holder = event
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = "x" * n

    return change


def _diagnoses(event: dict[str, Any], n: int) -> None:
    event["diagnoses"] = [{"sequence": i, "code": "C34.11"} for i in range(1, n + 1)]


def _lines(event: dict[str, Any], n: int) -> None:
    # Past 999 the numbers start again: the count is what is past its limit, not a number.
    lines = [1 + i % MAX_PROCEDURE_LINES for i in range(n)]
    event["procedures"] = [{"line": line, "code": "71260"} for line in lines]


def _line_number(event: dict[str, Any], n: int) -> None:
    event["procedures"][0]["line"] = n


def _units(event: dict[str, Any], n: int) -> None:
    event["procedures"][0]["units"] = n


LIMITS: dict[str, tuple[Change, int, str]] = {
    "diagnosis code": (_code, MAX_CODE_LENGTH, "at most 10 characters"),
    "procedure code": (_procedure_code, MAX_CODE_LENGTH, "at most 10 characters"),
    "reason": (
        _text("context", "reason_for_encounter"),
        MAX_REASON_LENGTH,
        "at most 1000 characters",
    ),
    "tnm": (_text("context", "tnm"), MAX_TNM_LENGTH, "at most 100 characters"),
    "event_id": (_text("event_id"), MAX_IDENTIFIER_LENGTH, "at most 128 characters"),
    "claim_id": (_text("claim_id"), MAX_IDENTIFIER_LENGTH, "at most 128 characters"),
    "encounter_id": (_text("encounter_id"), MAX_IDENTIFIER_LENGTH, "at most 128 characters"),
    "patient.id": (_text("patient", "id"), MAX_IDENTIFIER_LENGTH, "at most 128 characters"),
    "payer_id": (_text("payer_id"), MAX_IDENTIFIER_LENGTH, "at most 128 characters"),
    "diagnoses": (_diagnoses, MAX_DIAGNOSES, "at most 25 items"),
    "procedure lines": (_lines, MAX_PROCEDURE_LINES, "at most 999 items"),
    "line number": (_line_number, MAX_PROCEDURE_LINES, "less than or equal to 999"),
    "units": (_units, MAX_UNITS, "less than or equal to 999999999999999"),
}


@pytest.mark.parametrize("limit", sorted(LIMITS))
def test_a_record_at_a_limit_is_decided(decider: Decider, limit: str) -> None:
    change, value, _ = LIMITS[limit]
    event = _base()
    change(event, value)
    output = decider.decide(encode(event), SOURCE)
    assert output.route != "dead_letter", output.value[:300]


@pytest.mark.parametrize("limit", sorted(LIMITS))
def test_a_record_past_a_limit_is_a_dead_letter_that_names_it(decider: Decider, limit: str) -> None:
    change, value, words = LIMITS[limit]
    event = _base()
    change(event, value + 1)
    raw = encode(event)
    output = decider.decide(raw, SOURCE)
    letter = DeadLetter.model_validate_json(output.value)
    assert letter.error.kind == "contract_violation"
    assert words in letter.error.message
    assert letter.raw_value.encode() == raw  # the input kept whole
    assert letter.raw_value_truncated is None


def test_the_limits_are_in_the_exported_schema() -> None:
    schema = json_schemas()["encounter-event"]
    text = json.dumps(schema)
    event, defs = schema["properties"], schema["$defs"]
    assert event["diagnoses"]["maxItems"] == MAX_DIAGNOSES
    assert event["procedures"]["anyOf"][0]["maxItems"] == MAX_PROCEDURE_LINES
    assert event["event_id"]["maxLength"] == MAX_IDENTIFIER_LENGTH
    assert defs["DiagnosisEntry"]["properties"]["code"]["maxLength"] == MAX_CODE_LENGTH
    procedure = defs["ProcedureEntry"]["properties"]
    assert (procedure["code"]["maxLength"], procedure["line"]["maximum"]) == (10, 999)
    assert f'"maxLength": {MAX_REASON_LENGTH}' in text
    assert f'"maxLength": {MAX_TNM_LENGTH}' in text


def test_the_record_size_is_the_deciders_own(decider: Decider) -> None:
    small = Decider(
        decider.policies, icd10cm=decider.icd10cm, cpt=decider.cpt, max_record_bytes=2_048
    )
    event = encode(_base())
    at_limit = event[:-1] + b" " * (2_048 - len(event)) + event[-1:]
    assert small.decide(at_limit, SOURCE).route != "dead_letter"
    letter = DeadLetter.model_validate_json(small.decide(at_limit + b" ", SOURCE).value)
    assert letter.error.kind == "too_large"
    assert "the record is 2,049 bytes; the limit is 2,048 bytes" in letter.error.message
    assert letter.raw_value.encode() == at_limit + b" "


@pytest.mark.parametrize("setting", ["inpatient", "outpatient", "professional"])
def test_a_discharge_before_the_date_of_service_is_a_dead_letter_in_every_setting(
    decider: Decider, setting: str
) -> None:
    event = encounter(
        ["C34.11"], setting=setting, date_of_service="2026-05-15", discharge_date="2026-05-14"
    )
    letter = DeadLetter.model_validate_json(decider.decide(encode(event), SOURCE).value)
    assert letter.error.kind == "contract_violation"
    assert letter.error.details[0].loc == ("discharge_date",)
    assert "before the date of service" in letter.error.message
    same_day = dict(event, discharge_date="2026-05-15")
    assert decider.decide(encode(same_day), SOURCE).route != "dead_letter"


# --- hostile records ------------------------------------------------------------------------


def test_the_hostile_generator_makes_valid_json_of_the_size_asked() -> None:
    records = list(hostile_events(3, 200_000))
    assert len(set(records)) == 3
    for record in records:
        assert 190_000 <= len(record) <= 200_000
        document = json.loads(record)
        codes = [d["code"] for d in document["diagnoses"]]
        assert len(codes) == HOSTILE_DIAGNOSES
        assert all(len(code) > 1_000 for code in codes)
    assert hostile_event(1, 200_000) == records[1]  # the same record every time


def test_a_hostile_record_is_one_dead_letter_that_keeps_it(decider: Decider) -> None:
    raw = hostile_event(0)
    output = decider.decide(raw, SOURCE)
    letter = DeadLetter.model_validate_json(output.value)
    assert letter.error.kind == "contract_violation"
    assert letter.error.message.startswith(
        "diagnoses.0.code: String should have at most 10 characters"
    )
    assert letter.raw_value.encode() == raw
    assert len(output.value) < 2 * len(raw)  # the codes are not echoed back
    assert output.event_id == "hostile-00000000"  # an identifier within its limit, for logs


def test_identifiers_past_their_limit_stay_out_of_the_logs(decider: Decider) -> None:
    event = _base()
    event["event_id"] = "e" * (MAX_IDENTIFIER_LENGTH + 1)
    output = decider.decide(encode(event), SOURCE)
    assert output.dead_letter_kind == "contract_violation"
    assert (output.event_id, output.claim_id) == (None, "CLM-TEST-1")


def test_a_dead_letter_details_the_first_problems_and_counts_them_all(decider: Decider) -> None:
    event = _base()
    event["procedures"] = [{"line": n, "code": "x" * 11} for n in range(1, 501)]
    letter = DeadLetter.model_validate_json(decider.decide(encode(event), SOURCE).value)
    assert len(letter.error.details) == MAX_ERROR_DETAILS
    assert letter.error.message.endswith("(and 499 more problems)")


def test_batch_chunks_are_cut_by_bytes_as_well_as_by_records() -> None:
    records = [(record, SOURCE) for record in hostile_events(40, 880_000)]
    sizes = [len(chunk) for chunk in chunks(records)]
    assert sum(sizes) == 40
    assert max(sizes) <= CHUNK_BYTES // 880_000 + 1
    small = [(b"{}", SOURCE)] * 600
    assert [len(chunk) for chunk in chunks(small)] == [250, 250, 100]


# --- dead letters too large for their topic -------------------------------------------------


def _letter(output: Output) -> DeadLetter:
    return DeadLetter.model_validate_json(output.value)


def test_the_dead_letter_topic_has_room_for_the_largest_dead_letter() -> None:
    # The key is the input record's, which the input topic bounds (1 MiB by default).
    assert MAX_MESSAGE_BYTES - MAX_DEAD_LETTER_BYTES >= 1_048_576


def test_a_dead_letter_too_large_keeps_the_first_part_and_the_digest(decider: Decider) -> None:
    raw = b"x" * (MAX_DEAD_LETTER_BYTES + 1_000)
    output = decider.decide(raw, SOURCE)
    assert len(output.value) <= MAX_DEAD_LETTER_BYTES
    letter = _letter(output)
    assert letter.error.kind == "too_large"
    cut = letter.raw_value_truncated
    assert cut is not None
    assert cut.total_bytes == len(raw)
    assert cut.sha256 == hashlib.sha256(raw).hexdigest()
    assert letter.raw_value.encode() == raw[: cut.kept_bytes]
    assert cut.kept_bytes > MAX_DEAD_LETTER_BYTES - 65_536  # nearly all the room is used
    assert f"the input of {len(raw):,} bytes is too large to keep whole" in letter.error.message


def test_escaping_can_make_a_record_within_its_limit_too_large_to_keep(decider: Decider) -> None:
    """JSON writes a control character in six bytes: 3 MiB of them would need 18 MiB."""
    roomy = Decider(
        decider.policies,
        icd10cm=decider.icd10cm,
        cpt=decider.cpt,
        max_record_bytes=4 * 1_048_576,
    )
    raw = b'{"event_id": "' + b"\x01" * (3 * 1_048_576) + b'"}'
    output = roomy.decide(raw, SOURCE)
    assert len(output.value) <= MAX_DEAD_LETTER_BYTES
    letter = _letter(output)
    assert letter.error.kind == "invalid_json"
    assert letter.raw_value_truncated is not None
    assert letter.raw_value.encode() == raw[: letter.raw_value_truncated.kept_bytes]


def test_a_cut_falls_between_two_characters_of_utf8_text() -> None:
    raw = ("é" * 5_000).encode()  # two bytes a character
    for budget in range(3_000, 3_040):
        letter = _letter(dead_letter(raw, SOURCE, None, NOW, "invalid_json", "?", max_bytes=budget))
        cut = letter.raw_value_truncated
        assert cut is not None
        assert cut.kept_bytes % 2 == 0
        assert letter.raw_value == "é" * (cut.kept_bytes // 2)


def test_a_cut_of_base64_keeps_whole_groups_of_three_bytes() -> None:
    raw = bytes(range(256)) * 40
    output = dead_letter(raw, SOURCE, b"k", NOW, "not_utf8", "not UTF-8", max_bytes=4_000)
    assert len(output.value) <= 4_000
    letter = _letter(output)
    cut = letter.raw_value_truncated
    assert letter.raw_value_encoding == "base64"
    assert cut is not None
    assert cut.kept_bytes % 3 == 0
    assert cut.kept_bytes > 2_000
    assert base64.b64decode(letter.raw_value) == raw[: cut.kept_bytes]


def test_a_dead_letter_that_fits_carries_no_truncation_member(decider: Decider) -> None:
    document = json.loads(decider.decide(b"not json", SOURCE).value)
    assert "raw_value_truncated" not in document
    assert copy.deepcopy(document)["raw_value"] == "not json"


def test_decisions_still_read_back_with_the_limits(decider: Decider) -> None:
    event = _base()
    _lines(event, MAX_PROCEDURE_LINES)
    output = decider.decide(encode(event), SOURCE)
    decision = Decision.model_validate_json(output.value)
    assert len(decision.procedures) == MAX_PROCEDURE_LINES
