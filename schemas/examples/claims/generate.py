"""Generate the claim files: the same clinical claims as 837P, 837I and FHIR R4.

    python schemas/examples/claims/generate.py           # rewrite the files and README.md
    python schemas/examples/claims/generate.py --check   # exit 1 if the committed files differ

The claims are a subset of the example stream (`../encounters.jsonl`): events whose
decision does not depend on their `context` (837 and FHIR claims carry no TNM stage, primary
status or treatment target), with a payer and a patient, chosen to cover every rule family,
every setting and as many rules as the subset allows. Each is written with
`bench.claimfiles` as an 837P (professional) or 837I (inpatient, outpatient) claim,
as a Claim in a FHIR Bundle, as a Claim with a contained Patient in JSON Lines, and as the
ExplanationOfBenefit a payer publishes for it: CARIN Blue Button-shaped in a Bundle, CMS
Blue Button 2.0-shaped in JSON Lines.

Before it writes, the generator decides every claim in every format and refuses to write
unless each gets the decision (outcome, findings, codes) of its native event. The files
with errors are the good files with deliberate faults, each listed in `README.md` with the
dead letter it must give.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from bench import claimfiles  # noqa: E402
from stream.cli.readers import read_input  # noqa: E402
from stream.core.contracts import FileSource  # noqa: E402
from stream.core.decision import Decider  # noqa: E402
from stream.core.rules import RULES_BY_ID  # noqa: E402

NATIVE = HERE.parent / "encounters.jsonl"
P837 = HERE / "837p.x12"
I837 = HERE / "837i.x12"
BUNDLE = HERE / "bundle.json"
CLAIMS_JSONL = HERE / "claims.jsonl"
EOB_BUNDLE = HERE / "explanation-of-benefit.json"
BLUE_BUTTON = HERE / "blue-button.jsonl"
P837_ERRORS = HERE / "837p-errors.x12"
BUNDLE_ERRORS = HERE / "bundle-errors.json"
README = HERE / "README.md"
BUNDLE_ID, ERRORS_BUNDLE_ID = "claims-export", "claims-with-errors"
EOB_BUNDLE_ID = "explanations-of-benefit"

P837_CONTROL, I837_CONTROL, ERRORS_CONTROL = 100000001, 200000001, 300000001
"""First interchange control numbers (ISA13) of each 837 file."""
PER_SETTING = {"professional": 12, "outpatient": 10, "inpatient": 8}
CLEAN_PER_SETTING = 2

Event = dict[str, Any]


def family(rule_id: str) -> str:
    return RULES_BY_ID[rule_id].check.__module__.rsplit(".", 1)[1]


def verdict(decider: Decider, value: bytes | Any) -> dict[str, Any]:
    """What must be equal across formats: outcome, findings and the codes as described."""
    output = decider.decide(value, FileSource(file="x", line=1))
    document = json.loads(output.value)
    if output.route == "dead_letter":
        return {"dead_letter": document["error"]["message"]}
    return {
        key: document[key] for key in ("claim_id", "outcome", "findings", "diagnoses", "procedures")
    }


def native_events(decider: Decider) -> list[tuple[Event, dict[str, Any]]]:
    """Decided native events whose decision stands without their context."""
    chosen = []
    for line in NATIVE.read_bytes().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or not _representable(event):
            continue
        decided = verdict(decider, line)
        if "dead_letter" in decided:
            continue
        bare = {k: v for k, v in event.items() if k != "context"}
        if verdict(decider, json.dumps(bare).encode()) != decided:
            continue
        chosen.append((event, decided))
    return chosen


def _representable(event: Event) -> bool:
    patient = event.get("patient") or {}
    limit = 12 if event.get("setting") == "professional" else 25
    return bool(
        event.get("payer_id")
        and patient.get("birth_date")
        and patient.get("sex")
        and len(event.get("diagnoses") or ()) <= limit
        # an 837P claim bills at least one service line
        and (event.get("procedures") or event.get("setting") != "professional")
    )


def select(candidates: list[tuple[Event, dict[str, Any]]]) -> list[Event]:
    """Every rule family first (the candidate adding most rules), then per setting the
    events that add rules not yet covered, then a few clean ones; kept in stream order."""
    picked: list[int] = []
    covered: set[tuple[str, str]] = set()

    def gain(index: int) -> tuple[int, int]:
        return len(_rules(candidates[index][1]) - covered), -index

    def take(index: int) -> None:
        picked.append(index)
        covered.update(_rules(candidates[index][1]))

    for name in dict.fromkeys(family(rule) for rule in RULES_BY_ID):
        if any(family(rule) == name for rule, _ in covered):
            continue
        options = [
            i
            for i, (_, decided) in enumerate(candidates)
            if i not in picked and any(family(r) == name for r, _ in _rules(decided))
        ]
        if options:
            take(max(options, key=gain))
    for setting, limit in PER_SETTING.items():
        pool = [i for i, (e, _) in enumerate(candidates) if e["setting"] == setting]
        while sum(i in picked for i in pool) < limit - CLEAN_PER_SETTING:
            options = [i for i in pool if i not in picked and gain(i)[0] > 0]
            if not options:
                break
            take(max(options, key=gain))
        clean = [i for i in pool if not candidates[i][1]["findings"] and i not in picked]
        # a few clean ones, and as many as fill the setting's share when the claims that add
        # rules ran out, spread over the stream (the interchanges need claims of several years)
        wanted = max(CLEAN_PER_SETTING, limit - sum(i in picked for i in pool))
        picked += clean[:: max(1, len(clean) // wanted)][:wanted]  # spread over the years
    return [candidates[i][0] for i in sorted(picked)]


def _rules(decided: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["severity"]) for f in decided["findings"]}


# --- the files ------------------------------------------------------------------------------


def last_day(event: Event) -> dt.date:
    return dt.date.fromisoformat(event.get("discharge_date") or event["date_of_service"])


def created_after(events: list[Event]) -> dt.datetime:
    """When a batch is sent: three days after its last claim's last day of service."""
    last = max(last_day(e) for e in events) + dt.timedelta(days=3)
    return dt.datetime.combine(last, dt.time(18, 5), tzinfo=dt.UTC)


