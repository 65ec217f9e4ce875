"""Properties of the decision on claims that keep the contract, so that they reach the rules.

- Every contract-valid event is decided (validated or rejected), never dead-lettered, and
  its decision reads back as the contract's `Decision`.
- Skipping rules by their declared scope (`applies_to`, `reads_procedures`, `needs`) changes
  nothing: the findings equal those of calling every active rule on the claim.
- Events generated from the exported JSON Schema are decided or, where they break a
  cross-field statement the schema cannot express, dead-lettered as contract violations;
  never an `internal_error`.

The codes are drawn from the rule cases (every family the rules read) and the CPT table,
so generated claims fire every rule.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.claim import build_claim
from stream.core.contracts import (
    DeadLetter,
    Decision,
    EncounterEvent,
    FileSource,
    json_schemas,
)
from stream.core.decision import Decider
from stream.core.rules import RULES_BY_ID
from stream.core.rules.casebook import all_cases
from stream.core.rules.config import RuleFinding
from tests.schema_strategy import from_schema

SOURCE = FileSource(file="property", line=1)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def _case_codes() -> tuple[list[str], list[str]]:
    diagnoses: set[str] = set()
    procedures: set[str] = set()
    for cases in all_cases().values():
        for case in cases:
            diagnoses.update(case.diagnoses)
            procedures.update(case.procedures)
    return sorted(diagnoses), sorted(procedures)


DIAGNOSIS_CODES, PROCEDURE_CODES = _case_codes()
CASE_CODES = [
    (tuple(case.diagnoses), tuple(case.procedures))
    for cases in all_cases().values()
    for case in cases
]
"""Each rule case's codes: the combinations that make rules fire, for claims to start from."""
# Dates on which every code of the rule cases is what the cases say it is.
FIRST_DAY, LAST_DAY = dt.date(2026, 4, 1), dt.date(2026, 9, 30)


@st.composite
def contract_valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """An encounter event that keeps every statement of the contract: a rule case's codes
    (or none) with more codes and procedures drawn at random, and any context."""
    base_diagnoses, base_procedures = draw(st.sampled_from([((), ()), *CASE_CODES]))
    extra = draw(
        st.lists(st.sampled_from(DIAGNOSIS_CODES), min_size=0 if base_diagnoses else 1, max_size=4)
    )
    codes = [*base_diagnoses, *extra][:25]
    count = len(codes)
    order = draw(st.permutations(range(1, count + 1)))  # array order need not be sequence order
    procedures = [
        *base_procedures,
        *draw(st.lists(st.sampled_from(PROCEDURE_CODES), max_size=3)),
    ]
    context = {
        "reason_for_encounter": draw(
            st.sampled_from(
                [None, "restaging", "pain control", "possible metastasis", "chemotherapy", ""]
            )
        ),
        "treatment_directed_at": draw(st.sampled_from([None, "primary", "secondary", "both"])),
        "primary_status": draw(st.sampled_from([None, "active", "eradicated", "unknown"])),
        "tnm": draw(st.sampled_from([None, "T2N1M1", "cT2 N0 M0", "TXNXMX", "pT1N0M1a"])),
    }
    return {
        "schema_version": 1,
        "event_id": f"evt-{draw(st.integers(0, 10**9))}",
        "claim_id": f"CLM-{draw(st.integers(0, 10**9))}",
        "setting": draw(st.sampled_from(["inpatient", "outpatient", "professional"])),
        "date_of_service": draw(st.dates(FIRST_DAY, LAST_DAY)).isoformat(),
        "patient": {"sex": draw(st.sampled_from(["F", "M", "U"]))},
        "context": context,
        "diagnoses": [{"sequence": order[i], "code": code} for i, code in enumerate(codes)],
        "procedures": [
            {
                "line": line,
                "code": code,
                "units": draw(st.integers(1, 3)),
                "diagnosis_pointers": sorted(
                    set(draw(st.lists(st.integers(1, count), min_size=1, max_size=4)))
                ),
            }
            for line, code in enumerate(procedures, 1)
        ],
    }


@PROPERTY
@given(event=contract_valid_events())
def test_every_contract_valid_event_is_decided(decider: Decider, event: dict[str, Any]) -> None:
    output = decider.decide(json.dumps(event).encode(), SOURCE)
    assert output.route in ("validated", "rejected"), output.value[:400]
    decision = Decision.model_validate_json(output.value)
    assert decision.claim_id == event["claim_id"]
    assert [d.sequence for d in decision.diagnoses] == list(range(1, len(event["diagnoses"]) + 1))
    assert {f.rule_id for f in decision.findings} <= set(RULES_BY_ID)


def every_rule_ungated(decider: Decider, event: EncounterEvent) -> list[RuleFinding]:
    """What the ruleset would find if it called every active rule, skipping none."""
    claim = build_claim(event, decider.icd10cm, decider.cpt)
    findings = []
    for active in decider.ruleset.active:
        found = active.rule.check(claim)
        if found is not None:
            findings.append(
                RuleFinding(
                    rule_id=active.rule.rule_id,
                    severity=active.severity or found.severity,
                    message=found.message,
                    citation=active.rule.citation,
                    diagnosis_sequences=found.diagnosis_sequences,
                    procedure_lines=found.procedure_lines,
                    carc=active.rule.carc,
                    rarc=active.rule.rarc,
                )
            )
    return findings


@PROPERTY
@given(event=contract_valid_events())
def test_skipping_rules_by_their_scope_changes_no_finding(
    decider: Decider, event: dict[str, Any]
) -> None:
    parsed = EncounterEvent.model_validate_json(json.dumps(event))
    claim = build_claim(parsed, decider.icd10cm, decider.cpt)
    assert list(decider.ruleset.evaluate(claim)) == every_rule_ungated(decider, parsed)


ENCOUNTER_SCHEMA = json_schemas()["encounter-event"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(event=from_schema(ENCOUNTER_SCHEMA))
def test_schema_valid_events_are_never_internal_errors(
    decider: Decider, event: dict[str, Any]
) -> None:
    output = decider.decide(json.dumps(event).encode(), SOURCE)
    if output.route == "dead_letter":
        letter = DeadLetter.model_validate_json(output.value)
        assert letter.error.kind == "contract_violation", letter.error
    else:
        Decision.model_validate_json(output.value)


def test_generated_claims_reach_every_rule(decider: Decider) -> None:
    """The strategy is worth its name: over a fixed sample, at least three quarters of the
    rules fire (the rest need combinations the case codes rarely draw together)."""
    fired: set[str] = set()

    @settings(
        max_examples=1500,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(event=contract_valid_events())
    def collect(event: dict[str, Any]) -> None:
        output = decider.decide(json.dumps(event).encode(), SOURCE)
        fired.update(f.rule_id for f in output.findings)

    collect()
    missing = set(RULES_BY_ID) - fired
    assert len(missing) <= len(RULES_BY_ID) // 4, sorted(missing)
