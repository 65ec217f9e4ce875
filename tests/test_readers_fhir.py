"""The FHIR reader on claims as the US ecosystem writes them: CARIN Blue Button, a type of
bill told by its system, CMS Blue Button 2.0, Encounters; ExplanationOfBenefit wherever a
Claim is read; faults in elements the stage does not read are notes; nothing is lost."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench import claimfiles
from stream.cli import ingest, readers
from stream.cli.main import app
from stream.cli.readers import read_input
from stream.core.adapters import fhir
from stream.core.decision import Decider
from stream.settings import Settings
from tests.readers import CREATED, SOURCE, decision, event, letter, note_types, outputs, verdict

ROOT = Path(__file__).resolve().parent.parent
CLAIMS = ROOT / "schemas" / "examples" / "claims"
runner = CliRunner()

STAY = event(
    "CLM-IN", ["C18.7", "C78.7"], setting="inpatient", date="2026-05-02", discharge="2026-05-09"
)
VISIT = event("CLM-OUT", ["Z51.11", "C50.912"], ["96413"], setting="outpatient", patient="PT-2")
OFFICE = event("CLM-PRO", ["C34.11", "C79.51"], ["71260"], patient="PT-3")
CONVENTIONS: list[claimfiles.Convention] = [
    "carin",
    "type-of-bill",
    "bill-type-subtype",
    "blue-button",
]


def _native(decider: Decider, event_: dict[str, Any]) -> dict[str, Any]:
    return verdict(decider.decide(json.dumps(event_).encode(), SOURCE))


def _record(
    event_: dict[str, Any],
    convention: claimfiles.Convention = "carin",
    resource_type: claimfiles.ResourceType = "Claim",
) -> dict[str, Any]:
    return claimfiles.fhir_claim_with_patient(event_, CREATED, convention, resource_type)


def _decide(decider: Decider, resource: dict[str, Any]) -> Any:
    return decider.decide(json.dumps(resource).encode(), SOURCE)


# --- every example claim, in every convention ------------------------------------------------


def _example_events() -> list[dict[str, Any]]:
    """The example stream's events that an 837 or a FHIR claim can carry (decided, with a
    payer and a patient, their decision standing without their context), as the example
    claim files' generator chooses them."""
    spec = importlib.util.spec_from_file_location("claims_generate", CLAIMS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    return [
        {k: v for k, v in e.items() if k != "context"} for e, _ in generate.native_events(Decider())
    ]


@pytest.fixture(scope="module")
def examples() -> list[dict[str, Any]]:
    return _example_events()


@pytest.mark.parametrize(
    ("convention", "resource_type"),
    [(c, "Claim") for c in CONVENTIONS]
    + [("carin", "ExplanationOfBenefit")]
    + [("blue-button", "ExplanationOfBenefit")],
)
def test_every_example_claim_gets_its_native_decision_in_each_convention(
    decider: Decider,
    examples: list[dict[str, Any]],
    convention: claimfiles.Convention,
    resource_type: claimfiles.ResourceType,
) -> None:
    assert len(examples) > 100
    bundle = claimfiles.fhir_bundle(examples, "conventions", CREATED, convention, resource_type)
    results = outputs(decider, json.dumps(bundle))
    assert len(results) == len(examples)
    for event_, output in zip(examples, results, strict=True):
        assert verdict(output) == _native(decider, event_), event_["claim_id"]
        assert decision(output).origin.resource_type == resource_type  # type: ignore[union-attr]


# --- the institutional setting, by each convention ----------------------------------------


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("event_", [STAY, VISIT], ids=["inpatient", "outpatient"])
def test_each_convention_tells_the_setting(
    decider: Decider, convention: claimfiles.Convention, event_: dict[str, Any]
) -> None:
    resource = _record(event_, convention)
    if convention != "carin":
        assert "C4BBInstitutionalClaimSubType" not in json.dumps(resource)
    output = _decide(decider, resource)
    assert decision(output).encounter.setting == event_["setting"]


@pytest.mark.parametrize(
    ("coding", "setting"),
    [
        ({"system": fhir.BLUE_BUTTON_CLAIM_TYPE, "code": "60"}, "inpatient"),
        ({"system": fhir.BLUE_BUTTON_CLAIM_TYPE, "code": "40"}, "outpatient"),
        ({"system": fhir.BLUE_BUTTON_EOB_TYPE, "code": "INPATIENT"}, "inpatient"),
        ({"system": fhir.BLUE_BUTTON_EOB_TYPE, "code": "OUTPATIENT"}, "outpatient"),
    ],
)
def test_blue_button_claim_types_tell_the_setting_alone(
    decider: Decider, coding: dict[str, str], setting: str
) -> None:
    resource = _record(STAY, "blue-button", "ExplanationOfBenefit")
    resource["type"] = {"coding": [coding]}  # not even the claim-type coding
    assert decision(_decide(decider, resource)).encounter.setting == setting


@pytest.mark.parametrize(
    "encounter_class",
    [{"code": "IMP"}, [{"coding": [{"code": "IMP"}]}]],
    ids=["R4 Coding", "list of CodeableConcepts"],
)
def test_an_encounter_class_tells_the_setting(decider: Decider, encounter_class: object) -> None:
    resource = _record(STAY, "bill-type-subtype")
    resource.pop("subType")
    resource["contained"].append(
        {"resourceType": "Encounter", "id": "stay", "status": "finished", "class": encounter_class}
    )
    resource["item"][0]["encounter"] = [{"reference": "#stay"}]
    output = _decide(decider, resource)
    assert decision(output).encounter.setting == "inpatient"


def test_no_setting_at_all_is_a_dead_letter_naming_the_conventions(decider: Decider) -> None:
    resource = _record(STAY, "bill-type-subtype")
    resource.pop("subType")
    dead = letter(_decide(decider, resource))
    assert dead.error.details[0].type == "fhir_setting_unknown"
    assert "type of bill" in dead.error.message
    assert "Blue Button" in dead.error.message


# --- claim ID, codes, units ------------------------------------------------------------------


def test_the_claim_id_is_the_resource_id_when_there_is_no_identifier(decider: Decider) -> None:
    resource = _record(OFFICE)
    resource.pop("identifier")
    output = _decide(decider, resource)
    assert decision(output).claim_id == resource["id"]
    assert note_types(output) == ["fhir_claim_id_from_id"]
    resource.pop("id")
    assert letter(_decide(decider, resource)).error.message.startswith("Claim.identifier:")


def test_icd10_codings_are_read_as_icd10cm_with_a_note(decider: Decider) -> None:
    output = _decide(decider, _record(OFFICE, "blue-button"))
    assert verdict(output) == _native(decider, OFFICE)
    assert "fhir_icd10_read_as_icd10cm" in note_types(output)


def test_minutes_are_not_units(decider: Decider) -> None:
    anesthesia = event("CLM-M", ["C34.11"], ["00520"])
    anesthesia["procedures"][0].update(units=1, minutes=88)
    output = _decide(decider, _record(anesthesia))
    line = json.loads(output.value)["encounter"]["procedures"][0]
    assert (line["units"], line["minutes"]) == (1, 88)
    assert verdict(output) == _native(decider, anesthesia)


# --- judged by what the stage reads --------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "element"),
    [
        (lambda c: c["insurance"][0].pop("coverage"), "Claim.insurance"),
        (lambda c: c.pop("provider"), "Claim.provider"),
        (lambda c: c["contained"].append({"resourceType": "Nonsense", "id": "x"}), "Claim"),
        (lambda c: c["item"][0].update(net={"value": "a lot"}), "Claim.item"),
        (lambda c: c["contained"][0].update(address="a street"), "Patient.address"),
        (lambda c: c.update(careTeam=[{"sequence": "first"}]), "Claim.careTeam"),
    ],
    ids=["insurance", "provider", "unknown contained", "item net", "patient address", "care team"],
)
def test_a_fault_where_the_stage_does_not_read_is_a_note(
    decider: Decider, change: Any, element: str
) -> None:
    resource = _record(OFFICE)
    change(resource)
    output = _decide(decider, resource)
    assert verdict(output) == _native(decider, OFFICE)
    notes = decision(output).origin.notes  # type: ignore[union-attr]
    assert notes is not None
    assert any((n.element or "").startswith(element) for n in notes), notes


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda c: c["item"][0].update(quantity={"value": 1.5}), "Claim.item[0].quantity.value"),
        (lambda c: c["item"][0].update(sequence="one"), "Claim.item[0].sequence"),
        (lambda c: c["contained"][0].update(birthDate="1958-02-30"), "Patient.birthDate"),
        (lambda c: c.update(billablePeriod={"start": "soon"}), "Claim.billablePeriod.start"),
    ],
    ids=["units", "item sequence", "birth date", "period"],
)
def test_a_fault_where_the_stage_reads_is_a_dead_letter(
    decider: Decider, change: Any, where: str
) -> None:
    resource = _record(OFFICE)
    change(resource)
    dead = letter(_decide(decider, resource))
    assert dead.error.message.startswith(where), dead.error.message


