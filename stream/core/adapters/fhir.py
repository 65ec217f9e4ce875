"""FHIR R4 `Claim` and `ExplanationOfBenefit` resources into encounter events: alone, with a
contained `Patient`, or in a `Bundle` with the `Patient` as another entry.

fhir.resources validates each resource (and the Patient it names) against the FHIR models;
its `R4B` package is used, whose Claim, ExplanationOfBenefit, Patient and Bundle are those of
R4 (4.0.1) with R4B's technical corrections, since the 8.x releases ship no separate R4
package. Each resource of a Bundle is read on its own, so that one bad entry fails only
itself; an exception while reading one (fhir.resources' or the stage's own) fails that entry
alone, as a dead letter keeping it.

**What the stage reads** (`READ_ELEMENTS`): `id`, `identifier` (the claim ID; the resource
`id` when there is none, noted in `origin`), `type` and `subType`, `supportingInfo`,
`billablePeriod`, `insurer`, `patient` -> `Patient.birthDate` and `gender`, `diagnosis`
(`sequence`, and the ICD-10-CM coding of `diagnosisCodeableConcept` or of the `Condition` a
`diagnosisReference` names), `item` (`sequence`, `productOrService` with a CPT or HCPCS
coding, `modifier`, `quantity`, `diagnosisSequence`, `servicedDate` or `servicedPeriod`,
the `class` of the `Encounter` it names), and `Bundle.id`. A validation error in any of
these fails the claim; one in any other element (`insurance`, `provider`, `careTeam`,
`adjudication`, an extension, a contained resource other than the Patient...) is a note in
`origin` and the claim is read.

**The US conventions read** for an institutional claim's setting, in this order: CARIN
Blue Button's `subType` (inpatient, outpatient); a type of bill coded in the NUBC or CMS
bill-type system, in `subType` or in `supportingInfo` under any category (or under CARIN's
`typeofbill` category in any system): 11x, 12x... as on an 837I; CMS Blue Button 2.0's `type`
codings (`nch_clm_type_cd` 60 inpatient, 40 outpatient..., `eob-type` INPATIENT,
OUTPATIENT...); the `class` of an Encounter an item names. Diagnoses coded in
`http://hl7.org/fhir/sid/icd-10` (which Blue Button 2.0 uses for ICD-10-CM codes) are read
as ICD-10-CM when no ICD-10-CM coding is given, with a note; a code that is not in
ICD-10-CM then fails MET-001 like any other.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim, ClaimItem
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit, ExplanationOfBenefitItem
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from stream.core.adapters.formats import (
    AdaptedClaim,
    ClaimFacts,
    Problem,
    ServiceLine,
    capped_notes,
    encounter_event,
    printable,
    whole_units,
)
from stream.core.contracts import Origin, OriginNote, Setting, Sex

ICD10CM_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:2.16.840.1.113883.6.90"})
ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10", "urn:oid:2.16.840.1.113883.6.3"})
"""ICD-10 (WHO): Blue Button 2.0 codes ICD-10-CM diagnoses in this system."""
CPT_SYSTEMS = frozenset({"http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12"})
HCPCS_SYSTEMS = frozenset(
    {
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://terminology.hl7.org/CodeSystem/HCPCS",
        "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
        "urn:oid:2.16.840.1.113883.6.285",
    }
)
PROCEDURE_SYSTEMS = CPT_SYSTEMS | HCPCS_SYSTEMS
TYPE_OF_BILL_SYSTEMS = frozenset(
    {
        "https://www.nubc.org/CodeSystem/TypeOfBill",
        "http://www.nubc.org/CodeSystem/TypeOfBill",
        "https://www.cms.gov/codes/billtype",
        "http://www.cms.gov/codes/billtype",
    }
)
"""A type of bill coded by NUBC (CARIN) or in the CMS bill-type system (the R4 examples)."""
BLUE_BUTTON_CLAIM_TYPE = "https://bluebutton.cms.gov/resources/variables/nch_clm_type_cd"
BLUE_BUTTON_EOB_TYPE = "https://bluebutton.cms.gov/resources/codesystem/eob-type"
BLUE_BUTTON_SETTINGS: dict[tuple[str, str], Setting] = {
    **{(BLUE_BUTTON_CLAIM_TYPE, code): "inpatient" for code in ("60", "61", "20", "30")},
    **{(BLUE_BUTTON_CLAIM_TYPE, code): "outpatient" for code in ("40", "10", "50")},
    **{(BLUE_BUTTON_EOB_TYPE, code): "inpatient" for code in ("INPATIENT", "SNF")},
    **{(BLUE_BUTTON_EOB_TYPE, code): "outpatient" for code in ("OUTPATIENT", "HHA", "HOSPICE")},
}
"""CMS Blue Button 2.0's claim types: inpatient (60, 61) and skilled nursing stays (20, 30)
are inpatient, as their types of bill 11x and 21x are; hospital outpatient (40), home health
(10) and hospice (50) claims are outpatient."""
BLUE_BUTTON_PROFESSIONAL = frozenset(
    {
        *((BLUE_BUTTON_CLAIM_TYPE, code) for code in ("71", "72", "81", "82")),
        *((BLUE_BUTTON_EOB_TYPE, code) for code in ("CARRIER", "DME")),
    }
)
CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
INPATIENT_ENCOUNTER_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
"""v3 ActCode encounter classes of an inpatient stay; every other class is outpatient."""
MINUTE_UNITS = frozenset({"min", "minute", "minutes"})
_GENDERS: dict[str, Sex] = {"female": "F", "male": "M", "other": "U", "unknown": "U"}

CLAIM_RESOURCES: dict[str, Any] = {"Claim": Claim, "ExplanationOfBenefit": ExplanationOfBenefit}
"""The resources read as claims, with their fhir.resources models."""
Read = dict[str, frozenset[str] | None]
READ_ELEMENTS: Read = {
    **dict.fromkeys(("resourceType", "id", "identifier", "type", "subType")),
    **dict.fromkeys(("billablePeriod", "insurer", "patient")),
    "supportingInfo": frozenset({"sequence", "category", "code"}),
    "diagnosis": frozenset({"sequence", "diagnosisCodeableConcept", "diagnosisReference"}),
    "item": frozenset(
        {
            *("sequence", "productOrService", "modifier", "quantity", "diagnosisSequence"),
            *("servicedDate", "servicedPeriod", "encounter"),
        }
    ),
}
"""The elements of a Claim or ExplanationOfBenefit the stage reads: whole (None), or only
the members named of each entry of a list."""
_REQUIRED: dict[str, Any] = {"status": "active", "use": "claim", "created": "2000-01-01"}
_STAND_INS: dict[str, dict[str, Any]] = {
    "Claim": {
        **_REQUIRED,
        "provider": {"display": "not read"},
        "priority": {"text": "not read"},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "not read"}}],
    },
    "ExplanationOfBenefit": {
        **_REQUIRED,
        "outcome": "complete",
        "provider": {"display": "not read"},
        "insurance": [{"focal": True, "coverage": {"display": "not read"}}],
    },
}
"""Values for the elements fhir.resources requires and the stage does not read, so that a
resource whose only faults are there can be validated on what the stage reads."""
READ_PATIENT: Read = dict.fromkeys(("resourceType", "id", "birthDate", "gender"))
MAX_KINDS_NAMED = 20

Resolver = Callable[[str | None], dict[str, Any] | None]
"""Finds the resource a reference names: contained (`#id`) or in the same Bundle."""
ClaimModel = Claim | ExplanationOfBenefit


def is_fhir(document: object) -> bool:
    return isinstance(document, dict) and isinstance(document.get("resourceType"), str)


def adapt_record(document: dict[str, Any], raw: bytes) -> AdaptedClaim:
    """One input record that is a FHIR resource: a Claim or ExplanationOfBenefit, or a
    Bundle holding one.

    One record is one claim: a Bundle of several is refused with the way to split it.
    """
    kind = document.get("resourceType")
    if kind in CLAIM_RESOURCES:
        origin = Origin(format="fhir-r4", claim_position=1, resource_type=kind)
        return _adapt(document, raw, _contained(document), origin)
    if kind == "Bundle":
        claims = list(read_bundle(document))
        if len(claims) == 1:
            claims[0].raw = raw
            return claims[0]
        return _refused(
            raw,
            ("Bundle", "entry"),
            f"the Bundle holds {len(claims)} claims; one record is one claim "
            "(`claims-stage ingest` and `claims-stage check` split a Bundle into its claims)",
            "fhir_claim_count",
            bundle_id=document.get("id"),
        )
    return _refused(
        raw,
        (printable(str(kind)),),
        f"a FHIR {printable(str(kind))} is not a claim: the stage reads Claim and "
        "ExplanationOfBenefit resources, alone or in a Bundle",
        "fhir_not_a_claim",
    )


def read_bundle(document: dict[str, Any], line: int = 1) -> Iterator[AdaptedClaim]:
    """Every Claim and ExplanationOfBenefit of a Bundle, in entry order, each with the
    Bundle's resources to resolve its references; a Bundle with none is one dead letter
    that says what it holds."""
    listed = document.get("entry")
    entries: list[Any] = listed if isinstance(listed, list) else []
    envelope = {k: v for k, v in document.items() if k != "entry"}
    shell = _bundle_notes(envelope, listed)
    by_reference = _entry_index(entries)
    resolve = _resolver(by_reference)
    held: Counter[str] = Counter()
    position = 0
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(resource, dict) or kind not in CLAIM_RESOURCES:
            if len(held) < MAX_KINDS_NAMED or str(kind) in held:
                held[str(kind) if kind else "entry without a resource"] += 1
            continue
        position += 1
        raw = _claim_bundle(envelope, entry, by_reference)
        origin = Origin(
            format="fhir-r4",
            claim_position=position,
            resource_type=kind,
            resource_id=_text(resource.get("id")),
            bundle_id=_text(document.get("id")),
        )
        claim = _entry(resource, raw, resolve, origin, index, shell)
        claim.line = line
        yield claim
    if position == 0:
        yield _nothing_to_read(document, held, listed, line)


def _entry(
    resource: dict[str, Any],
    raw: bytes,
    resolve: Resolver,
    origin: Origin,
    index: int,
    shell: list[OriginNote],
) -> AdaptedClaim:
    """One claim of a Bundle; whatever fails while reading it fails it alone."""
    where = f"Bundle.entry[{index}]"
    try:
        return _adapt(resource, raw, _chain(_contained(resource), resolve), origin, where, shell)
    except Exception as error:  # a bug in fhir.resources or in the stage: this entry only
        return AdaptedClaim(
            raw=raw,
            origin=origin,
            claim_id=_claim_id(resource)[0],
            kind="internal_error",
            problems=(
                Problem(
                    ("Bundle", "entry", index),
                    f"{where}: the stage failed reading this {origin.resource_type} "
                    f"({type(error).__name__}); it is kept whole and can be replayed once "
                    "the stage is fixed",
                    "fhir_reader_error",
                ),
            ),
        )


def _bundle_notes(envelope: dict[str, Any], listed: object) -> list[OriginNote]:
    """The Bundle's own faults (its `type`, `timestamp`...): the stage reads only its `id`
    and entries, so they are notes of each claim in it."""
    _, problems = _validated(Bundle, {**envelope, "entry": []}, "Bundle")
    notes = [_as_note(problem) for problem in problems]
    if listed is not None and not isinstance(listed, list):
        notes.append(OriginNote(message="Bundle.entry: must be a list", type="fhir_list_type"))
    return notes


def _nothing_to_read(
    document: dict[str, Any], held: Counter[str], listed: object, line: int
) -> AdaptedClaim:
    """The dead letter of a Bundle in which nothing can be read as a claim."""
    if held:
        what = ", ".join(f"{count} {kind}" for kind, count in held.most_common())
        holds = f"the Bundle holds {what}"
    else:
        holds = (
            "the Bundle has no entries"
            if listed is None or listed == []
            else "the Bundle's entries are not a list"
        )
    claim = _refused(
        orjson.dumps(document),
        ("Bundle", "entry"),
        f"{printable(holds)}: no Claim or ExplanationOfBenefit, nothing the stage can read as "
        "a claim",
        "fhir_no_claim",
        bundle_id=document.get("id"),
    )
    claim.line = line
    return claim


def _text(value: object) -> str | None:
    return printable(value) if isinstance(value, str) and value else None


def _refused(
    raw: bytes, loc: tuple[str | int, ...], message: str, type: str, bundle_id: object = None
) -> AdaptedClaim:
    return AdaptedClaim(
        raw=raw,
        origin=Origin(format="fhir-r4", claim_position=1, bundle_id=_text(bundle_id)),
        claim_id=None,
        problems=(Problem(loc, message, type),),
    )


# --- references ------------------------------------------------------------------------------


def _contained(resource: dict[str, Any]) -> Resolver:
    contained = {
        f"#{r['id']}": r for r in _dicts(resource.get("contained")) if isinstance(r.get("id"), str)
    }
    return lambda reference: contained.get(reference or "")


def _entry_index(entries: list[Any]) -> dict[str, dict[str, Any]]:
    """A Bundle's entries by the references that can name them: `fullUrl`, or relative
    (`Patient/123`)."""
    index: dict[str, dict[str, Any]] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        if isinstance(entry.get("fullUrl"), str):
            index[entry["fullUrl"]] = entry
        if isinstance(resource.get("resourceType"), str) and isinstance(resource.get("id"), str):
            index[f"{resource['resourceType']}/{resource['id']}"] = entry
    return index


def _resolver(index: dict[str, dict[str, Any]]) -> Resolver:
    def resolve(reference: str | None) -> dict[str, Any] | None:
        entry = index.get(reference or "")
        return entry["resource"] if entry is not None else None

    return resolve


def _chain(first: Resolver, second: Resolver) -> Resolver:
    return lambda reference: first(reference) or second(reference)


def _claim_bundle(
    envelope: dict[str, Any], entry: dict[str, Any], index: dict[str, dict[str, Any]]
) -> bytes:
    """A claim's part of a Bundle, which its dead letter keeps: a Bundle of the claim's entry
    and the entries of the Patient, Encounters and Conditions it names."""
    claim = entry["resource"]
    named = [_reference(claim.get("patient"))]
    named += [_reference(d.get("diagnosisReference")) for d in _dicts(claim.get("diagnosis"))]
    named += [_reference(e) for i in _dicts(claim.get("item")) for e in _dicts(i.get("encounter"))]
    related: dict[int, dict[str, Any]] = {}
    for reference in named:
        other = index.get(reference or "")
        if other is not None and other is not entry:
            related.setdefault(id(other), other)
    return orjson.dumps({**envelope, "entry": [entry, *related.values()]})


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _reference(value: object) -> str | None:
    return _text(value.get("reference")) if isinstance(value, dict) else None


# --- validation -------------------------------------------------------------------------------


def _validated(model: Any, resource: dict[str, Any], path: str) -> tuple[Any, list[Problem]]:
    """fhir.resources' verdict on a resource: the model, or the errors, each located by its
    element path."""
    try:
        return model.model_validate(resource), []
    except ValidationError as error:
        return None, [
            Problem(
                loc=(path, *e["loc"]),
                message=printable(f"{_element_path(path, e['loc'])}: {e['msg']}"),
                type=f"fhir_{e['type']}",
            )
            for e in error.errors(include_url=False, include_input=False)
        ]
    except (KeyError, ValueError, TypeError) as error:
        # fhir.resources raises a bare KeyError for a contained resource of an unknown type
        return None, [
            Problem(
                loc=(path,),
                message=printable(
                    f"{path}: fhir.resources cannot read it ({type(error).__name__}: {error})"
                ),
                type="fhir_unreadable",
            )
        ]


def _validated_on_read(
    model: Any, resource: dict[str, Any], path: str, read: Read, stand_ins: dict[str, Any]
) -> tuple[Any, list[Problem], list[OriginNote]]:
    """A resource validated on the elements the stage reads: its model, the problems in
    those elements (none when the model is given), and notes of the faults elsewhere."""
    instance, problems = _validated(model, resource, path)
    if instance is not None:
        return instance, [], []
    in_read = [p for p in problems if p.type != "fhir_unreadable" and _reads(p.loc, read)]
    if in_read:
        return None, in_read + [p for p in problems if p not in in_read], []
    reduced = {k: _only(v, read[k]) for k, v in resource.items() if k in read} | stand_ins
    instance, read_problems = _validated(model, reduced, path)
    if instance is None:
        return None, read_problems, []
    return instance, [], [_as_note(p) for p in problems]


def _reads(loc: tuple[str | int, ...], read: Read) -> bool:
    """Whether an error at `loc` (the resource type, then pydantic's location) is in an
    element the stage reads; an error of the whole resource is."""
    names = [part for part in loc[1:] if isinstance(part, str)]
    if not names:
        return True
    if names[0] not in read:
        return False
    members = read[names[0]]
    return members is None or len(names) < 2 or names[1] in members


def _only(value: Any, members: frozenset[str] | None) -> Any:
    """An element with only the members the stage reads (of each entry of a list)."""
    if members is None:
        return value
    if isinstance(value, list):
        return [_only(entry, members) for entry in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in members}
    return value


def _as_note(problem: Problem) -> OriginNote:
    element = ".".join(str(part) for part in problem.loc if isinstance(part, str))
    return OriginNote(message=problem.message, type=problem.type, element=element or None)


def _location(element: str) -> tuple[str | int, ...]:
    """`Claim.item[0].quantity` -> ("Claim", "item", 0, "quantity"), as pydantic locates."""
    loc: list[str | int] = []
    for part in element.split("."):
        name, _, index = part.partition("[")
        loc.append(name)
        if index:
            loc.append(int(index.rstrip("]")))
    return tuple(loc)


def _element_path(path: str, loc: tuple[Any, ...]) -> str:
    """`Claim`, ("item", 0, "sequence") -> `Claim.item[0].sequence`."""
    text = path
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


# --- the claim ----------------------------------------------------------------------------


def _adapt(
    resource: dict[str, Any],
    raw: bytes,
    resolve: Resolver,
    origin: Origin,
    where: str = "",
    shell: list[OriginNote] | None = None,
) -> AdaptedClaim:
    kind = str(resource.get("resourceType"))
    prefix = f"{where}: " if where else ""
    claim, problems, notes = _validated_on_read(
        CLAIM_RESOURCES[kind], resource, kind, READ_ELEMENTS, _STAND_INS[kind]
    )
    claim_id, from_id = _claim_id(resource)
    if from_id:
        notes.append(_claim_id_note(kind))
    adapted = AdaptedClaim(raw=raw, origin=origin, claim_id=claim_id)
    patient, patient_problems, patient_notes = _patient(
        resolve(_reference(resource.get("patient")))
    )
    problems += patient_problems
    notes = [*(shell or ()), *notes, *patient_notes]
    if problems or claim is None:
        adapted.problems = tuple(_prefixed(p, prefix) for p in problems)
        adapted.origin = _with(origin, resource, claim_id, notes)
        return adapted
    reader = _ClaimReader(claim, kind, resolve)
    facts = reader.facts(patient, claim_id)
    adapted.origin = _with(origin, resource, claim_id, notes + reader.notes)
    if facts is None:
        adapted.problems = tuple(_prefixed(p, prefix) for p in reader.problems)
        return adapted
    adapted.event = encounter_event(facts, adapted.origin, raw)
    adapted.places = {key: f"{prefix}{place}" for key, place in reader.places.items()}
    return adapted


def _with(
    origin: Origin, resource: dict[str, Any], claim_id: str | None, notes: list[OriginNote]
) -> Origin:
    return origin.model_copy(
        update={
            "submitter_claim_id": claim_id,
            "resource_id": _text(resource.get("id")),
            "resource_type": resource.get("resourceType"),
            "notes": capped_notes(notes),
        }
    )


def _patient(
    resource: dict[str, Any] | None,
) -> tuple[Patient | None, list[Problem], list[OriginNote]]:
    """The Patient a claim names, validated on what the stage reads of it (birth date,
    gender); its other faults are notes."""
    if resource is None or resource.get("resourceType") != "Patient":
        return None, [], []
    patient, problems, notes = _validated_on_read(Patient, resource, "Patient", READ_PATIENT, {})
    return patient, problems, notes


def _prefixed(problem: Problem, prefix: str) -> Problem:
    return Problem(problem.loc, prefix + problem.message, problem.type) if prefix else problem


def _claim_id(resource: dict[str, Any]) -> tuple[str | None, bool]:
    """The first `identifier` value (the submitter's claim number), else the resource's
    `id`; and whether it is the `id`."""
    for identifier in _dicts(resource.get("identifier")):
        value = identifier.get("value")
        if isinstance(value, str) and value.strip():
            return printable(value), False
    resource_id = _text(resource.get("id"))
    return resource_id, resource_id is not None


def _claim_id_note(kind: str) -> OriginNote:
    return OriginNote(
        message=f"{kind}.identifier has no value: the claim ID is the resource's id",
        type="fhir_claim_id_from_id",
        element=f"{kind}.id",
    )


def _codes(concept: CodeableConcept | None, systems: frozenset[str]) -> list[str]:
    if concept is None:
        return []
    return [c.code for c in concept.coding or () if c.system in systems and c.code]


def _codings(concept: CodeableConcept | None) -> set[tuple[str, str]]:
    if concept is None:
        return set()
    return {(c.system or "", c.code) for c in concept.coding or () if c.code}


def _bill_setting(code: str) -> Setting | None:
    """The setting of a type of bill (`0111`, `111`, `831`): inpatient for the inpatient
    classifications (x1, Part A) and swing beds (x8) of hospitals, SNFs and other inpatient
    facilities (1x, 2x, 4x, 6x), outpatient otherwise, as on an 837I."""
    bill = code.lstrip("0")
    if len(bill) < 2 or not bill[:2].isdigit():
        return None
    return "inpatient" if bill[0] in "1246" and bill[1] in "18" else "outpatient"


class _ClaimReader:
    """Reads what the rules need from a validated Claim or ExplanationOfBenefit, noting where
    each part came from."""

    def __init__(self, claim: ClaimModel, kind: str, resolve: Resolver) -> None:
        self.claim = claim
        self.kind = kind
        self.resolve = resolve
        self.problems: list[Problem] = []
        self.notes: list[OriginNote] = []
        self.places: dict[tuple[str | int, ...], str] = {}

    def fail(self, element: str, message: str, type: str = "fhir_missing_claim_data") -> None:
        self.problems.append(Problem(_location(element), f"{element}: {message}", type))

    def facts(self, patient: Patient | None, claim_id: str | None) -> ClaimFacts | None:
        if claim_id is None:
            self.fail(
                f"{self.kind}.identifier",
                "no identifier value and no id: the claim has no claim ID",
            )
        setting = self.setting()
        diagnoses = self.diagnoses()
        lines, dates = self.items()
        period = self.claim.billablePeriod
        start = _day(period.start) if period is not None else None
        end = _day(period.end) if period is not None else None
        if setting == "inpatient":
            date_of_service, discharge = start, end
            self.places[("date_of_service",)] = f"{self.kind}.billablePeriod.start"
        else:
            date_of_service, discharge = (min(dates) if dates else start), None
        if date_of_service is None:
            self.fail(
                f"{self.kind}.item.servicedDate",
                "no date of service: neither the items' servicedDate or servicedPeriod nor "
                f"{self.kind}.billablePeriod.start is given",
            )
        sex = self.sex(patient)
        if self.problems or setting is None or date_of_service is None:
            return None
        return ClaimFacts(
            claim_id=claim_id or "",
            setting=setting,
            date_of_service=date_of_service,
            discharge_date=discharge,
            diagnoses=diagnoses,
            procedures=lines,
            birth_date=_day(patient.birthDate) if patient is not None else None,
            sex=sex,
            payer_id=self.payer(),
        )

    def setting(self) -> Setting | None:
        """Professional or institutional by `type` (its claim-type coding, or Blue Button
        2.0's claim type); an institutional claim is inpatient or outpatient by the first
        convention that says (the module's docstring lists them)."""
        codings = _codings(self.claim.type)
        codes = {code for _, code in codings}
        if "professional" in codes or codings & BLUE_BUTTON_PROFESSIONAL:
            return "professional"
        blue_button = next(
            (BLUE_BUTTON_SETTINGS[c] for c in codings if c in BLUE_BUTTON_SETTINGS), None
        )
        if "institutional" not in codes and blue_button is None:
            self.fail(
                f"{self.kind}.type",
                f"type {sorted(codes) or 'not coded'} is not read: the stage reads professional "
                "and institutional claims",
                "fhir_unsupported_claim_type",
            )
            return None
        setting = self._subtype() or self._type_of_bill() or blue_button or self._encounter_class()
        if setting is None:
            self.fail(
                f"{self.kind}.subType",
                "an institutional claim needs its setting: subType inpatient or outpatient, a "
                "type of bill (NUBC or CMS bill-type system, in subType or supportingInfo), a "
                "Blue Button claim type, or an item Encounter with a class",
                "fhir_setting_unknown",
            )
        return setting

    def _subtype(self) -> Setting | None:
        codings = _codings(self.claim.subType)
        codes = {code for system, code in codings if system not in TYPE_OF_BILL_SYSTEMS}
        if "inpatient" in codes:
            return "inpatient"
        if "outpatient" in codes:
            return "outpatient"
        bills = (code for system, code in codings if system in TYPE_OF_BILL_SYSTEMS)
        return next((s for code in bills if (s := _bill_setting(code)) is not None), None)

    def _type_of_bill(self) -> Setting | None:
        """A type of bill in `supportingInfo`: coded in a type-of-bill system under any
        category, or in any system under CARIN's `typeofbill` category."""
        for info in self.claim.supportingInfo or ():
            carin = "typeofbill" in {code for _, code in _codings(info.category)}
            for system, code in _codings(info.code):
                if carin or system in TYPE_OF_BILL_SYSTEMS:
                    setting = _bill_setting(code)
                    if setting is not None:
                        return setting
        return None

    def _encounter_class(self) -> Setting | None:
        for item in self.claim.item or ():
            for reference in item.encounter or ():
                code = _class_code(self.resolve(reference.reference))
                if code:
                    return "inpatient" if code in INPATIENT_ENCOUNTER_CLASSES else "outpatient"
        return None

    def diagnoses(self) -> list[str]:
        """ICD-10-CM codes in `sequence` order; `sequence` values are kept as sent, so that
        a gap or a duplicate is the contract's violation to report."""
        listed: list[Any] = list(self.claim.diagnosis or ())
        entries = sorted(enumerate(listed), key=lambda e: e[1].sequence or 0)
        if not entries:
            self.fail(f"{self.kind}.diagnosis", "no diagnosis: the rules need at least one")
        codes: list[str] = []
        for position, (index, diagnosis) in enumerate(entries):
            element = f"{self.kind}.diagnosis[{index}]"
            code = self._diagnosis_code(diagnosis, element)
            if code is None:
                continue
            if diagnosis.sequence != position + 1:
                self.fail(
                    f"{element}.sequence",
                    f"sequence {diagnosis.sequence}: diagnosis sequences must run 1..n "
                    "without gaps or repeats",
                    "fhir_diagnosis_sequence",
                )
            self.places[("diagnoses", len(codes))] = element
            codes.append(code)
        return codes

    def _diagnosis_code(self, diagnosis: Any, element: str) -> str | None:
        concept = diagnosis.diagnosisCodeableConcept
        if concept is None and diagnosis.diagnosisReference is not None:
            condition = self.resolve(diagnosis.diagnosisReference.reference) or {}
            code = condition.get("code") if isinstance(condition, dict) else None
            concept = CodeableConcept.model_validate(code if isinstance(code, dict) else {})
        found = _codes(concept, ICD10CM_SYSTEMS)
        if found:
            return found[0]
        found = _codes(concept, ICD10_SYSTEMS)
        if found:
            if not any(n.type == "fhir_icd10_read_as_icd10cm" for n in self.notes):
                self.notes.append(
                    OriginNote(
                        message=f"{element}: coded in ICD-10 (http://hl7.org/fhir/sid/icd-10), "
                        "read as ICD-10-CM, the code set of US claims",
                        type="fhir_icd10_read_as_icd10cm",
                        element=element,
                    )
                )
            return found[0]
        self.fail(element, "no ICD-10-CM coding (system http://hl7.org/fhir/sid/icd-10-cm)")
        return None

    def items(self) -> tuple[list[ServiceLine], list[dt.date]]:
        """Procedure lines (items coded in CPT or HCPCS) and every item's service date."""
        lines: list[ServiceLine] = []
        dates: list[dt.date] = []
        items: list[Any] = list(self.claim.item or ())
        for index, item in enumerate(items):
            served = _served(item)
            if served is not None:
                dates.append(served)
                self.places.setdefault(
                    ("date_of_service",), f"{self.kind}.item[{index}].servicedDate"
                )
            codes = _codes(item.productOrService, PROCEDURE_SYSTEMS)
            if not codes:
                continue  # a revenue-code or supply line: not a procedure the rules read
            line = self._line(index, item, codes[0])
            if line is not None:
                self.places[("procedures", len(lines))] = f"{self.kind}.item[{index}]"
                lines.append(line)
        return lines, dates

    def _line(
        self, index: int, item: ClaimItem | ExplanationOfBenefitItem, code: str
    ) -> ServiceLine | None:
        quantity = item.quantity.value if item.quantity is not None else None
        minutes = item.quantity is not None and _in_minutes(item.quantity)
        units = whole_units(quantity)
        if units is None:
            what = "minutes" if minutes else "units"
            self.fail(
                f"{self.kind}.item[{index}].quantity.value",
                f"{quantity} is not a whole number of {what} of 1 or more",
                "fhir_units_not_whole",
            )
            return None
        modifiers = tuple(
            m for concept in item.modifier or () for m in _codes(concept, PROCEDURE_SYSTEMS)
        )
        pointers = tuple(p for p in item.diagnosisSequence or () if p is not None) or None
        return ServiceLine(
            item.sequence or index + 1,
            code,
            1 if minutes else units,
            modifiers,
            pointers,
            minutes=units if minutes else None,
        )

    def sex(self, patient: Patient | None) -> Sex | None:
        gender = patient.gender if patient is not None else None
        if gender is None:
            return None
        if gender not in _GENDERS:
            self.fail("Patient.gender", f"{gender!r} is not an administrative-gender code")
            return None
        return _GENDERS[gender]

    def payer(self) -> str | None:
        """`insurer`: its identifier value, else the identifier of the Organization it
        names, else its display text."""
        insurer = self.claim.insurer
        if insurer is None:
            return None
        if insurer.identifier is not None and insurer.identifier.value:
            return printable(insurer.identifier.value)
        organization = self.resolve(insurer.reference) or {}
        for identifier in _dicts(organization.get("identifier")):
            if _text(identifier.get("value")):
                return printable(str(identifier["value"]))
        return printable(insurer.display) if insurer.display else None


def _class_code(encounter: dict[str, Any] | None) -> str | None:
    """An Encounter's class: a Coding (R4), or a list of CodeableConcepts (later releases)."""
    found = (encounter or {}).get("class")
    if isinstance(found, list):
        found = next((c for concept in _dicts(found) for c in _dicts(concept.get("coding"))), None)
    code = found.get("code") if isinstance(found, dict) else None
    return code if isinstance(code, str) and code else None


def _in_minutes(quantity: Any) -> bool:
    """A quantity of minutes: UCUM `min`, or a unit that says so."""
    return quantity.code == "min" or (quantity.unit or "").strip().lower() in MINUTE_UNITS


def _day(value: object) -> dt.date | None:
    """A FHIR date or dateTime as a day; a partial date (`1958`, `2026-04`), which
    fhir.resources keeps as text, says no day and is left out."""
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None


def _served(item: ClaimItem | ExplanationOfBenefitItem) -> dt.date | None:
    if item.servicedDate is not None:
        return _day(item.servicedDate)
    period = item.servicedPeriod
    return (_day(period.start) or _day(period.end)) if period is not None else None
