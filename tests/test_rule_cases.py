"""Every rule case in stream/core/rules/cases/ (each rule's two examples, then a case for
each branch): the claim must give exactly the findings written there, by rule ID and
severity, and no others; and every finding must say what it said when last reviewed.
`pytest -k MET-010` runs one rule's cases.

What a finding says (message, citation, referenced diagnoses and procedure lines, CARC,
RARC) is pinned by a snapshot of every case's findings (`__snapshots__/test_rule_cases.ambr`):
a change to any of them fails here, and is accepted by `pytest tests/test_rule_cases.py
--snapshot-update` and reviewed in the diff of the snapshot file. The violating examples
also carry explicit expectations (`[case.finding]`) that do not depend on a snapshot.
"""

from __future__ import annotations

from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from stream.core.contracts import Decision, FileSource
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE, RULES_BY_ID, Rule
from stream.core.rules.casebook import RuleCase, all_cases, examples_of

CASES = [
    pytest.param(case, id=f"{rule_id}: {case.name}")
    for rule_id, cases in all_cases().items()
    for case in cases
]


def decide(decider: Decider, case: RuleCase) -> Decision:
    output = decider.decide(case.encoded(), FileSource(file=f"{case.rule_id}.toml", line=1))
    assert output.route != "dead_letter", output.value
    return Decision.model_validate_json(output.value)


@pytest.mark.parametrize("case", CASES)
def test_rule_case(decider: Decider, case: RuleCase) -> None:
    decision = decide(decider, case)
    found = {f.rule_id: f.severity for f in decision.findings}
    assert found == case.expect, [f.message for f in decision.findings]
    expected_outcome = "rejected" if "error" in case.expect.values() else "validated"
    assert decision.outcome == expected_outcome


@pytest.mark.parametrize("case", CASES)
def test_what_each_finding_says(
    decider: Decider, case: RuleCase, snapshot: SnapshotAssertion
) -> None:
    findings: list[dict[str, Any]] = [f.model_dump() for f in decide(decider, case).findings]
    assert findings == snapshot


def test_every_rule_has_one_example_that_fails_and_one_that_passes() -> None:
    for rule in CATALOGUE:
        cases = all_cases()[rule.rule_id]
        kinds = [case.example for case in cases if case.example is not None]
        assert sorted(kinds) == ["compliant", "violating"], rule.rule_id
        examples = examples_of(rule.rule_id)
        assert rule.rule_id in examples["violating"].expect, rule.rule_id
        assert rule.rule_id not in examples["compliant"].expect, rule.rule_id


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.rule_id)
def test_the_example_that_fails_gets_its_rules_finding(decider: Decider, rule: Rule) -> None:
    """Explicitly, beyond the snapshot: the rule, its highest severity, its citation and X12
    codes, the diagnoses and lines it names, and what its message must say."""
    case = examples_of(rule.rule_id)["violating"]
    assert case.finding is not None, f"{rule.rule_id}: the violating example has no [case.finding]"
    [finding] = [f for f in decide(decider, case).findings if f.rule_id == rule.rule_id]
    assert finding.severity == rule.severity
    assert (finding.citation, finding.carc, finding.rarc) == (rule.citation, rule.carc, rule.rarc)
    assert finding.diagnosis_sequences == case.finding.diagnoses
    assert finding.procedure_lines == case.finding.procedures
    missing = [name for name in case.finding.names if name not in finding.message]
    assert not missing, f"{rule.rule_id}: {finding.message!r} does not name {missing}"


def test_every_finding_carries_a_message_and_its_rules_citation_and_x12_codes(
    decider: Decider,
) -> None:
    for cases in all_cases().values():
        for case in cases:
            for finding in decide(decider, case).findings:
                rule = RULES_BY_ID[finding.rule_id]
                where = (case.rule_id, case.name, finding.rule_id)
                assert finding.message.strip(), where
                assert finding.citation == rule.citation, where
                assert (finding.carc, finding.rarc) == (rule.carc, rule.rarc), where
