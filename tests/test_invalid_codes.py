"""Invalid codes take part in no rule but MET-001, for every rule in the registry.

Every rule case of tests/rule_cases/ is decided again with an invalid code added: at the
end and in the middle it must add MET-001 and change nothing else; as the first-listed
code it must add MET-001 and may only take away findings (there is then no valid
first-listed code to judge), never add one. Three kinds of invalid code: not of
ICD-10-CM shape (`XYZ`), of the shape but in no code set (`C78.03`), and a neoplasm code
valid in another year's code set but not on the claim's date, the one a date-blind stage
gets wrong.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE
from tests.claims import encode, encounter
from tests.test_rule_cases import CASES

SOURCE = FileSource(file="case", line=1)


def _findings(decider: Decider, case: dict[str, Any], diagnoses: list[str]) -> dict[str, str]:
    event = encounter(
        diagnoses,
        case.get("procedures"),
        setting=case["setting"],
        treatment_directed_at=case.get("treatment_directed_at"),
        primary_status=case.get("primary_status"),
        tnm=case.get("tnm"),
        reason=case.get("reason"),
        date_of_service=case.get("date_of_service", "2026-05-15"),
        discharge_date=case.get("discharge_date"),
    )
    output = decider.decide(encode(event), SOURCE)
    assert output.route != "dead_letter"
    return {f.rule_id: f.severity for f in output.findings}


def _other_year_neoplasm(decider: Decider, case: dict[str, Any]) -> str | None:
    """A C or D code valid on some supported date but not on the case's."""
    day = case.get("discharge_date") or case.get("date_of_service", "2026-05-15")
    calendar = decider.icd10cm.calendar
    period = calendar.period_of(dt.date.fromisoformat(day))
    if period is None:
        return None
    for code in ("C79.83", "C78.31", "C81.0A", "C50.A1", *calendar.changing_codes()):
        mask = calendar.valid_mask(code)
        if code[0] in "CD" and mask and not mask & period.bit:
            return code
    return None


@pytest.mark.parametrize(("rule_id", "case"), CASES)
def test_an_invalid_code_changes_nothing_but_met001(
    decider: Decider, rule_id: str, case: dict[str, Any]
) -> None:
    diagnoses = list(case["diagnoses"])
    base = _findings(decider, case, diagnoses)
    out_of_range = "MET-042" in base
    expected = base if out_of_range else {**base, "MET-001": "error"}
    other_year = _other_year_neoplasm(decider, case)
    invalid_codes = ["XYZ", "C78.03", *([other_year] if other_year else [])]
    for invalid in invalid_codes:
        at_end = _findings(decider, case, [*diagnoses, invalid])
        assert at_end == expected, (invalid, "at the end")
        in_middle = _findings(decider, case, [diagnoses[0], invalid, *diagnoses[1:]])
        assert in_middle == expected, (invalid, "in the middle")
        first = _findings(decider, case, [invalid, *diagnoses])
        assert first.get("MET-001") == expected.get("MET-001"), (invalid, "first")
        added = set(first.items()) - set(base.items()) - {("MET-001", "error")}
        assert added == set(), (invalid, "first-listed")


def test_every_rule_is_exercised_by_a_firing_case() -> None:
    """The test above covers every rule: each has a case where it fires."""
    fired = {rule for _, case in (p.values for p in CASES) for rule in case["expect"]}
    assert {rule.rule_id for rule in CATALOGUE} <= fired
