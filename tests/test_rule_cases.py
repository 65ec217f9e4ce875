"""Every rule case in tests/rule_cases/ (the catalogue's two examples per rule, then a case
for each branch): the claim must give exactly the findings written there, by rule ID and
severity, and no others. `pytest -k MET-010` runs one rule's cases."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from stream.core.contracts import Decision, FileSource
from stream.core.decision import Decider
from stream.core.rules import RULES_BY_ID
from tests.claims import encode, encounter

CASES_DIR = Path(__file__).parent / "rule_cases"


def _load() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("MET-*.toml")):
        for case in tomllib.loads(path.read_text("utf-8"))["case"]:
            params.append(pytest.param(path.stem, case, id=f"{path.stem}: {case['name']}"))
    return params


CASES = _load()


@pytest.mark.parametrize(("rule_id", "case"), CASES)
def test_rule_case(decider: Decider, rule_id: str, case: dict[str, Any]) -> None:
    event = encounter(
        case["diagnoses"],
        case.get("procedures"),
        setting=case["setting"],
        treatment_directed_at=case.get("treatment_directed_at"),
        primary_status=case.get("primary_status"),
        tnm=case.get("tnm"),
        reason=case.get("reason"),
        date_of_service=case.get("date_of_service", "2026-05-15"),
        discharge_date=case.get("discharge_date"),
    )
    output = decider.decide(encode(event), FileSource(file="case", line=1))
    assert output.route != "dead_letter", output.value
    decision = Decision.model_validate_json(output.value)
    found = {f.rule_id: f.severity for f in decision.findings}
    assert found == case["expect"], [f.message for f in decision.findings]
    expected_outcome = "rejected" if "error" in case["expect"].values() else "validated"
    assert decision.outcome == expected_outcome


def test_every_rule_has_both_catalogue_examples() -> None:
    """MET-001..MET-041 carry the catalogue's two examples; the stage's own rules (MET-042)
    the two examples of their docstring."""
    names: dict[str, set[str]] = {}
    for param in CASES:
        rule_id, case = param.values
        names.setdefault(rule_id, set()).add(case["name"])
    assert set(names) == set(RULES_BY_ID)
    for rule_id, found in names.items():
        examples = "catalogue" if rule_id <= "MET-041" else "docstring"
        assert {f"{examples} violating", f"{examples} compliant"} <= found, rule_id