# --- ExplanationOfBenefit wherever a Claim is read -----------------------------------------


def test_an_explanation_of_benefit_is_read_in_every_input_shape(decider: Decider) -> None:
    native = [_native(decider, e) for e in (OFFICE, VISIT)]
    eobs = [_record(e, "carin", "ExplanationOfBenefit") for e in (OFFICE, VISIT)]
    bundle = claimfiles.fhir_bundle(
        [OFFICE, VISIT], "eobs", CREATED, "carin", "ExplanationOfBenefit"
    )
    shapes = {
        "record (the input topic)": [_decide(decider, eob) for eob in eobs],
        "JSON Lines": outputs(decider, "".join(json.dumps(e) + "\n" for e in eobs)),
        "a Bundle on one line": outputs(decider, json.dumps(bundle)),
        "a pretty-printed Bundle": outputs(decider, json.dumps(bundle, indent=2)),
        "a pretty-printed EOB": outputs(decider, json.dumps(eobs[0], indent=2)),
    }
    for shape, results in shapes.items():
        assert [verdict(o) for o in results] == native[: len(results)], shape
        assert all(decision(o).origin.resource_type == "ExplanationOfBenefit" for o in results)  # type: ignore[union-attr]


def test_ingest_sends_an_explanation_of_benefit_as_its_encounter_event() -> None:
    bundle = claimfiles.fhir_bundle(
        [OFFICE, VISIT], "eobs", CREATED, "carin", "ExplanationOfBenefit"
    )
    reading = read_input(io.BytesIO(json.dumps(bundle).encode()), "eobs.json")
    counts = ingest.IngestCounts()
    sent = list(ingest._plan(Settings(), reading.records, counts))
    assert (counts.events, counts.dead_letters) == (2, 0)
    events = [json.loads(o.value) for o in sent]
    assert [e["claim_id"] for e in events] == ["CLM-PRO", "CLM-OUT"]
    assert {e["origin"]["resource_type"] for e in events} == {"ExplanationOfBenefit"}


