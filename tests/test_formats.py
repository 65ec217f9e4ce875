"""Claims as payers and hospitals send them: 837P, 837I and FHIR R4 in, the same decisions
out. The example files in `schemas/examples/claims/` are the same clinical claims as events
of the example stream; every claim must get its native event's decision in every format."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import claimfiles
from stream.cli.main import app
from stream.cli.readers import read_input
from stream.core.adapters import fhir
from stream.core.adapters.formats import AdaptedClaim, detect_format
from stream.core.adapters.x12 import InterchangeReader
from stream.core.contracts import DeadLetter, Decision, FileSource, normalize_icd10cm
from stream.core.decision import Decider, Output
from stream.core.rules import RULES_BY_ID
from tests import readers
from tests.claims import claims_in
from tests.reference import StageRunner

ROOT = Path(__file__).resolve().parent.parent
CLAIMS = ROOT / "schemas" / "examples" / "claims"
NATIVE = ROOT / "schemas" / "examples" / "encounters.jsonl"
FORMAT_FILES = (
    "837p.x12",
    "837i.x12",
    "bundle.json",
    "claims.jsonl",
    "explanation-of-benefit.json",
    "blue-button.jsonl",
)
SOURCE = FileSource(file="test", line=1)
CREATED = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)
runner = StageRunner()


def verdict(output: Output) -> dict[str, Any]:
    """What must not depend on the format: outcome, findings, the codes as described."""
    document = json.loads(output.value)
    assert output.route != "dead_letter", document["error"]
    return {k: document[k] for k in ("claim_id", "outcome", "findings", "diagnoses", "procedures")}


def outputs(decider: Decider, data: bytes, name: str = "input") -> list[Output]:
    reading = read_input(io.BytesIO(data), name)
    return [decider.decide(value, source) for value, source in reading.records]


def native_verdicts(decider: Decider) -> dict[str, dict[str, Any]]:
    verdicts = {}
    for line in NATIVE.read_bytes().splitlines():
        output = decider.decide(line, SOURCE)
        if output.route != "dead_letter" and output.claim_id:
            verdicts[output.claim_id] = verdict(output)
    return verdicts


@pytest.fixture(scope="module")
def native(decider: Decider) -> dict[str, dict[str, Any]]:
    return native_verdicts(decider)


# --- the examples -------------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", FORMAT_FILES)
def test_every_example_claim_gets_its_native_decision(
    decider: Decider, native: dict[str, dict[str, Any]], file_name: str
) -> None:
    decided = outputs(decider, (CLAIMS / file_name).read_bytes(), file_name)
    assert decided
    for output in decided:
        assert verdict(output) == native[output.claim_id or ""], output.claim_id
    claim_ids = Counter(output.claim_id for output in decided)
    assert set(claim_ids.values()) == {1}


def test_the_formats_hold_the_same_claims(decider: Decider) -> None:
    claims = {
        name: sorted(o.claim_id or "" for o in outputs(decider, (CLAIMS / name).read_bytes()))
        for name in FORMAT_FILES
    }
    x12 = sorted(claims["837p.x12"] + claims["837i.x12"])
    assert x12 == claims["bundle.json"] == claims["claims.jsonl"]


def test_the_examples_cover_every_rule_family_setting_and_several_claims_per_interchange(
    decider: Decider,
) -> None:
    decided = outputs(decider, (CLAIMS / "837p.x12").read_bytes()) + outputs(
        decider, (CLAIMS / "837i.x12").read_bytes()
    )
    assert len(decided) >= 25
    documents = [json.loads(o.value) for o in decided]
    assert {d["encounter"]["setting"] for d in documents} == {
        "inpatient",
        "outpatient",
        "professional",
    }
    families = {
        RULES_BY_ID[f["rule_id"]].check.__module__ for d in documents for f in d["findings"]
    }
    assert families == {rule.check.__module__ for rule in RULES_BY_ID.values()}
    assert {d["outcome"] for d in documents} == {"validated", "rejected"}
    per_interchange = Counter(
        (d["origin"]["interchange_control_number"], d["origin"]["format"]) for d in documents
    )
    interchanges = sum(
        (CLAIMS / name).read_text().count("ISA*") for name in ("837p.x12", "837i.x12")
    )
    assert len(per_interchange) == interchanges >= 2
    assert min(per_interchange.values()) > 1


def test_decisions_carry_the_claims_origin(decider: Decider) -> None:
    decided = outputs(decider, (CLAIMS / "837i.x12").read_bytes(), "837i.x12")
    first = Decision.model_validate_json(decided[0].value)
    assert first.origin is not None
    assert first.origin.format == "x12-837i"
    assert first.origin.implementation_guide == "005010X223A2"
    assert first.origin.interchange_control_number == "200000001"
    assert first.origin.transaction_set_control_number == "0001"
    assert first.origin.claim_position == 1
    assert first.origin.submitter_claim_id == first.claim_id
    assert first.encounter.origin == first.origin
    positions: dict[str, list[int]] = {}
    for output in decided:
        origin = json.loads(output.value)["origin"]
        positions.setdefault(origin["interchange_control_number"], []).append(
            origin["claim_position"]
        )
    # the positions restart with each interchange
    assert len(positions) > 1
    assert all(found == list(range(1, len(found) + 1)) for found in positions.values())
    bundled = Decision.model_validate_json(
        outputs(decider, (CLAIMS / "bundle.json").read_bytes())[3].value
    )
    assert bundled.origin is not None
    assert bundled.origin.format == "fhir-r4"
    assert bundled.origin.bundle_id == "claims-export"
    assert bundled.origin.claim_position == 4
    assert bundled.origin.resource_id
    assert bundled.origin.resource_id.startswith("claim-")


def test_reading_a_file_twice_gives_the_same_event_ids(decider: Decider) -> None:
    data = (CLAIMS / "837p.x12").read_bytes()
    first = [o.event_id for o in outputs(decider, data)]
    assert first == [o.event_id for o in outputs(decider, data)]
    assert len(set(first)) == len(first)


def test_the_committed_claim_files_are_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(CLAIMS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("file_name", [*FORMAT_FILES, "837p-errors.x12", "bundle-errors.json"])
def test_check_gives_one_output_per_claim(tmp_path: Path, file_name: str) -> None:
    result = runner.invoke(app, ["check", str(CLAIMS / file_name), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [
        line
        for name in ("validated", "rejected", "dead-letter")
        for line in (tmp_path / f"{name}.jsonl").read_bytes().splitlines()
    ]
    assert len(lines) == claims_in(CLAIMS / file_name)
    assert "claims decided" in result.output or "lines decided" in result.output


# --- bad claims: located dead letters, the good claims still decided ------------------------------


def _letters(outputs_: list[Output]) -> dict[int, DeadLetter]:
    letters = {}
    for output in outputs_:
        if output.route == "dead_letter":
            letter = DeadLetter.model_validate_json(output.value)
            assert letter.origin is not None
            letters[letter.origin.claim_position] = letter
    return letters


def test_a_faulty_interchange_gives_located_dead_letters_and_decides_its_good_claims(
    decider: Decider,
) -> None:
    decided = outputs(decider, (CLAIMS / "837p-errors.x12").read_bytes())
    letters = _letters(decided)
    assert sorted(letters) == [2, 3, 4, 5, 7, 8]
    good = [
        json.loads(o.value)["origin"]["claim_position"] for o in decided if o.route != "dead_letter"
    ]
    assert good == [1, 6]
    locations = {position: letter.error.details[0].loc for position, letter in letters.items()}
    assert locations[2] == ("2300", "HI")
    assert locations[3] == ("2010BA", "DMG", 40, "DMG02")
    assert locations[4] == ("2400", "SV1", 1, "SV104")
    assert locations[5] == ("procedures", 0, "diagnosis_pointers", 0)
    assert locations[7][:2] == locations[8][:2] == ("ST_LOOP", "SE")
    assert "invalid date (20260230)" in letters[3].error.message
    assert "SV1 segment at position" in letters[5].error.message  # the 837's location too
    assert "SE count of 99" in letters[7].error.message
    for position, letter in letters.items():
        assert letter.error.kind == "contract_violation"
        assert len(letter.error.details) == 1, (position, letter.error.details)
        raw = letter.raw_value
        assert raw.startswith("ISA*")
        assert "\nCLM*" in raw
        assert "\nSE*" in raw
        assert raw.count("\nCLM*") == 1  # its own claim, none of the others
        assert f"CLM*{letter.origin.submitter_claim_id}*" in raw  # type: ignore[union-attr]


def test_a_faulty_bundle_gives_dead_letters_naming_the_element(decider: Decider) -> None:
    decided = outputs(decider, (CLAIMS / "bundle-errors.json").read_bytes())
    letters = _letters(decided)
    assert sorted(letters) == [2, 3, 4, 5]
    paths = {position: letter.error.message.split(": ")[1] for position, letter in letters.items()}
    assert paths == {
        2: "Claim.item[0].quantity.value",
        3: "Claim.diagnosis[0]",
        4: "Claim.item[0].sequence",
        5: "Patient.birthDate",
    }
    assert letters[4].error.details[0].loc == ("Claim", "item", 0, "sequence")
    for letter in letters.values():
        kept = json.loads(letter.raw_value)
        assert kept["resourceType"] == "Bundle"
        claims = [e for e in kept["entry"] if e["resource"]["resourceType"] == "Claim"]
        patients = [e for e in kept["entry"] if e["resource"]["resourceType"] == "Patient"]
        assert len(claims) == len(patients) == 1


# --- format detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"ISA*00*          *00*", "x12"),
        (b"\xef\xbb\xbf\r\n  ISA*00*", "x12"),
        (b'{"schema_version": 1, "claim_id": "c"}\n', "json-lines"),
        (b'{"resourceType": "Claim", "id": "c"}\n', "json-lines"),
        (b'{"resourceType": "Bundle", "type": "collection", "entry": []}\n', "fhir-bundle-lines"),
        (b"{\n", "json-document"),
        (b'{ "resourceType": "Bundle",\n', "json-document"),
        (b'{"schema_version": 1, "claim_id": "broken\n', "json-lines"),
        (b"this is not json\n", "json-lines"),
        (b"", "json-lines"),
    ],
)
def test_the_format_comes_from_the_content(head: bytes, expected: str) -> None:
    assert detect_format(head) == expected


def test_a_pretty_printed_claim_and_bundle_lines_are_read(decider: Decider) -> None:
    event = readers.event("CLM-PRETTY", ["C34.11", "C79.51"], ["71260"])
    claim = claimfiles.fhir_claim_with_patient(event, CREATED)
    pretty = outputs(decider, json.dumps(claim, indent=2).encode())
    assert [o.route for o in pretty] == ["validated"]
    bundle = claimfiles.fhir_bundle([event, readers.event("CLM-2", ["C79.51"])], "b", CREATED)
    lines = (json.dumps(bundle) + "\n") * 2
    decided = outputs(decider, lines.encode(), "bundles.jsonl")
    assert [(o.claim_id, o.route) for o in decided] == [
        ("CLM-PRETTY", "validated"),
        ("CLM-2", "rejected"),
    ] * 2
    assert [json.loads(o.value)["source"]["line"] for o in decided] == [1, 1, 2, 2]


# --- X12 ------------------------------------------------------------------------------------


def _x12(events: list[dict[str, Any]], guide: claimfiles.Guide = "837p", control: int = 7) -> str:
    return readers.x12(events, guide=guide, control=control)


def _claims(text: str | bytes) -> tuple[list[AdaptedClaim], list[str]]:
    data = text.encode() if isinstance(text, str) else text
    reader = InterchangeReader(io.BytesIO(data))
    return list(reader.claims()), reader.notes


def _event_of(claim: AdaptedClaim) -> dict[str, Any]:
    assert not claim.problems, claim.problems
    assert claim.event is not None
    event: dict[str, Any] = json.loads(claim.event)
    return event


def test_an_837p_claim_reads_into_the_event_the_rules_need() -> None:
    event = readers.event("CLM-P1", ["C34.11", "c79.51", "Z51.11"], ["96413", "J9271"])
    event["procedures"][0].update(units=2, modifiers=["25", "59"], diagnosis_pointers=[3, 1])
    claims, notes = _claims(_x12([event]))
    assert notes == []
    read = _event_of(claims[0])
    assert read["claim_id"] == "CLM-P1"
    assert read["setting"] == "professional"
    assert read["date_of_service"] == "2026-05-14"
    assert read["patient"] == {"birth_date": "1956-03-02", "sex": "F"}
    assert read["payer_id"] == "AETNA"
    assert [d["code"] for d in read["diagnoses"]] == ["C3411", "C7951", "Z5111"]
    assert read["procedures"] == [
        {
            "line": 1,
            "code": "96413",
            "units": 2,
            "modifiers": ["25", "59"],
            "diagnosis_pointers": [3, 1],
        },
        {"line": 2, "code": "J9271", "units": 1, "diagnosis_pointers": [1]},
    ]


def test_an_837i_claim_reads_its_type_of_bill_dates_and_revenue_lines() -> None:
    stay = readers.event(
        "CLM-I1", ["C18.7", "C78.7"], setting="inpatient", date="2026-05-02", discharge="2026-05-09"
    )
    visit = readers.event(
        "CLM-I2", ["Z51.11", "C50.912"], ["96413"], setting="outpatient", patient="PT-2"
    )
    claims, _ = _claims(_x12([stay, visit], "837i"))
    inpatient, outpatient = (_event_of(c) for c in claims)
    assert inpatient["setting"] == "inpatient"
    assert (inpatient["date_of_service"], inpatient["discharge_date"]) == (
        "2026-05-02",
        "2026-05-09",
    )
    assert "procedures" not in inpatient  # room and board (revenue code 0120, no HCPCS)
    assert outpatient["setting"] == "outpatient"
    assert "discharge_date" not in outpatient
    assert outpatient["procedures"] == [{"line": 1, "code": "96413", "units": 1}]
    # the admitting diagnosis (HI ABJ) is not in the sequence the rules judge
    assert [d["code"] for d in inpatient["diagnoses"]] == ["C187", "C787"]


@pytest.mark.parametrize(
    ("type_of_bill", "setting", "discharged"),
    [
        ("11:A:1", "inpatient", True),
        ("11:A:2", "inpatient", False),
        ("18:A:1", "inpatient", True),
        ("13:A:1", "outpatient", False),
        ("12:A:1", "outpatient", False),
        ("85:A:1", "outpatient", False),
    ],
)
def test_the_type_of_bill_sets_the_setting(
    type_of_bill: str, setting: str, discharged: bool
) -> None:
    stay = readers.event(
        "CLM-T", ["C18.7"], setting="inpatient", date="2026-05-02", discharge="2026-05-09"
    )
    text = _x12([stay], "837i").replace("11:A:1", type_of_bill)
    read = _event_of(_claims(text)[0][0])
    assert read["setting"] == setting
    assert ("discharge_date" in read) == discharged


def test_a_dependent_patient_reads_the_patient_loop_not_the_subscriber() -> None:
    key = next(f"PT-DEP-{n}" for n in range(100) if claimfiles._dependent(f"PT-DEP-{n}"))
    text = _x12([readers.event("CLM-D", ["C50.912"], ["99214"], patient=key)])
    assert "HL*3*2*23*0~" in text
    assert "\nDMG*" in text
    # the subscriber's own demographics, which must not be taken for the patient's
    lines = text.replace("\nNM1*PR*", "\nDMG*D8*19400101*M~\nNM1*PR*", 1).splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("ST*"))
    end = next(i for i, x in enumerate(lines) if x.startswith("SE*"))
    lines[end] = f"SE*{end - start + 1}*0001~"
    claims, _ = _claims("\n".join(lines) + "\n")
    assert _event_of(claims[0])["patient"] == {"birth_date": "1956-03-02", "sex": "F"}


def test_an_icd9_code_is_read_and_the_rules_reject_it(decider: Decider) -> None:
    text = _x12([readers.event("CLM-9", ["C34.11"], ["71260"])]).replace(
        "HI*ABK:C3411~", "HI*BK:1629~"
    )
    claims, _ = _claims(text)
    assert not claims[0].problems
    output = decider.decide(claims[0], SOURCE)
    assert output.route == "rejected"
    assert [f.rule_id for f in output.findings] == ["MET-001"]


def test_an_unknown_segment_is_a_note_of_its_own_claim() -> None:
    text = _x12(
        [
            readers.event("CLM-A", ["C34.11"], ["71260"]),
            readers.event("CLM-B", ["C79.51"], ["71260"], patient="PT-2"),
        ]
    )
    lines = text.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("CLM*CLM-B*")) + 1
    lines.insert(at, "ZZZ*1*2~")
    start = next(i for i, x in enumerate(lines) if x.startswith("ST*"))
    end = next(i for i, x in enumerate(lines) if x.startswith("SE*"))
    lines[end] = f"SE*{end - start + 1}*0001~"
    first, second = _claims("\n".join(lines) + "\n")[0]
    assert not first.problems
    assert not first.origin.notes
    assert not second.problems  # the stage does not read it: the claim is read
    assert [(n.loop, n.segment) for n in second.origin.notes or ()] == [("2300", "ZZZ")]
    assert "ZZZ*1*2~" in second.raw.decode()


def test_a_truncated_interchange_fails_the_claims_of_its_open_transaction_set() -> None:
    text = _x12(
        [
            readers.event("CLM-A", ["C34.11"], ["71260"]),
            readers.event("CLM-B", ["C79.51"], ["71260"], patient="PT-2"),
        ]
    )
    cut = text[: text.index("\nSE*") + 1]
    claims, _ = _claims(cut)
    assert [c.claim_id for c in claims] == ["CLM-A", "CLM-B"]
    for claim in claims:
        assert [p.type for p in claim.problems] == ["x12_mandatory_segment_missing"]
        assert "has no SE trailer" in claim.problems[0].message


def test_a_wrong_interchange_trailer_is_a_note_and_fails_no_claim() -> None:
    text = _x12([readers.event("CLM-A", ["C34.11"], ["71260"])]).replace("IEA*1*", "IEA*3*")
    claims, notes = _claims(text)
    assert not claims[0].problems
    assert len(notes) == 1
    assert "IEA" in notes[0]


def test_an_isa_that_cannot_be_read_is_one_dead_letter_keeping_the_whole_input(
    decider: Decider,
) -> None:
    text = _x12([readers.event("CLM-A", ["C34.11"], ["71260"])])
    data = text.replace("ISA*00*          *00*", "ISA*00*00*", 1).encode()  # ISA02 left out
    claims, _ = _claims(data)
    assert len(claims) == 1
    assert claims[0].raw == data.strip()
    assert claims[0].problems[0].type == "x12_no_envelope"
    assert "sixteen elements" in claims[0].problems[0].message


def test_a_claim_not_utf8_where_the_stage_reads_is_a_not_utf8_dead_letter(
    decider: Decider,
) -> None:
    text = _x12([readers.event("CLM-A", ["C34.11"], ["71260"])])
    data = text.replace("HI*ABK:C3411~", "HI*ABK:C34\xe911~").encode("latin-1")
    claims, _ = _claims(data)
    assert claims[0].problems[0].type == "x12_not_utf8"
    assert b"HI*ABK:C34\xe911~" in claims[0].raw
    letter = DeadLetter.model_validate_json(decider.decide(claims[0], SOURCE).value)
    assert letter.error.kind == "not_utf8"


def test_an_interchange_of_another_guide_is_refused_by_name() -> None:
    text = _x12([readers.event("CLM-A", ["C34.11"], ["71260"])])
    # 4010: the stage does not read that guide
    old = text.replace("005010X222A1", "004010X098A1").replace("*^*00501*", "*U*00401*")
    claims, _ = _claims(old)
    assert claims[0].problems[0].type == "x12_unsupported_guide"
    assert claims[0].origin.format == "x12-837p"
    # the dental 837: refused by name, claim by claim
    claims, _ = _claims(text.replace("005010X222A1", "005010X224A2"))
    assert claims[0].problems[0].type == "x12_unsupported_guide"
    assert claims[0].claim_id == "CLM-A"


def test_a_claim_with_no_service_date_names_what_is_missing() -> None:
    text = _x12([readers.event("CLM-A", ["C34.11"], ["71260"])])
    text = text.replace("DTP*472*D8*20260514~\n", "")
    claims, _ = _claims(text)
    assert any(
        p.type == "x12_mandatory_segment_missing" and p.loc[-1] == "DTP" for p in claims[0].problems
    )


def test_an_x12_record_on_the_input_topic_is_told_to_use_ingest(decider: Decider) -> None:
    output = decider.decide(_x12([readers.event("CLM-A", ["C34.11"], ["71260"])]).encode(), SOURCE)
    letter = DeadLetter.model_validate_json(output.value)
    assert "claims-stage ingest" in letter.error.message


# --- FHIR --------------------------------------------------------------------------------------


def _claim(event: dict[str, Any] | None = None) -> dict[str, Any]:
    return claimfiles.fhir_claim_with_patient(
        event or readers.event("CLM-F", ["C34.11", "C79.51"], ["71260"]), CREATED
    )


def _decide_claim(decider: Decider, claim: dict[str, Any]) -> Output:
    return decider.decide(json.dumps(claim).encode(), SOURCE, key=b"k")


def test_a_fhir_claim_record_is_decided_like_its_native_event(decider: Decider) -> None:
    event = readers.event("CLM-F", ["C34.11", "C79.51"], ["71260"])
    fhir_output = _decide_claim(decider, _claim(event))
    assert verdict(fhir_output) == verdict(decider.decide(json.dumps(event).encode(), SOURCE))
    decision = Decision.model_validate_json(fhir_output.value)
    assert decision.origin is not None
    assert decision.origin.format == "fhir-r4"
    assert fhir_output.key == b"CLM-F"


def test_a_bundle_record_must_hold_one_claim(decider: Decider) -> None:
    one = claimfiles.fhir_bundle([readers.event("CLM-1", ["C34.11"])], "b1", CREATED)
    assert decider.decide(json.dumps(one).encode(), SOURCE).route == "validated"
    two = claimfiles.fhir_bundle(
        [readers.event("CLM-1", ["C34.11"]), readers.event("CLM-2", ["C61"])], "b2", CREATED
    )
    raw = json.dumps(two).encode()
    letter = DeadLetter.model_validate_json(decider.decide(raw, SOURCE).value)
    assert "holds 2 claims" in letter.error.message
    assert letter.raw_value.encode() == raw


def test_another_fhir_resource_is_not_a_claim(decider: Decider) -> None:
    letter = DeadLetter.model_validate_json(
        decider.decide(b'{"resourceType": "Patient", "id": "p"}', SOURCE).value
    )
    assert letter.error.details[0].type == "fhir_not_a_claim"


def test_a_native_event_that_mentions_resource_type_stays_native(decider: Decider) -> None:
    event = readers.event("CLM-N", ["C34.11"])
    event["context"] = {"reason_for_encounter": 'note: "resourceType" seen in the chart'}
    output = decider.decide(json.dumps(event).encode(), SOURCE)
    assert output.route == "validated"
    assert "origin" not in json.loads(output.value)


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (lambda c: c.pop("subType"), "outpatient"),  # the type of bill 0131 remains
        (lambda c: [c.pop(k) for k in ("subType", "supportingInfo")], None),
        (lambda c: c.update(subType={"coding": [{"code": "inpatient"}]}), "inpatient"),
    ],
    ids=["type of bill", "nothing tells", "subtype"],
)
def test_an_institutional_claims_setting(
    decider: Decider, change: Any, setting: str | None
) -> None:
    claim = _claim(readers.event("CLM-I", ["C50.912"], ["96413"], setting="outpatient"))
    change(claim)
    output = _decide_claim(decider, claim)
    if setting is None:
        assert (
            DeadLetter.model_validate_json(output.value).error.details[0].type
            == "fhir_setting_unknown"
        )
    else:
        assert json.loads(output.value)["encounter"]["setting"] == setting


def test_an_encounter_class_tells_an_institutional_setting(decider: Decider) -> None:
    claim = _claim(readers.event("CLM-I", ["C50.912"], ["96413"], setting="outpatient"))
    claim.pop("subType")
    claim.pop("supportingInfo")
    claim["contained"].append(
        {"resourceType": "Encounter", "id": "enc", "status": "finished", "class": {"code": "IMP"}}
    )
    claim["item"][0]["encounter"] = [{"reference": "#enc"}]
    assert json.loads(_decide_claim(decider, claim).value)["encounter"]["setting"] == "inpatient"


def test_fhir_reading_details(decider: Decider) -> None:
    claim = _claim(readers.event("CLM-R", ["C34.11", "C79.51"], ["71260", "J9271"]))
    claim["contained"][0]["birthDate"] = "1956"  # partial: no day, left out
    claim["contained"].append(
        {
            "resourceType": "Condition",
            "id": "dx2",
            "subject": {"reference": "#patient"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C79.51"}]},
        }
    )
    claim["diagnosis"][1] = {"sequence": 2, "diagnosisReference": {"reference": "#dx2"}}
    claim["item"].append(
        {
            "sequence": 3,
            "productOrService": {
                "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0006-3026-02"}]
            },
        }
    )
    read = json.loads(_decide_claim(decider, claim).value)["encounter"]
    assert read["patient"] == {"sex": "F"}
    assert [d["code"] for d in read["diagnoses"]] == ["C34.11", "C79.51"]
    assert [p["code"] for p in read["procedures"]] == [
        "71260",
        "J9271",
    ]  # the NDC line is no procedure


@pytest.mark.parametrize(
    ("change", "where", "type_"),
    [
        (
            lambda c: c["contained"][0].update(gender="femme"),
            "Patient.gender",
            "fhir_missing_claim_data",
        ),
        (
            lambda c: c["diagnosis"][1].update(sequence=3),
            "Claim.diagnosis[1].sequence",
            "fhir_diagnosis_sequence",
        ),
        (
            lambda c: [c.pop("identifier"), c.pop("id")],
            "Claim.identifier",
            "fhir_missing_claim_data",
        ),
        (lambda c: c.update(diagnosis=[]), "Claim.diagnosis", "fhir_missing_claim_data"),
        (
            lambda c: c["item"][0].update(sequence="one"),
            "Claim.item[0].sequence",
            "fhir_int_parsing",
        ),
    ],
    ids=[
        "gender",
        "sequence gap",
        "no identifier",
        "no diagnosis",
        "not an int",
    ],
)
def test_a_bad_fhir_claim_is_a_dead_letter_naming_the_element(
    decider: Decider, change: Any, where: str, type_: str
) -> None:
    claim = _claim()
    change(claim)
    raw = json.dumps(claim).encode()
    output = decider.decide(raw, SOURCE, key=b"key-1")
    letter = DeadLetter.model_validate_json(output.value)
    assert letter.error.message.startswith(f"{where}:"), letter.error.message
    assert letter.error.details[0].type == type_
    assert letter.raw_value.encode() == raw  # the record, exactly
    assert output.key == b"key-1"


def test_a_dangling_item_pointer_is_a_contract_violation_naming_the_item(decider: Decider) -> None:
    claim = _claim()
    claim["item"][0]["diagnosisSequence"] = [7]
    letter = DeadLetter.model_validate_json(_decide_claim(decider, claim).value)
    assert letter.error.details[0].loc == ("procedures", 0, "diagnosis_pointers", 0)
    assert letter.error.message.endswith("(Claim.item[0])")


# --- any event, written as an 837 and as FHIR, reads back into itself --------------------------

DIAGNOSIS_CODES = ["C34.11", "C79.51", "Z51.11", "C50.912", "R64", "E88.A", "C7B.02", "Z85.3"]
PROCEDURE_CODES = ["71260", "96413", "J9271", "77373", "99214", "A9552", "0001U"]


@st.composite
def events(draw: st.DrawFn, claim: int) -> dict[str, Any]:
    setting = draw(st.sampled_from(["professional", "outpatient", "inpatient"]))
    limit = 12 if setting == "professional" else 25
    codes = draw(st.lists(st.sampled_from(DIAGNOSIS_CODES), min_size=1, max_size=limit))
    start = dt.date(2026, 1, 1) + dt.timedelta(days=draw(st.integers(0, 272)))
    procedures = []
    # an 837P claim bills at least one service line; an institutional one may bill none
    for line in range(1, draw(st.integers(1 if setting == "professional" else 0, 4)) + 1):
        procedure: dict[str, Any] = {
            "line": line,
            "code": draw(st.sampled_from(PROCEDURE_CODES)),
            "units": draw(st.integers(1, 9)),
        }
        modifiers = draw(st.lists(st.sampled_from(["26", "59", "LT", "RT", "25"]), max_size=4))
        if modifiers:
            procedure["modifiers"] = modifiers
        if setting == "professional":
            pointers = st.integers(1, len(codes))
            procedure["diagnosis_pointers"] = draw(st.lists(pointers, min_size=1, max_size=4))
        procedures.append(procedure)
    event = readers.event(
        f"CLM-{claim:06d}",
        codes,
        setting=setting,
        date=start.isoformat(),
        patient=f"PT-{claim}",
        sex=draw(st.sampled_from(["F", "M", "U"])),
    )
    event["procedures"] = procedures
    event["payer_id"] = draw(st.sampled_from(sorted(claimfiles.PAYERS)))
    if setting == "inpatient":
        stay = dt.timedelta(days=draw(st.integers(0, 20)))
        event["discharge_date"] = (start + stay).isoformat()
    return event


def _comparable(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the rules read it, whichever way it was written."""
    return {
        "claim_id": event["claim_id"],
        "setting": event["setting"],
        "date_of_service": event["date_of_service"],
        "discharge_date": event.get("discharge_date") if event["setting"] == "inpatient" else None,
        "patient": {k: v for k, v in event["patient"].items() if k != "id"},
        "payer_id": event["payer_id"],
        "diagnoses": [normalize_icd10cm(d["code"]) for d in event["diagnoses"]],
        "procedures": [
            (
                p["line"],
                p["code"],
                p.get("units", 1),
                tuple(p.get("modifiers") or ()),
                tuple(p.get("diagnosis_pointers") or ())
                if event["setting"] == "professional"
                else (),
            )
            for p in event.get("procedures") or ()
        ],
    }


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_event_written_as_an_837_and_as_fhir_reads_back_into_itself(
    data: st.DataObject,
) -> None:
    written = [data.draw(events(claim)) for claim in range(data.draw(st.integers(1, 6)))]
    professional = [e for e in written if e["setting"] == "professional"]
    institutional = [e for e in written if e["setting"] != "professional"]
    text = (_x12(professional, "837p", 1) if professional else "") + (
        _x12(institutional, "837i", 2) if institutional else ""
    )
    claims, notes = _claims(text)  # one file of up to two interchanges: one pyx12 reader
    assert notes == []
    read = [_event_of(claim) for claim in claims]
    by_id = {e["claim_id"]: _comparable(e) for e in written}
    assert {e["claim_id"]: _comparable(e) for e in read} == by_id
    for event in written:
        claim = claimfiles.fhir_claim_with_patient(event, CREATED)
        adapted = fhir.adapt_record(claim, json.dumps(claim).encode())
        assert _comparable(_event_of(adapted)) == by_id[event["claim_id"]]


class _Pipe(io.BytesIO):
    """Standard input from a pipe: it cannot seek."""

    def seekable(self) -> bool:
        return False

    def seek(self, *_: Any) -> int:
        raise io.UnsupportedOperation("seek")


@pytest.mark.parametrize("file_name", ["837i.x12", "bundle.json", "claims.jsonl"])
def test_a_pipe_is_read_like_a_file(decider: Decider, file_name: str) -> None:
    data = (CLAIMS / file_name).read_bytes()
    from_file = [verdict(o) for o in outputs(decider, data)]
    reading = read_input(_Pipe(data), "-")
    assert [verdict(decider.decide(v, s)) for v, s in reading.records] == from_file


def test_a_bug_on_an_adapted_claim_keeps_the_claim_for_replay(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any) -> Output:
        raise RuntimeError("a bug")

    claims, _ = _claims(_x12([readers.event("CLM-A", ["C34.11"], ["71260"])]))
    monkeypatch.setattr(decider, "_decision", boom)
    letter = DeadLetter.model_validate_json(decider.decide(claims[0], SOURCE).value)
    assert letter.error.kind == "internal_error"
    assert letter.raw_value.encode() == claims[0].raw
    assert letter.origin == claims[0].origin
