"""Each rule's cases: claims, as data, with the findings the stage must give on them.

`cases/MET-0xx.toml` (package data beside the rules) holds one rule's cases: first its two
examples, the one that fails and the one that passes, then a case for every branch. The
examples of a catalogue rule are the catalogue's own (`catalogue violating`, `catalogue
compliant`); a rule the stage adds beyond the catalogue names them `stage violating` and
`stage compliant`. The tests decide every case, `claims-stage explain` and the rule
reference of `docs/rules.md` render the examples, and the example stream carries them: one
file, so neither the documentation nor the stream shows a claim the tests do not check.

A case reads:

    [[case]]
    name = "catalogue violating"
    setting = "professional"            # inpatient | outpatient | professional
    treatment_directed_at = "secondary" # the contract's context fields, when the case has them
    primary_status = "active"
    tnm = "T2N1M1"
    reason = "restaging"                # context.reason_for_encounter
    date_of_service = "2026-05-15"      # default: inside the catalogue's April 2026 code set
    discharge_date = "2026-05-20"
    diagnoses = ["C79.49", "C34.12"]    # in sequence order
    procedures = ["61510"]              # one line each, one unit
    note = "..."                        # optional: what the example shows, in a few words
    expect = {"MET-030" = "error"}      # every finding on the claim: rule ID -> severity

    [case.finding]                      # optional, for a violating example: its own finding
    diagnoses = [1, 2]                  # the diagnosis sequences it refers to
    procedures = [1]                    # the procedure lines it refers to
    names = ["61510", "C71.0-C71.5"]    # what its message must name

An unknown key is an error, so that a misspelt field cannot silently drop a condition.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream.core.contracts import PrimaryStatus, Setting, Severity, TreatmentTarget

CASES_PACKAGE = "stream.core.rules"
CASES_FOLDER = "cases"

CATALOGUE_DATE = dt.date(2026, 5, 15)
"""The date of service of a case that gives none: inside the catalogue's code set (ICD-10-CM
April 2026, dates of service 2026-04-01..2026-09-30)."""

EXAMPLE_SOURCES = ("catalogue", "stage")
"""Where a rule's two examples come from: the catalogue's text, or the stage's own rule."""

Example = Literal["violating", "compliant"]


class CaseFileError(ValueError):
    """A case file that does not read as rule cases."""


class ExpectedFinding(BaseModel):
    """What a violating example's own finding must say, beyond its rule and severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    diagnoses: tuple[int, ...] = ()
    """The diagnosis sequences the finding refers to."""
    procedures: tuple[int, ...] = ()
    """The procedure lines the finding refers to."""
    names: tuple[str, ...] = Field(min_length=1)
    """Codes or words the message must contain."""


class RuleCase(BaseModel):
    """One claim of a rule's case file and the findings it must get."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    name: str
    setting: Setting
    diagnoses: tuple[str, ...] = Field(min_length=1)
    procedures: tuple[str, ...] = ()
    treatment_directed_at: TreatmentTarget | None = None
    primary_status: PrimaryStatus | None = None
    tnm: str | None = None
    reason: str | None = None
    date_of_service: dt.date = CATALOGUE_DATE
    discharge_date: dt.date | None = None
    note: str | None = None
    expect: dict[str, Severity]
    finding: ExpectedFinding | None = None

    @property
    def example(self) -> Example | None:
        """Which of the rule's two examples this case is, if it is one."""
        source, _, kind = self.name.partition(" ")
        if source in EXAMPLE_SOURCES and kind in ("violating", "compliant"):
            return kind  # type: ignore[return-value]
        return None

    @property
    def context(self) -> dict[str, str]:
        """The contract's `context` fields the case sets."""
        fields = {
            "reason_for_encounter": self.reason,
            "treatment_directed_at": self.treatment_directed_at,
            "primary_status": self.primary_status,
            "tnm": self.tnm,
        }
        return {name: value for name, value in fields.items() if value is not None}

    def event(self, diagnoses: Sequence[str] | None = None) -> dict[str, Any]:
        """The case as an encounter event (JSON document); `diagnoses` replaces its codes."""
        codes = self.diagnoses if diagnoses is None else diagnoses
        event: dict[str, Any] = {
            "schema_version": 1,
            "event_id": f"case-{self.rule_id}",
            "claim_id": f"CASE-{self.rule_id}",
            "setting": self.setting,
            "date_of_service": self.date_of_service.isoformat(),
            "context": self.context,
            "diagnoses": [{"sequence": i, "code": c} for i, c in enumerate(codes, 1)],
            "procedures": [{"line": i, "code": c} for i, c in enumerate(self.procedures, 1)],
        }
        if self.discharge_date is not None:
            event["discharge_date"] = self.discharge_date.isoformat()
        return event

    def encoded(self, diagnoses: Sequence[str] | None = None) -> bytes:
        """The event as the input topic carries it."""
        return json.dumps(self.event(diagnoses)).encode()


def parse_cases(rule_id: str, text: str) -> tuple[RuleCase, ...]:
    """The cases of one case file's text."""
    try:
        document = tomllib.loads(text)
        return tuple(RuleCase(rule_id=rule_id, **case) for case in document["case"])
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValidationError) as error:
        raise CaseFileError(f"{rule_id}.toml: {error}") from error


@cache
def all_cases() -> dict[str, tuple[RuleCase, ...]]:
    """Every case file of the package, by rule ID, in ID order."""
    folder = resources.files(CASES_PACKAGE).joinpath(CASES_FOLDER)
    files = sorted(
        (entry.name.removesuffix(".toml"), entry)
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )
    return {rule_id: parse_cases(rule_id, entry.read_text("utf-8")) for rule_id, entry in files}


def cases_of(rule_id: str) -> tuple[RuleCase, ...]:
    """One rule's cases; none for a rule without a case file."""
    return all_cases().get(rule_id, ())


def examples_of(rule_id: str) -> dict[Example, RuleCase]:
    """A rule's two examples, by kind (a case file may lack one: the tests say so)."""
    return {case.example: case for case in cases_of(rule_id) if case.example is not None}