def test_whatif_reads_explanations_of_benefit_as_it_reads_claims(tmp_path: Path) -> None:
    policy = ROOT / "docs" / "policy.toml"
    changes = []
    for name in ("bundle.json", "explanation-of-benefit.json"):
        out = tmp_path / name
        result = runner.invoke(
            app, ["whatif", str(CLAIMS / name), "--rules-config", str(policy), "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        lines = (out / "changes.jsonl").read_bytes().splitlines()
        changes.append(sorted((c["claim_id"], c["route_after"]) for c in map(json.loads, lines)))
    assert changes[0] == changes[1]
    assert changes[0]


# --- nothing crashes, nothing is lost, nothing is silent -----------------------------------


def test_a_failure_reading_one_entry_fails_that_entry_alone(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = fhir._ClaimReader.facts

    def failing(self: Any, patient: Any, claim_id: str | None) -> Any:
        if claim_id == "CLM-OUT":
            raise RuntimeError("a bug")
        return facts(self, patient, claim_id)

    monkeypatch.setattr(fhir._ClaimReader, "facts", failing)
    bundle = claimfiles.fhir_bundle([OFFICE, VISIT, STAY], "b", CREATED)
    results = outputs(decider, json.dumps(bundle))
    assert [o.route == "dead_letter" for o in results] == [False, True, False]
    dead = letter(results[1])
    assert dead.error.kind == "internal_error"
    assert "CLM-OUT" in dead.raw_value  # the entry, kept for replay


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {"resource": {"resourceType": "Patient", "id": "p"}},
                    {"resource": {"resourceType": "Coverage", "id": "c"}},
                    {"resource": {"resourceType": "Patient", "id": "q"}},
                ],
            },
            "the Bundle holds 2 Patient, 1 Coverage",
        ),
        ({"resourceType": "Bundle", "type": "collection"}, "the Bundle has no entries"),
        ({"resourceType": "Bundle", "type": "collection", "entry": "x"}, "entries are not a list"),
        ({"resourceType": "Patient", "id": "p"}, "a FHIR Patient is not a claim"),
    ],
    ids=["other resources", "no entries", "entry not a list", "a Patient"],
)
def test_a_document_with_no_claim_is_a_dead_letter_saying_what_it_holds(
    decider: Decider, document: dict[str, Any], says: str
) -> None:
    for text in (json.dumps(document), json.dumps(document, indent=2)):
        (output,) = outputs(decider, text)
        assert says in letter(output).error.message


