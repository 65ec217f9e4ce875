"""Encounter events written as the claims a payer receives: 837P, 837I and FHIR R4.

The inverse of the adapters, for the example files (`schemas/examples/generate_formats.py`),
the tests and the batch benchmark. Everything it writes is synthetic: providers, patients,
addresses and identifiers are invented (NPIs carry a valid check digit), and each claim
carries exactly the clinical content of its event, so that the stage must reach the same
decision on the event, the 837 claim and the FHIR Claim.

837 files are written one segment a line, as most trading partners send them for people to
read; the segment terminator, not the line break, ends a segment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Event = dict[str, Any]
Guide = Literal["837p", "837i"]
Convention = Literal["carin", "type-of-bill", "bill-type-subtype", "blue-button"]
"""How a FHIR claim says what the stage reads, as US senders write it:

- `carin`: CARIN Blue Button: an institutional claim's `subType` inpatient or outpatient, its
  type of bill under the `typeofbill` supporting-info category;
- `type-of-bill`: no subType; the type of bill under a base `supportingInfo` category (info),
  told by its NUBC system;
- `bill-type-subtype`: the type of bill as the `subType`, in the CMS bill-type system (the
  R4 specification's US example);
- `blue-button`: CMS Blue Button 2.0: the claim type in `type` (`nch_clm_type_cd`,
  `eob-type`), the claim ID in its `clm_id` identifier, diagnoses in the ICD-10 system and
  HCPCS in Blue Button's own system.
"""
ResourceType = Literal["Claim", "ExplanationOfBenefit"]

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
PAYER_SYSTEM = "https://claims-stage.example/payer-id"
CLAIM_SYSTEM = "https://claims-stage.example/patient-control-number"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
INSTITUTIONAL_SUBTYPE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBInstitutionalClaimSubType"
SUPPORTING_INFO = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType"
TYPE_OF_BILL = "https://www.nubc.org/CodeSystem/TypeOfBill"
REVENUE = "https://www.nubc.org/CodeSystem/RevenueCodes"
NOT_APPLICABLE = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
INFORMATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/claiminformationcategory"
CMS_BILL_TYPE = "https://www.cms.gov/codes/billtype"
UCUM = "http://unitsofmeasure.org"
BLUE_BUTTON_CLAIM_TYPE = "https://bluebutton.cms.gov/resources/variables/nch_clm_type_cd"
BLUE_BUTTON_EOB_TYPE = "https://bluebutton.cms.gov/resources/codesystem/eob-type"
BLUE_BUTTON_CLAIM_ID = "https://bluebutton.cms.gov/resources/variables/clm_id"
BLUE_BUTTON_HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
BLUE_BUTTON_TYPES = {
    "professional": ("71", "CARRIER"),
    "inpatient": ("60", "INPATIENT"),
    "outpatient": ("40", "OUTPATIENT"),
}

PAYERS: dict[str, tuple[str, str]] = {
    "MEDICARE": ("MEDICARE", "MB"),
    "AETNA": ("AETNA HEALTH INC", "CI"),
    "CIGNA": ("CIGNA HEALTHCARE", "CI"),
    "HUMANA": ("HUMANA MEDICARE ADVANTAGE", "16"),
    "UHC": ("UNITEDHEALTHCARE", "CI"),
}
"""payer_id -> (name on NM1*PR, SBR09 claim filing indicator)."""

_LAST = [
    "ABERNATHY",
    "BRIGHTWATER",
    "CALLOWAY",
    "DRUMMOND",
    "ELLSWORTH",
    "FAIRCLOTH",
    "GALLOWAY",
    "HARTWELL",
    "IVERSON",
    "JESSUP",
    "KINCAID",
    "LANGFORD",
    "MERRIWEATHER",
    "NORTHCOTT",
    "OAKHURST",
    "PEMBERTON",
    "QUINLAN",
    "ROCHFORD",
    "SATTERLY",
    "THORNBURY",
    "UNDERHILL",
    "VANTERPOOL",
    "WINSLOW",
    "YARBROUGH",
]
_FEMALE = [
    "ADA",
    "BEATRIX",
    "CORA",
    "DELPHINE",
    "EDITH",
    "FLORENCE",
    "GWENDOLYN",
    "HAZEL",
    "IMOGEN",
    "JUNE",
]
_MALE = [
    "ALBERT",
    "BERNARD",
    "CORNELIUS",
    "DESMOND",
    "EZRA",
    "FLETCHER",
    "GIDEON",
    "HORACE",
    "IGNATIUS",
    "JASPER",
]
_STREETS = [
    "ALDER",
    "BIRCH",
    "CEDAR",
    "DOGWOOD",
    "ELM",
    "FIR",
    "HAWTHORN",
    "JUNIPER",
    "LINDEN",
    "MAPLE",
]
_TOWNS = (
    ("BROOKFIELD", "MA", "015061234"),
    ("MILLBRIDGE", "ME", "046580987"),
    ("CEDAR FALLS", "NH", "032451122"),
    ("WESTPORT", "CT", "068802210"),
)


def npi(seed: str) -> str:
    """A made-up NPI with a valid check digit (Luhn over the 80840 prefix)."""
    base = "1" + str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:8]
    digits = [int(d) for d in "80840" + base]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if index % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return base + str((10 - total % 10) % 10)


@dataclass(frozen=True)
class Provider:
    name: str
    npi: str
    ein: str
    address: tuple[str, str, str, str]  # street, city, state, ZIP+4
    taxonomy: str


PROFESSIONAL = Provider(
    "HARBORVIEW ONCOLOGY ASSOCIATES",
    npi("harborview"),
    "041234567",
    ("200 WHARF STREET SUITE 4", "PORTSMOUTH", "NH", "038011234"),
    "207RX0202X",
)
RADIOLOGY = Provider(
    "TIDEWATER RADIOLOGY GROUP",
    npi("tidewater"),
    "042345678",
    ("18 LIGHTHOUSE ROAD", "PORTSMOUTH", "NH", "038014321"),
    "2085R0202X",
)
HOSPITAL = Provider(
    "SAINT BRENDAN REGIONAL MEDICAL CENTER",
    npi("st-brendan"),
    "043456789",
    ("1 ABBEY HILL DRIVE", "PORTSMOUTH", "NH", "038015555"),
    "282N00000X",
)
ATTENDING = ("MARLOWE", "IRENE", npi("marlowe"), "207RX0202X")


@dataclass(frozen=True)
class Person:
    last: str
    first: str
    member_id: str
    street: str
    city: str
    state: str
    zip: str


def person(seed: str, sex: str | None) -> Person:
    """A made-up person, the same for the same seed (a patient's ID)."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    first = rng.choice(_MALE if sex == "M" else _FEMALE)
    city, state, zip_code = rng.choice(_TOWNS)
    member = "".join(rng.choice("ABCDEFGHJKMNPQRTUVWXY0123456789") for _ in range(11))
    street = f"{rng.randint(2, 990)} {rng.choice(_STREETS)} STREET"
    return Person(rng.choice(_LAST), first, member, street, city, state, zip_code)


def _patient_key(event: Event) -> str:
    patient = event.get("patient") or {}
    return str(patient.get("id") or event["claim_id"])


def charge(code: str, units: int = 1) -> str:
    """A plausible, made-up charge for a line, in dollars."""
    cents = 5_000 + int(hashlib.sha256(code.encode()).hexdigest(), 16) % 250_000
    return f"{cents * units / 100:.2f}"


def revenue_code(code: str) -> str:
    """A UB-04 revenue code for an outpatient line, by the kind of procedure."""
    prefixes = (
        ("964", "0335"),
        ("963", "0335"),
        ("77", "0333"),
        ("J", "0636"),
        ("A95", "0343"),
        ("788", "0404"),
        ("783", "0341"),
        ("705", "0610"),
        ("7", "0350"),
        ("76", "0402"),
        ("8", "0300"),
        ("992", "0510"),
        ("99", "0510"),
    )
    return next((rev for prefix, rev in prefixes if code.startswith(prefix)), "0360")


def _dotless(code: str) -> str:
    return code.strip().upper().replace(".", "")


def _ymd(value: str) -> str:
    return value.replace("-", "")


# --- X12 837 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """Who sends an interchange to whom, when, and its control numbers."""

    sender_id: str
    receiver_id: str
    created: dt.datetime
    interchange_control_number: int
    group_control_number: int
    submitter: str = "HARBORVIEW BILLING SERVICES"
    receiver: str = "CLAIMS STAGE CLEARINGHOUSE"


class SegmentWriter:
    """Segments of one transaction set, counted for its SE."""

    def __init__(self) -> None:
        self.segments: list[str] = []
        self.hl = 0

    def add(self, *elements: str) -> None:
        while elements and elements[-1] == "":
            elements = elements[:-1]
        self.segments.append("*".join(elements) + "~")

    def next_hl(self) -> int:
        self.hl += 1
        return self.hl


def interchange(envelope: Envelope, transactions: Sequence[tuple[Guide, Sequence[Event]]]) -> str:
    """One interchange of one functional group; each transaction set holds its events,
    grouped by billing provider and patient."""
    created = envelope.created
    isa = (
        "ISA*00*          *00*          *ZZ*"
        f"{envelope.sender_id:<15}*ZZ*{envelope.receiver_id:<15}*"
        f"{created:%y%m%d}*{created:%H%M}*^*00501*{envelope.interchange_control_number:09d}*0*T*:~"
    )
    guide_id = {"837p": "005010X222A1", "837i": "005010X223A2"}[transactions[0][0]]
    lines = [
        isa,
        f"GS*HC*{envelope.sender_id}*{envelope.receiver_id}*{created:%Y%m%d}*{created:%H%M}*"
        f"{envelope.group_control_number}*X*{guide_id}~",
    ]
    for number, (guide, events) in enumerate(transactions, start=1):
        lines += transaction_set(envelope, guide, events, f"{number:04d}")
    lines.append(f"GE*{len(transactions)}*{envelope.group_control_number}~")
    lines.append(f"IEA*1*{envelope.interchange_control_number:09d}~")
    return "\n".join(lines) + "\n"


def transaction_set(
    envelope: Envelope, guide: Guide, events: Sequence[Event], control: str
) -> list[str]:
    guide_id = {"837p": "005010X222A1", "837i": "005010X223A2"}[guide]
    out = SegmentWriter()
    created = envelope.created
    out.add("ST", "837", control, guide_id)
    out.add(
        "BHT",
        "0019",
        "00",
        f"B{envelope.interchange_control_number}{control}",
        f"{created:%Y%m%d}",
        f"{created:%H%M}",
        "CH",
    )
    out.add("NM1", "41", "2", envelope.submitter, "", "", "", "", "46", envelope.sender_id)
    out.add("PER", "IC", "EDI DESK", "TE", "6035550142")
    out.add("NM1", "40", "2", envelope.receiver, "", "", "", "", "46", envelope.receiver_id)
    for provider, provided in _by_provider(guide, events):
        _billing_provider(out, provider, provided, guide)
    out.add("SE", str(len(out.segments) + 1), control)
    return out.segments


def _by_provider(guide: Guide, events: Sequence[Event]) -> list[tuple[Provider, list[Event]]]:
    if guide == "837i":
        return [(HOSPITAL, list(events))]
    groups: dict[str, list[Event]] = {}
    for event in events:
        reads = any("26" in (p.get("modifiers") or ()) for p in event.get("procedures") or ())
        groups.setdefault("radiology" if reads else "oncology", []).append(event)
    order = (("oncology", PROFESSIONAL), ("radiology", RADIOLOGY))
    return [(provider, groups[key]) for key, provider in order if key in groups]


def _billing_provider(
    out: SegmentWriter, provider: Provider, events: list[Event], guide: Guide
) -> None:
    parent = out.next_hl()
    out.add("HL", str(parent), "", "20", "1")
    out.add("PRV", "BI", "PXC", provider.taxonomy)
    out.add("NM1", "85", "2", provider.name, "", "", "", "", "XX", provider.npi)
    street, city, state, zip_code = provider.address
    out.add("N3", street)
    out.add("N4", city, state, zip_code)
    out.add("REF", "EI", provider.ein)
    patients: dict[str, list[Event]] = {}
    for event in events:
        patients.setdefault(_patient_key(event), []).append(event)
    for claims in patients.values():
        _subscriber(out, parent, claims, guide)


def _dependent(key: str) -> bool:
    """About one patient in six is covered as a dependent of a subscriber (loop 2000C)."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 6 == 0


def _subscriber(out: SegmentWriter, parent: int, claims: list[Event], guide: Guide) -> None:
    event = claims[0]
    key = _patient_key(event)
    patient = event.get("patient") or {}
    payer_id = event.get("payer_id") or "AETNA"
    payer_name, filing = PAYERS.get(payer_id, (payer_id, "CI"))
    if guide == "837i" and filing == "MB":
        filing = "MA"
    dependent = _dependent(key) and payer_id != "MEDICARE"
    level = out.next_hl()
    out.add("HL", str(level), str(parent), "22", "1" if dependent else "0")
    out.add("SBR", "P", "" if dependent else "18", f"GRP{key[-5:]}", "", "", "", "", "", filing)
    holder = person(
        key + ("-subscriber" if dependent else ""), "M" if dependent else patient.get("sex")
    )
    out.add("NM1", "IL", "1", holder.last, holder.first, "", "", "", "MI", holder.member_id)
    out.add("N3", holder.street)
    out.add("N4", holder.city, holder.state, holder.zip)
    if not dependent:
        out.add("DMG", "D8", _ymd(patient["birth_date"]), patient.get("sex") or "U")
    out.add("NM1", "PR", "2", payer_name, "", "", "", "", "PI", payer_id)
    if dependent:
        out.add("HL", str(out.next_hl()), str(level), "23", "0")
        out.add("PAT", "01")
        me = person(key, patient.get("sex"))
        out.add("NM1", "QC", "1", holder.last, me.first)
        out.add("N3", holder.street)
        out.add("N4", holder.city, holder.state, holder.zip)
        out.add("DMG", "D8", _ymd(patient["birth_date"]), patient.get("sex") or "U")
    for claim in claims:
        if guide == "837p":
            _professional_claim(out, claim)
        else:
            _institutional_claim(out, claim)


def _diagnosis_composites(codes: Sequence[str], first: str, other: str) -> list[str]:
    return [f"{first if i == 0 else other}:{_dotless(c)}" for i, c in enumerate(codes)]


def _procedures(event: Event) -> list[dict[str, Any]]:
    return sorted(event.get("procedures") or [], key=lambda p: int(p["line"]))


def _professional_claim(out: SegmentWriter, event: Event) -> None:
    procedures = _procedures(event)
    if not procedures:
        raise ValueError(f"{event['claim_id']}: an 837P claim bills at least one service line")
    total = sum(float(charge(p["code"], int(p.get("units") or 1))) for p in procedures)
    reads = any("26" in (p.get("modifiers") or ()) for p in procedures)
    place = "21" if not procedures else ("22" if reads else "11")
    out.add("CLM", event["claim_id"], f"{total:.2f}", "", "", f"{place}:B:1", "Y", "A", "Y", "Y")
    codes = [d["code"] for d in sorted(event["diagnoses"], key=lambda d: d["sequence"])]
    out.add("HI", *_diagnosis_composites(codes, "ABK", "ABF"))
    for line in procedures:
        units = int(line.get("units") or 1)
        product = ":".join(["HC", line["code"], *(line.get("modifiers") or [])])
        pointers = line.get("diagnosis_pointers") or [1]
        minutes = line.get("minutes")
        out.add("LX", str(line["line"]))
        out.add(
            "SV1",
            product,
            charge(line["code"], units),
            "MJ" if minutes else "UN",
            str(minutes or units),
            "",
            "",
            ":".join(str(p) for p in pointers),
        )
        out.add("DTP", "472", "D8", _ymd(event["date_of_service"]))


def _type_of_bill(event: Event) -> str:
    return "11" if event["setting"] == "inpatient" else "13"


def _institutional_claim(out: SegmentWriter, event: Event) -> None:
    procedures = _procedures(event)
    inpatient = event["setting"] == "inpatient"
    start = event["date_of_service"]
    end = event.get("discharge_date") or start
    days = max((dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days, 1)
    room = float(charge("0120", days))
    total = sum(float(charge(p["code"], int(p.get("units") or 1))) for p in procedures)
    total += room if inpatient else 0
    out.add(
        "CLM",
        event["claim_id"],
        f"{total:.2f}",
        "",
        "",
        f"{_type_of_bill(event)}:A:1",
        "",
        "A",
        "Y",
        "Y",
    )
    if inpatient:
        out.add("DTP", "096", "TM", "1130")
    out.add("DTP", "434", "RD8", f"{_ymd(start)}-{_ymd(end)}")
    if inpatient:
        out.add("DTP", "435", "DT", f"{_ymd(start)}0815")
        out.add("CL1", "1", "1", "01")
    else:
        out.add("CL1", "3", "1", "01")
    out.add("REF", "EA", _patient_key(event))
    codes = [d["code"] for d in sorted(event["diagnoses"], key=lambda d: d["sequence"])]
    out.add("HI", f"ABK:{_dotless(codes[0])}")
    if inpatient:
        out.add("HI", f"ABJ:{_dotless(codes[0])}")
    others = codes[1:]
    for chunk in range(0, len(others), 12):
        out.add("HI", *_diagnosis_composites(others[chunk : chunk + 12], "ABF", "ABF"))
    out.add("NM1", "71", "1", ATTENDING[0], ATTENDING[1], "", "", "", "XX", ATTENDING[2])
    out.add("PRV", "AT", "PXC", ATTENDING[3])
    number = 0
    for line in procedures:
        number += 1
        units = int(line.get("units") or 1)
        product = ":".join(["HC", line["code"], *(line.get("modifiers") or [])])
        out.add("LX", str(number))
        out.add(
            "SV2",
            revenue_code(line["code"]),
            product,
            charge(line["code"], units),
            "UN",
            str(units),
        )
        out.add("DTP", "472", "D8", _ymd(start))
    if inpatient or not procedures:
        out.add("LX", str(number + 1))
        code = "0120" if inpatient else "0510"
        out.add(
            "SV2",
            code,
            "",
            f"{room:.2f}" if inpatient else charge(code),
            "DA" if inpatient else "UN",
            str(days if inpatient else 1),
        )


# --- FHIR R4 -------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _procedure_system(code: str) -> str:
    return HCPCS if code[:1].isalpha() else CPT


def _patient_id(event: Event) -> str:
    return "pt-" + hashlib.sha256(_patient_key(event).encode()).hexdigest()[:12]


def patient_resource(event: Event, resource_id: str | None = None) -> dict[str, Any]:
    patient = event.get("patient") or {}
    me = person(_patient_key(event), patient.get("sex"))
    gender = {"F": "female", "M": "male", "U": "unknown"}.get(patient.get("sex") or "U", "unknown")
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resource_id or _patient_id(event),
        "identifier": [
            {"system": "https://claims-stage.example/mrn", "value": _patient_key(event)}
        ],
        "name": [{"family": me.last.title(), "given": [me.first.title()]}],
        "gender": gender,
        "address": [
            {
                "line": [me.street.title()],
                "city": me.city.title(),
                "state": me.state,
                "postalCode": me.zip[:5],
            }
        ],
    }
    if patient.get("birth_date"):
        resource["birthDate"] = patient["birth_date"]
    return resource


def claim_resource(
    event: Event,
    patient_reference: str,
    created: dt.datetime,
    convention: Convention = "carin",
    resource_type: ResourceType = "Claim",
) -> dict[str, Any]:
    """A FHIR R4 Claim (or ExplanationOfBenefit) for an event: professional, or
    institutional with its setting told as `convention` says; diagnoses in sequence, items
    with CPT/HCPCS codes and pointers."""
    institutional = event["setting"] != "professional"
    provider = HOSPITAL if institutional else PROFESSIONAL
    payer_id = event.get("payer_id") or "AETNA"
    start = event["date_of_service"]
    end = event.get("discharge_date") or start
    claim: dict[str, Any] = {
        "resourceType": resource_type,
        "id": "claim-" + hashlib.sha256(event["claim_id"].encode()).hexdigest()[:12],
        "identifier": [{"system": CLAIM_SYSTEM, "value": event["claim_id"]}],
        "status": "active",
        "type": _coding(CLAIM_TYPE, "institutional" if institutional else "professional"),
        "use": "claim",
        "patient": {"reference": patient_reference},
        "billablePeriod": {"start": start, "end": end},
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "insurer": {
            "identifier": {"system": PAYER_SYSTEM, "value": payer_id},
            "display": PAYERS.get(payer_id, (payer_id, ""))[0].title(),
        },
        "provider": {
            "identifier": {"system": NPI_SYSTEM, "value": provider.npi},
            "display": provider.name.title(),
        },
        "priority": _coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
    }
    if institutional:
        claim.update(_setting(event, convention))
    claim["diagnosis"] = [
        {
            "sequence": d["sequence"],
            "diagnosisCodeableConcept": _coding(
                ICD10 if convention == "blue-button" else ICD10CM, d["code"].strip().upper()
            ),
        }
        for d in sorted(event["diagnoses"], key=lambda d: d["sequence"])
    ]
    claim["insurance"] = [
        {"sequence": 1, "focal": True, "coverage": {"display": f"{payer_id} coverage"}}
    ]
    claim["item"] = _items(event, start, end)
    if convention == "blue-button":
        _blue_button(claim, event)
    return _explanation_of_benefit(claim) if resource_type == "ExplanationOfBenefit" else claim


def _setting(event: Event, convention: Convention) -> dict[str, Any]:
    """What tells an institutional claim's setting, in each convention."""
    bill = f"{_type_of_bill(event)}1"
    if convention == "carin":
        return {
            "subType": _coding(INSTITUTIONAL_SUBTYPE, event["setting"]),
            "supportingInfo": [
                {
                    "sequence": 1,
                    "category": _coding(SUPPORTING_INFO, "typeofbill"),
                    "code": _coding(TYPE_OF_BILL, f"0{bill}"),
                }
            ],
        }
    if convention == "type-of-bill":
        return {
            "supportingInfo": [
                {
                    "sequence": 1,
                    "category": _coding(INFORMATION_CATEGORY, "info"),
                    "code": _coding(TYPE_OF_BILL, f"0{bill}"),
                }
            ]
        }
    if convention == "bill-type-subtype":
        return {"subType": _coding(CMS_BILL_TYPE, bill)}
    return {}


def _blue_button(claim: dict[str, Any], event: Event) -> None:
    """Blue Button 2.0's way: the claim type in `type`, the claim ID as `clm_id`, HCPCS in
    its own system."""
    claim_type, eob_type = BLUE_BUTTON_TYPES[event["setting"]]
    claim["type"]["coding"] = [
        {"system": BLUE_BUTTON_CLAIM_TYPE, "code": claim_type},
        {"system": BLUE_BUTTON_EOB_TYPE, "code": eob_type},
        *claim["type"]["coding"],
    ]
    claim["identifier"] = [{"system": BLUE_BUTTON_CLAIM_ID, "value": event["claim_id"]}]
    for item in claim["item"]:
        for concept in (item["productOrService"], *item.get("modifier", ())):
            for coding in concept["coding"]:
                if coding["system"] in (CPT, HCPCS):
                    coding["system"] = BLUE_BUTTON_HCPCS


def _explanation_of_benefit(claim: dict[str, Any]) -> dict[str, Any]:
    """The ExplanationOfBenefit a payer publishes for a claim (CARIN Blue Button): the
    claim's content, adjudicated: an outcome, each item's submitted amount."""
    eob = {k: v for k, v in claim.items() if k != "priority"}
    eob["resourceType"] = "ExplanationOfBenefit"
    eob["id"] = "eob-" + claim["id"].removeprefix("claim-")
    eob["outcome"] = "complete"
    eob["insurance"] = [{"focal": True, "coverage": claim["insurance"][0]["coverage"]}]
    for item in eob["item"]:
        net = item.get("net", {"value": 0.0, "currency": "USD"})
        item["adjudication"] = [
            {
                "category": _coding(
                    "http://terminology.hl7.org/CodeSystem/adjudication", "submitted"
                ),
                "amount": net,
            }
        ]
    return eob


def _items(event: Event, start: str, end: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for line in _procedures(event):
        units = int(line.get("units") or 1)
        minutes = line.get("minutes")
        quantity = {"value": minutes, "unit": "min", "system": UCUM, "code": "min"}
        item: dict[str, Any] = {
            "sequence": int(line["line"]),
            "productOrService": _coding(_procedure_system(line["code"]), line["code"]),
            "servicedDate": start,
            "quantity": quantity if minutes else {"value": units},
            "net": {"value": float(charge(line["code"], units)), "currency": "USD"},
        }
        if event["setting"] == "professional":
            item["diagnosisSequence"] = line.get("diagnosis_pointers") or [1]
        else:
            item["revenue"] = _coding(REVENUE, revenue_code(line["code"]))
        if line.get("modifiers"):
            item["modifier"] = [
                _coding(_procedure_system(line["code"]), m) for m in line["modifiers"]
            ]
        items.append(item)
    if event["setting"] == "inpatient":
        items.append(
            {
                "sequence": len(items) + 1,
                "revenue": _coding(REVENUE, "0120", "Room and board, semi-private"),
                "productOrService": _coding(NOT_APPLICABLE, "not-applicable"),
                "servicedPeriod": {"start": start, "end": end},
            }
        )
    return items


def fhir_bundle(
    events: Iterable[Event],
    bundle_id: str,
    created: dt.datetime,
    convention: Convention = "carin",
    resource_type: ResourceType = "Claim",
) -> dict[str, Any]:
    """A collection Bundle: each patient once, then each Claim (or ExplanationOfBenefit)
    naming its patient."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    claims: list[dict[str, Any]] = []
    for event in events:
        patient_id = _patient_id(event)
        if patient_id not in seen:
            seen.add(patient_id)
            entries.append(
                {"fullUrl": f"urn:uuid:{_uuid(patient_id)}", "resource": patient_resource(event)}
            )
        claim = claim_resource(event, f"Patient/{patient_id}", created, convention, resource_type)
        claims.append({"fullUrl": f"urn:uuid:{_uuid(claim['id'])}", "resource": claim})
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "timestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "entry": entries + claims,
    }


def fhir_claim_with_patient(
    event: Event,
    created: dt.datetime,
    convention: Convention = "carin",
    resource_type: ResourceType = "Claim",
) -> dict[str, Any]:
    """A Claim (or ExplanationOfBenefit) with its Patient contained: one self-contained
    record (JSON Lines, Kafka)."""
    claim = claim_resource(event, "#patient", created, convention, resource_type)
    claim = {
        "resourceType": resource_type,
        "id": claim["id"],
        "contained": [patient_resource(event, "patient")],
    } | {k: v for k, v in claim.items() if k not in ("resourceType", "id")}
    return claim


def _uuid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
