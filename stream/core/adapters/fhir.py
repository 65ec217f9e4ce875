"""FHIR R4 `Claim` resources into encounter events: alone, with a contained `Patient`, or in
a `Bundle` with the `Patient` as another entry.

fhir.resources validates each Claim (and the Patient it names) against the FHIR models;
its `R4B` package is used, whose Claim, Patient and Bundle are those of R4 (4.0.1) with
R4B's technical corrections, since the 8.x releases ship no separate R4 package. Each
Claim of a Bundle is validated on its own, so that one bad Claim fails only itself.

Elements read: `Claim.id`, `identifier` (the claim ID), `type` and `subType` (setting; for
an institutional claim also a `supportingInfo` type of bill or the `class` of the
`Encounter` an item names), `billablePeriod`, `insurer`, `patient` -> `Patient.birthDate`
and `gender`, `diagnosis` (`sequence`, and the ICD-10-CM coding of `diagnosisCodeableConcept`
or of the `Condition` a `diagnosisReference` names), `item` (`sequence`,
`productOrService` with a CPT or HCPCS coding, `modifier`, `quantity`, `diagnosisSequence`,
`servicedDate` or `servicedPeriod`), and `Bundle.id`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim, ClaimItem
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from stream.core.adapters.formats import (
    AdaptedClaim,
    ClaimFacts,
    Problem,
    ServiceLine,
    encounter_event,
    whole_units,
)
from stream.core.contracts import Origin, Setting, Sex

ICD10CM_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:2.16.840.1.113883.6.90"})
CPT_SYSTEMS = frozenset({"http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12"})
HCPCS_SYSTEMS = frozenset(
    {
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://terminology.hl7.org/CodeSystem/HCPCS",
        "urn:oid:2.16.840.1.113883.6.285",
    }
)
PROCEDURE_SYSTEMS = CPT_SYSTEMS | HCPCS_SYSTEMS
INPATIENT_ENCOUNTER_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
"""v3 ActCode encounter classes of an inpatient stay; every other class is outpatient."""
_GENDERS: dict[str, Sex] = {"female": "F", "male": "M", "other": "U", "unknown": "U"}

Resolver = Callable[[str | None], dict[str, Any] | None]
"""Finds the resource a reference names: contained (`#id`) or in the same Bundle."""


def is_fhir(document: object) -> bool:
    return isinstance(document, dict) and isinstance(document.get("resourceType"), str)


def adapt_record(document: dict[str, Any], raw: bytes) -> AdaptedClaim:
    """One input record that is a FHIR resource: a Claim, or a Bundle holding one Claim.

    One record is one claim: a Bundle of several Claims is refused with the way to split it.
    """
    kind = document.get("resourceType")
    if kind == "Claim":
        return _adapt(
            document, raw, _contained(document), Origin(format="fhir-r4", claim_position=1)
        )
    if kind == "Bundle":
        claims = list(read_bundle(document))
        if len(claims) == 1:
            claims[0].raw = raw
            return claims[0]
        return _refused(
            raw,
            ("Bundle", "entry"),
            f"the Bundle holds {len(claims)} Claims; one record is one claim "
            "(`claims-stage ingest` and `claims-stage check` split a Bundle into its claims)",
            "fhir_claim_count",
            bundle_id=document.get("id"),
        )
    return _refused(
        raw,
        (str(kind),),
        f"a FHIR {kind} is not a claim: the stage reads Claim resources, alone or in a Bundle",
        "fhir_not_a_claim",
    )


def read_bundle(document: dict[str, Any], line: int = 1) -> Iterator[AdaptedClaim]:
    """Every Claim of a Bundle, in entry order, each with the Bundle's resources to resolve
    its references; problems of the Bundle itself fail every Claim in it."""
    listed = document.get("entry")
    entries: list[Any] = listed if isinstance(listed, list) else []
    _, shell = _validated(Bundle, {**document, "entry": []}, "Bundle")
    if not isinstance(document.get("entry", []), list):
        shell.append(Problem(("Bundle", "entry"), "Bundle.entry: must be a list", "list_type"))
    by_reference = _entry_index(entries)
    resolve = _resolver(by_reference)
    envelope = {k: v for k, v in document.items() if k != "entry"}
    position = 0
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Claim":
            continue
        position += 1
        raw = _claim_bundle(envelope, entry, by_reference)
        origin = Origin(
            format="fhir-r4",
            claim_position=position,
            resource_id=_text(resource.get("id")),
            bundle_id=_text(document.get("id")),
        )
        claim = _adapt(
            resource, raw, _chain(_contained(resource), resolve), origin, f"Bundle.entry[{index}]"
        )
        if shell:
            claim.problems = (*shell, *claim.problems)
            claim.event = None
        claim.line = line
        yield claim


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


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
        f"#{r['id']}": r
        for r in resource.get("contained") or ()
        if isinstance(r, dict) and isinstance(r.get("id"), str)
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
    """A Claim's part of a Bundle, which its dead letter keeps: a Bundle of the Claim's entry
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
                message=f"{_element_path(path, e['loc'])}: {e['msg']}",
                type=f"fhir_{e['type']}",
            )
            for e in error.errors(include_url=False, include_input=False)
        ]
    except (KeyError, ValueError, TypeError) as error:
        # fhir.resources raises a bare KeyError for a contained resource of an unknown type
        return None, [
            Problem(
                loc=(path,),
                message=f"{path}: fhir.resources cannot read it ({type(error).__name__}: {error})",
                type="fhir_unreadable",
            )
        ]


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
    resource: dict[str, Any], raw: bytes, resolve: Resolver, origin: Origin, where: str = ""
) -> AdaptedClaim:
    prefix = f"{where}: " if where else ""
    claim, problems = _validated(Claim, resource, "Claim")
    claim_id = _claim_id(resource)
    origin = origin.model_copy(
        update={"submitter_claim_id": claim_id, "resource_id": _text(resource.get("id"))}
    )
    adapted = AdaptedClaim(raw=raw, origin=origin, claim_id=claim_id)
    patient_resource = resolve(_reference(resource.get("patient")))
    patient: Patient | None = None
    if patient_resource is not None and patient_resource.get("resourceType") == "Patient":
        patient, patient_problems = _validated(Patient, patient_resource, "Patient")
        problems += [] if _is_contained(resource, patient_resource) else patient_problems
    if problems or claim is None:
        adapted.problems = tuple(_prefixed(p, prefix) for p in problems)
        return adapted
    reader = _ClaimReader(claim, resolve)
    facts = reader.facts(patient, claim_id)
    if facts is None:
        adapted.problems = tuple(_prefixed(p, prefix) for p in reader.problems)
        return adapted
    adapted.event = encounter_event(facts, origin, raw)
    adapted.places = {key: f"{prefix}{place}" for key, place in reader.places.items()}
    return adapted