def test_a_document_too_large_to_hold_is_a_dead_letter_and_reading_goes_on(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_DOCUMENT_BYTES", 5_000)
    bundle = claimfiles.fhir_bundle([OFFICE, VISIT, STAY], "big", CREATED)
    small = _record(OFFICE)
    lines = json.dumps(bundle) + "\n" + json.dumps(small) + "\n"
    first, second = outputs(decider, lines)
    assert letter(first).error.kind == "too_large"
    assert verdict(second) == _native(decider, OFFICE)
    (only,) = outputs(decider, json.dumps(bundle, indent=2))
    assert letter(only).error.kind == "too_large"


def test_an_empty_input_says_so() -> None:
    reading = read_input(io.BytesIO(b""), "empty")
    assert list(reading.records) == []
    assert reading.notes == ["the input is empty: there is nothing to read"]


def test_every_kind_of_breakage_in_one_bundle_gives_one_output_per_claim(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = fhir._ClaimReader.facts

    def failing(self: Any, patient: Any, claim_id: str | None) -> Any:
        if claim_id == "CLM-BUG":
            raise RuntimeError("a bug")
        return facts(self, patient, claim_id)

    monkeypatch.setattr(fhir._ClaimReader, "facts", failing)
    events = [OFFICE, VISIT, STAY, event("CLM-BUG", ["C61"], ["77373"], patient="PT-4")]
    bundle = claimfiles.fhir_bundle(events, "broken", CREATED)
    claims = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim"]
    claims[0]["item"][0]["quantity"] = {"value": 1.5}  # read: a dead letter
    claims[1]["insurance"] = "none"  # not read: a note
    claims[2]["contained"] = [{"resourceType": "Nonsense"}]  # fhir.resources raises KeyError
    eob = claimfiles.claim_resource(OFFICE, "Patient/x", CREATED, "carin", "ExplanationOfBenefit")
    eob["identifier"][0]["value"] = "CLM-EOB"
    bundle["entry"] += [
        "not an entry",
        {"fullUrl": "urn:x"},
        {"resource": "not a resource"},
        {"resource": eob},
    ]
    results = outputs(decider, json.dumps(bundle))
    assert len(results) == len(claims) + 1  # a Claim or ExplanationOfBenefit, an output
    routes = {o.claim_id: o.route for o in results}
    assert routes == {
        "CLM-PRO": "dead_letter",
        "CLM-OUT": routes["CLM-OUT"],
        "CLM-IN": routes["CLM-IN"],
        "CLM-BUG": "dead_letter",
        "CLM-EOB": routes["CLM-EOB"],
    }
    assert all(routes[c] != "dead_letter" for c in ("CLM-OUT", "CLM-IN", "CLM-EOB"))
    assert letter(results[3]).error.kind == "internal_error"