def batches(events: list[Event]) -> list[list[Event]]:
    """Claims as a provider sends them: one batch per fiscal year of service (October to
    September), a batch of one claim joined to its neighbour."""
    years: dict[int, list[Event]] = {}
    for event in events:
        day = last_day(event)
        years.setdefault(day.year + (day.month >= 10), []).append(event)
    grouped: list[list[Event]] = []
    for batch in years.values():
        if grouped and (len(batch) == 1 or len(grouped[-1]) == 1):
            grouped[-1] = grouped[-1] + batch
        else:
            grouped.append(list(batch))
    return grouped


def envelope(control: int, created: dt.datetime) -> claimfiles.Envelope:
    return claimfiles.Envelope(
        sender_id="HARBORVIEWBS",
        receiver_id="CLAIMSSTAGE",
        created=created,
        interchange_control_number=control,
        group_control_number=control % 100_000,
    )


def interchanges(guide: claimfiles.Guide, events: list[Event], first_control: int) -> str:
    return "".join(
        claimfiles.interchange(envelope(first_control + n, created_after(batch)), [(guide, batch)])
        for n, batch in enumerate(batches(events))
    )


def render(events: list[Event]) -> dict[Path, bytes]:
    professional = [e for e in events if e["setting"] == "professional"]
    institutional = [e for e in events if e["setting"] != "professional"]
    files = {
        P837: interchanges("837p", professional, P837_CONTROL).encode(),
        I837: interchanges("837i", institutional, I837_CONTROL).encode(),
        BUNDLE: _json(claimfiles.fhir_bundle(events, BUNDLE_ID, created_after(events))),
        CLAIMS_JSONL: b"".join(
            json.dumps(claimfiles.fhir_claim_with_patient(e, created_after([e]))).encode() + b"\n"
            for e in events
        ),
        EOB_BUNDLE: _json(
            claimfiles.fhir_bundle(
                events, EOB_BUNDLE_ID, created_after(events), "carin", "ExplanationOfBenefit"
            )
        ),
        BLUE_BUTTON: b"".join(
            json.dumps(
                claimfiles.fhir_claim_with_patient(
                    e, created_after([e]), "blue-button", "ExplanationOfBenefit"
                )
            ).encode()
            + b"\n"
            for e in events
        ),
    }
    files[P837_ERRORS] = _broken_837(professional)
    files[BUNDLE_ERRORS] = _broken_bundle(events)
    return files