def _prefixed(problem: Problem, prefix: str) -> Problem:
    return Problem(problem.loc, prefix + problem.message, problem.type) if prefix else problem


def _is_contained(claim: dict[str, Any], resource: dict[str, Any]) -> bool:
    return any(r is resource for r in claim.get("contained") or ())


def _claim_id(resource: dict[str, Any]) -> str | None:
    """The first `Claim.identifier` value: the submitter's claim number."""
    for identifier in _dicts(resource.get("identifier")):
        if _text(identifier.get("value")):
            return str(identifier["value"])
    return None


def _codes(concept: CodeableConcept | None, systems: frozenset[str]) -> list[str]:
    if concept is None:
        return []
    return [c.code for c in concept.coding or () if c.system in systems and c.code]


class _ClaimReader:
    """Reads what the rules need from a validated Claim, noting where each part came from."""

    def __init__(self, claim: Claim, resolve: Resolver) -> None:
        self.claim = claim
        self.resolve = resolve
        self.problems: list[Problem] = []
        self.places: dict[tuple[str | int, ...], str] = {}

    def fail(self, element: str, message: str, type: str = "fhir_missing_claim_data") -> None:
        self.problems.append(Problem(_location(element), f"{element}: {message}", type))

    def facts(self, patient: Patient | None, claim_id: str | None) -> ClaimFacts | None:
        if claim_id is None:
            self.fail("Claim.identifier", "no identifier value: the claim has no claim ID")
        setting = self.setting()
        diagnoses = self.diagnoses()
        lines, dates = self.items()
        period = self.claim.billablePeriod
        start = _day(period.start) if period is not None else None
        end = _day(period.end) if period is not None else None
        if setting == "inpatient":
            date_of_service, discharge = start, end
            self.places[("date_of_service",)] = "Claim.billablePeriod.start"
        else:
            date_of_service, discharge = (min(dates) if dates else start), None
        if date_of_service is None:
            self.fail(
                "Claim.item.servicedDate",
                "no date of service: neither the items' servicedDate or servicedPeriod nor "
                "Claim.billablePeriod.start is given",
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
        """`Claim.type` professional or institutional; an institutional claim is inpatient
        or outpatient by its `subType` (CARIN's inpatient/outpatient), else its type of
        bill (`supportingInfo` typeofbill: 11x inpatient, 13x outpatient, as on an 837I),
        else the class of an Encounter its items name."""
        types = {c.code for c in self.claim.type.coding or () if c.code}
        if "professional" in types:
            return "professional"
        if "institutional" not in types:
            self.fail(
                "Claim.type",
                f"type {sorted(types) or 'not coded'} is not read: the stage reads professional "
                "and institutional claims",
                "fhir_unsupported_claim_type",
            )
            return None
        setting = self._subtype() or self._type_of_bill() or self._encounter_class()
        if setting is None:
            self.fail(
                "Claim.subType",
                "an institutional claim needs subType inpatient or outpatient, a type of bill "
                "in supportingInfo, or an item Encounter with a class, to tell its setting",
                "fhir_setting_unknown",
            )
        return setting

    def _subtype(self) -> Setting | None:
        codes = (
            {c.code for c in (self.claim.subType.coding or ()) if c.code}
            if self.claim.subType
            else set()
        )
        if "inpatient" in codes:
            return "inpatient"
        return "outpatient" if "outpatient" in codes else None

    def _type_of_bill(self) -> Setting | None:
        for info in self.claim.supportingInfo or ():
            if "typeofbill" not in {c.code for c in info.category.coding or ()}:
                continue
            for coding in (info.code.coding or ()) if info.code else ():
                bill = (coding.code or "").lstrip("0")
                if len(bill) >= 2:
                    return "inpatient" if bill[0] in "1246" and bill[1] in "18" else "outpatient"
        return None

    def _encounter_class(self) -> Setting | None:
        for item in self.claim.item or ():
            for reference in item.encounter or ():
                encounter = self.resolve(reference.reference)
                code = (encounter or {}).get("class", {}).get("code")
                if isinstance(code, str) and code:
                    return "inpatient" if code in INPATIENT_ENCOUNTER_CLASSES else "outpatient"
        return None

    def diagnoses(self) -> list[str]:
        """ICD-10-CM codes in `sequence` order; `sequence` values are kept as sent, so that
        a gap or a duplicate is the contract's violation to report."""
        entries = sorted(enumerate(self.claim.diagnosis or ()), key=lambda e: e[1].sequence or 0)
        if not entries:
            self.fail("Claim.diagnosis", "no diagnosis: the rules need at least one")
        codes: list[str] = []
        for position, (index, diagnosis) in enumerate(entries):
            element = f"Claim.diagnosis[{index}]"
            concept = diagnosis.diagnosisCodeableConcept
            if concept is None and diagnosis.diagnosisReference is not None:
                condition = self.resolve(diagnosis.diagnosisReference.reference) or {}
                concept = CodeableConcept.model_validate(condition.get("code") or {})
            found = _codes(concept, ICD10CM_SYSTEMS)
            if not found:
                self.fail(element, "no ICD-10-CM coding (system http://hl7.org/fhir/sid/icd-10-cm)")
                continue
            if diagnosis.sequence != position + 1:
                self.fail(
                    f"{element}.sequence",
                    f"sequence {diagnosis.sequence}: diagnosis sequences must run 1..n "
                    "without gaps or repeats",
                    "fhir_diagnosis_sequence",
                )
            self.places[("diagnoses", len(codes))] = element
            codes.append(found[0])
        return codes

    def items(self) -> tuple[list[ServiceLine], list[dt.date]]:
        """Procedure lines (items coded in CPT or HCPCS) and every item's service date."""
        lines: list[ServiceLine] = []
        dates: list[dt.date] = []
        for index, item in enumerate(self.claim.item or ()):
            served = _served(item)
            if served is not None:
                dates.append(served)
                self.places.setdefault(("date_of_service",), f"Claim.item[{index}].servicedDate")
            codes = _codes(item.productOrService, PROCEDURE_SYSTEMS)
            if not codes:
                continue  # a revenue-code or supply line: not a procedure the rules read
            line = self._line(index, item, codes[0])
            if line is not None:
                self.places[("procedures", len(lines))] = f"Claim.item[{index}]"
                lines.append(line)
        return lines, dates

    def _line(self, index: int, item: ClaimItem, code: str) -> ServiceLine | None:
        quantity = item.quantity.value if item.quantity is not None else None
        units = whole_units(quantity)
        if units is None:
            self.fail(
                f"Claim.item[{index}].quantity.value",
                f"{quantity} is not a whole number of units of 1 or more",
                "fhir_units_not_whole",
            )
            return None
        modifiers = tuple(
            m for concept in item.modifier or () for m in _codes(concept, PROCEDURE_SYSTEMS)
        )
        pointers = tuple(p for p in item.diagnosisSequence or () if p is not None) or None
        return ServiceLine(item.sequence or index + 1, code, units, modifiers, pointers)

    def sex(self, patient: Patient | None) -> Sex | None:
        gender = patient.gender if patient is not None else None
        if gender is None:
            return None
        if gender not in _GENDERS:
            self.fail("Patient.gender", f"{gender!r} is not an administrative-gender code")
            return None
        return _GENDERS[gender]

    def payer(self) -> str | None:
        """`Claim.insurer`: its identifier value, else the identifier of the Organization
        it names, else its display text."""
        insurer = self.claim.insurer
        if insurer is None:
            return None
        if insurer.identifier is not None and insurer.identifier.value:
            return insurer.identifier.value
        organization = self.resolve(insurer.reference) or {}
        for identifier in _dicts(organization.get("identifier")):
            if _text(identifier.get("value")):
                return str(identifier["value"])
        return insurer.display or None


def _day(value: object) -> dt.date | None:
    """A FHIR date or dateTime as a day; a partial date (`1958`, `2026-04`), which
    fhir.resources keeps as text, says no day and is left out."""
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None


def _served(item: ClaimItem) -> dt.date | None:
    if item.servicedDate is not None:
        return _day(item.servicedDate)
    return _day(item.servicedPeriod.start) if item.servicedPeriod is not None else None
