"""Invalid codes take part in no rule but MET-001, for every rule in the registry.

Every rule case of stream/core/rules/cases/ is decided again with an invalid code added: at the
end and in the middle it must add MET-001 and change nothing else; as the first-listed
code it must add MET-001 and may only take away findings (there is then no valid
first-listed code to judge), never add one. Three kinds of invalid code: not of
ICD-10-CM shape (`XYZ`), of the shape but in no code set (`C78.03`), and a neoplasm code
valid in another year's code set but not on the claim's date, the one a date-blind stage
gets wrong. On a claim judged by the nearest code set (MET-042) the last two are MET-001
warnings: they may be codes of the release that is not loaded.
"""

from __future__ import annotations

import pytest

from stream.core.codes.icd10cm import CODE_FORMAT
from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE
from stream.core.rules.casebook import RuleCase, all_cases
from tests.test_rule_cases import CASES

SOURCE = FileSource(file="case", line=1)


def _findings(decider: Decider, case: RuleCase, diagnoses: list[str]) -> dict[str, str]:
    output = decider.decide(case.encoded(diagnoses), SOURCE)
    assert output.route != "dead_letter"
    return {f.rule_id: f.severity for f in output.findings}


def _other_year_neoplasm(decider: Decider, case: RuleCase) -> str | None:
    """A C or D code valid on some supported date but not on the case's."""
    calendar = decider.icd10cm.calendar
    period, _ = calendar.judge(case.discharge_date or case.date_of_service)
    for code in ("C79.83", "C78.31", "C81.0A", "C50.A1", *calendar.changing_codes()):
        mask = calendar.valid_mask(code)
        if code[0] in "CD" and mask and not mask & period.bit:
            return code
    return None


@pytest.mark.parametrize("case", CASES)
def test_an_invalid_code_changes_nothing_but_met001(decider: Decider, case: RuleCase) -> None:
    diagnoses = list(case.diagnoses)
    base = _findings(decider, case, diagnoses)
    other_year = _other_year_neoplasm(decider, case)
    invalid_codes = ["XYZ", "C78.03", *([other_year] if other_year else [])]
    for invalid in invalid_codes:
        expected = {**base, "MET-001": _severity(base, invalid)}
        at_end = _findings(decider, case, [*diagnoses, invalid])
        assert at_end == expected, (invalid, "at the end")
        in_middle = _findings(decider, case, [diagnoses[0], invalid, *diagnoses[1:]])
        assert in_middle == expected, (invalid, "in the middle")
        first = _findings(decider, case, [invalid, *diagnoses])
        assert first.get("MET-001") == expected.get("MET-001"), (invalid, "first")
        added = set(first.items()) - set(base.items()) - {("MET-001", expected["MET-001"])}
        assert added == set(), (invalid, "first-listed")


def _severity(base: dict[str, str], invalid: str) -> str:
    """MET-001's severity with `invalid` added: a warning for a code of ICD-10-CM shape on a
    claim judged by the nearest code set, unless the claim already has its error."""
    if "MET-042" in base and CODE_FORMAT.match(invalid) and base.get("MET-001") != "error":
        return "warning"
    return "error"


def test_every_rule_is_exercised_by_a_firing_case() -> None:
    """The test above covers every rule: each has a case where it fires."""
    fired = {rule for cases in all_cases().values() for case in cases for rule in case.expect}
    assert {rule.rule_id for rule in CATALOGUE} <= fired