def _json(document: Any) -> bytes:
    return json.dumps(document, indent=2).encode() + b"\n"


X12_FAULTS = (
    # (claim index in the file, what is wrong, the location the dead letter names)
    (1, "no HI segment: the claim has no diagnosis", "2300 HI"),
    (2, "its patient's birth date is 2026-02-30 (DMG02)", "2010BA DMG DMG02"),
    (3, "service line 1 bills 1.5 units (SV104)", "2400 SV1 SV104"),
    (4, "service line 1 points at diagnosis 9 (SV107)", "procedures.0.diagnosis_pointers.0"),
)
X12_SECOND_SET = "the second transaction set's SE01 says 99 segments: both of its claims"


def _broken_837(professional: list[Event]) -> bytes:
    """Six claims in a first transaction set, four of them broken one way each; two claims
    in a second transaction set whose SE count is wrong."""
    first = [_single_claim_patient(e, n) for n, e in enumerate(professional[:6])]
    second = [_single_claim_patient(e, n + 6) for n, e in enumerate(professional[6:8])]
    sent = envelope(ERRORS_CONTROL, created_after(first + second))
    text = claimfiles.interchange(sent, [("837p", first), ("837p", second)])
    lines = text.splitlines()
    out: list[str] = []
    claim = -1
    broken_lines: set[int] = set()
    for line in lines:
        if line.startswith("CLM*"):
            claim += 1
        if claim == 1 and line.startswith("HI*"):
            continue  # the first transaction set's SE01 is recounted below
        if line.startswith("DMG*") and _next_claim_is(lines, line, first[2]["claim_id"]):
            line = line.replace(_ymd(first[2]["patient"]["birth_date"]), "20260230")
        if claim in (3, 4) and line.startswith("SV1*") and claim not in broken_lines:
            broken_lines.add(claim)
            parts = line.rstrip("~").split("*")
            if claim == 3:
                parts[4] = "1.5"
            else:
                parts[7] = "9"
            line = "*".join(parts) + "~"
        if line.startswith("SE*") and line.endswith("*0001~"):
            start = next(i for i, x in enumerate(out) if x.startswith("ST*837*0001*"))
            line = f"SE*{len(out) - start + 1}*0001~"
        if line.startswith("SE*") and line.endswith("*0002~"):
            line = "SE*99*0002~"
        out.append(line)
    return ("\n".join(out) + "\n").encode()


def _single_claim_patient(event: Event, n: int) -> Event:
    """A copy with its own patient, so that a fault in one patient's loop touches one claim."""
    patient = dict(event.get("patient") or {})
    patient["id"] = f"PT-ERR-{n}"
    return {**event, "patient": patient}


def _next_claim_is(lines: list[str], line: str, claim_id: str) -> bool:
    index = lines.index(line)
    following = next((x for x in lines[index:] if x.startswith("CLM*")), "")
    return following.startswith(f"CLM*{claim_id}*")


def _ymd(value: str) -> str:
    return value.replace("-", "")


FHIR_FAULTS = (
    (1, "item 1 bills 1.5 units", "Claim.item[0].quantity.value"),
    (2, "the diagnosis is coded in SNOMED CT only, with no ICD-10-CM coding", "Claim.diagnosis[0]"),
    (
        3,
        "an item's sequence is the text 'one' (fhir.resources rejects it)",
        "Claim.item[0].sequence",
    ),
    (4, "its Patient's birthDate is 1958-02-30 (fhir.resources rejects it)", "Patient.birthDate"),
)


def _broken_bundle(events: list[Event]) -> bytes:
    """Six Claims; the second to the fifth are broken one way each."""
    chosen = [e for e in events if e.get("procedures")][:6]
    chosen = [_single_claim_patient(e, 20 + n) for n, e in enumerate(chosen)]
    bundle = claimfiles.fhir_bundle(chosen, ERRORS_BUNDLE_ID, created_after(chosen))
    claims = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim"]
    patients = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    claims[1]["item"][0]["quantity"] = {"value": 1.5}
    claims[2]["diagnosis"][0]["diagnosisCodeableConcept"] = {
        "coding": [{"system": "http://snomed.info/sct", "code": "254637007"}]
    }
    claims[3]["item"][0]["sequence"] = "one"
    patient_id = claims[4]["patient"]["reference"].split("/")[1]
    patients[patient_id]["birthDate"] = "1958-02-30"
    return _json(bundle)


# --- checks ---------------------------------------------------------------------------------


def records(path: Path, data: bytes) -> Iterator[Any]:
    reading = read_input(io.BytesIO(data), path.name)
    for value, _ in reading.records:
        yield value


def disagreements(decider: Decider, events: list[Event], files: dict[Path, bytes]) -> list[str]:
    """Every format must give each claim its native decision."""
    native = {e["claim_id"]: verdict(decider, json.dumps(e).encode()) for e in events}
    problems = []
    for path in (P837, I837, BUNDLE, CLAIMS_JSONL, EOB_BUNDLE, BLUE_BUTTON):
        seen = Counter()
        for value in records(path, files[path]):
            decided = verdict(decider, value)
            claim_id = decided.get("claim_id")
            seen[claim_id] += 1
            if claim_id not in native or decided != native[claim_id]:
                problems.append(f"{path.name}: {claim_id}: {decided} != {native.get(claim_id)}")
        expected = {e["claim_id"] for e in events if _in_file(path, e)}
        if set(seen) != expected or any(n != 1 for n in seen.values()):
            problems.append(f"{path.name}: claims {sorted(seen)} != {sorted(expected)}")
    return problems


def _in_file(path: Path, event: Event) -> bool:
    if path == P837:
        return event["setting"] == "professional"
    if path == I837:
        return event["setting"] != "professional"
    return True


def describe(decider: Decider, events: list[Event]) -> str:
    rows = []
    families: Counter[str] = Counter()
    settings: Counter[str] = Counter()
    for event in events:
        decided = verdict(decider, json.dumps(event).encode())
        findings = ", ".join(f"{f['rule_id']} {f['severity']}" for f in decided["findings"])
        families.update({family(f["rule_id"]) for f in decided["findings"]})
        settings[event["setting"]] += 1
        file_name = P837.name if event["setting"] == "professional" else I837.name
        rows.append(
            f"| {event['claim_id']} | {event['setting']} | {file_name} | "
            f"{decided['outcome']} | {findings or '-'} |"
        )
    return README_TEXT.format(
        count=len(events),
        p837_interchanges=len(batches([e for e in events if e["setting"] == "professional"])),
        i837_interchanges=len(batches([e for e in events if e["setting"] != "professional"])),
        first=min(e["date_of_service"] for e in events),
        last=max(last_day(e) for e in events).isoformat(),
        professional=settings["professional"],
        inpatient=settings["inpatient"],
        outpatient=settings["outpatient"],
        families=", ".join(f"{name} {n}" for name, n in sorted(families.items())),
        rows="\n".join(rows),
        x12_faults="\n".join(f"| {n + 1} | {what} | `{where}` |" for n, what, where in X12_FAULTS),
        fhir_faults="\n".join(
            f"| {n + 1} | {what} | `{where}` |" for n, what, where in FHIR_FAULTS
        ),
        second_set=X12_SECOND_SET,
    )


README_TEXT = """\
# Claims as payers and hospitals send them

The same {count} clinical claims in the formats the stage reads besides its own events:

| file | format | claims |
|---|---|---|
| `837p.x12` | ASC X12 837P 005010X222A1: {p837_interchanges} interchanges, one per fiscal year of service, with two billing providers (an oncology group, a radiology group), patients as subscribers and as dependents (loop 2000C) | {professional} professional |
| `837i.x12` | ASC X12 837I 005010X223A2: {i837_interchanges} interchanges from one hospital, type of bill 111 (inpatient) and 131 (outpatient) | {inpatient} inpatient, {outpatient} outpatient |
| `bundle.json` | a FHIR R4 `Bundle` (collection) of Patients and Claims | {count} |
| `claims.jsonl` | FHIR R4 `Claim`s with a contained `Patient`, one a line (what the worker reads from the input topic) | {count} |
| `explanation-of-benefit.json` | a FHIR R4 `Bundle` of Patients and `ExplanationOfBenefit`s shaped as CARIN Blue Button writes them (what a payer's Patient Access API publishes) | {count} |
| `blue-button.jsonl` | `ExplanationOfBenefit`s shaped as CMS Blue Button 2.0 writes them (claim type in `type`, `clm_id`, ICD-10 and Blue Button HCPCS systems), a contained `Patient`, one a line | {count} |

Each claim is an event of the example stream (`../encounters.jsonl`, same `claim_id`) whose
decision does not depend on its `context`: an 837 or a FHIR Claim carries no TNM stage,
primary status or treatment target. `claims-stage check` gives each claim, in every format,
the decision its native event gets (outcome, findings, codes); `tests/test_formats.py`
checks it. The claims' dates of service run from {first} to {last}, as the example stream's
do, across the code-set years the stage loads; each batch is sent three days after its last
claim. Providers, patients and identifiers are invented.

**Do not edit these files by hand.** Change `generate.py` and run

    python schemas/examples/claims/generate.py          # rewrite the files and this README
    python schemas/examples/claims/generate.py --check  # exit 1 when the committed files differ

```console
claims-stage check schemas/examples/claims/837p.x12 --out out/837p
claims-stage check schemas/examples/claims/bundle.json --out out/bundle
claims-stage ingest schemas/examples/claims/837i.x12      # one encounter event per claim, to Kafka
```

## The claims

Findings by rule family: {families}.

| claim | setting | 837 file | outcome | findings |
|---|---|---|---|---|
{rows}

## Files with errors

`837p-errors.x12` has eight claims. In its first transaction set, claims 1, 6 are good and
decided; each of the others is a dead letter that says where and what, and keeps the claim's
segments whole:

| claim | what is wrong | location in the dead letter's details |
|---|---|---|
{x12_faults}

and {second_set} are dead letters (`ST_LOOP SE`).

`bundle-errors.json` has six Claims; Claims 1 and 6 are decided, each of the others is a
dead letter naming the FHIR element:

| Claim | what is wrong | element |
|---|---|---|
{fhir_faults}
"""


def main(argv: list[str] | None = None, decider: Decider | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    args = parser.parse_args(argv)
    decider = decider or Decider()
    events = select(native_events(decider))
    files = render(events)
    files[README] = describe(decider, events).encode()
    if args.check:
        stale = [p.name for p, data in files.items() if not p.exists() or p.read_bytes() != data]
        if stale:
            print(f"out of date: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    problems = disagreements(decider, events, files)
    if problems:
        print("the formats disagree with the native events; nothing written:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        return 2
    for path, data in files.items():
        path.write_bytes(data)
    print(f"wrote {len(events)} claims to {', '.join(p.name for p in files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
