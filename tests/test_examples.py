"""The example stream (`schemas/examples/`): every line is decided exactly as `expected.jsonl`
says, the stream covers every rule and setting, and the committed files are what
`generate.py` writes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stream.cli.batch import read_lines
from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE

EXAMPLES = Path(__file__).resolve().parent.parent / "schemas" / "examples"
ENCOUNTERS = EXAMPLES / "encounters.jsonl"
EXPECTED = EXAMPLES / "expected.jsonl"
GENERATOR = EXAMPLES / "generate.py"

RULES = [rule.rule_id for rule in CATALOGUE]
# Rules with an error and a warning branch (catalogue section 3): the stream fires both.
TWO_BRANCH_RULES = [rule.rule_id for rule in CATALOGUE if rule.warning_branches]


def _lines() -> list[bytes]:
    with ENCOUNTERS.open("rb") as handle:
        return list(read_lines(handle))


def _expected() -> list[dict[str, Any]]:
    return [json.loads(row) for row in EXPECTED.read_text("utf-8").splitlines()]


LINES = _lines()
EXPECTED_ROWS = _expected()


def test_stream_is_long_enough_and_matches_its_sidecar() -> None:
    assert len(LINES) >= 200
    assert len(EXPECTED_ROWS) == len(LINES)
    assert [row["line"] for row in EXPECTED_ROWS] == list(range(1, len(LINES) + 1))


@pytest.mark.parametrize(
    ("number", "raw", "expected"),
    [
        pytest.param(n, raw, row, id=f"line-{n:03d}")
        for n, (raw, row) in enumerate(zip(LINES, EXPECTED_ROWS, strict=True), 1)
    ],
)
def test_line_is_decided_as_expected(
    decider: Decider, number: int, raw: bytes, expected: dict[str, Any]
) -> None:
    output = decider.decide(raw, FileSource(file=ENCOUNTERS.name, line=number))
    rule_ids = [finding.rule_id for finding in output.findings]
    assert len(rule_ids) == len(set(rule_ids)), "a rule yields at most one finding per claim"
    found = {finding.rule_id: finding.severity for finding in output.findings}
    assert output.route == expected["route"], [f.message for f in output.findings]
    assert found == expected["findings"], [f.message for f in output.findings]
    assert output.dead_letter_kind == expected["dead_letter_kind"]
    assert output.code_set == expected["code_set"]


def test_the_stream_has_claims_of_every_supported_code_set_year(decider: Decider) -> None:
    years = Counter(row["code_set"] for row in EXPECTED_ROWS if row["code_set"])
    for label in decider.code_set_labels:
        assert years[label] >= (1 if label == "none" else 30), (label, years)


def test_every_rule_fires_somewhere() -> None:
    fired = {rule for row in EXPECTED_ROWS for rule in row["findings"]}
    assert sorted(set(RULES) - fired) == []


def test_two_branch_rules_fire_on_both_branches() -> None:
    fired = {(rule, sev) for row in EXPECTED_ROWS for rule, sev in row["findings"].items()}
    missing = [
        (rule, severity)
        for rule in TWO_BRANCH_RULES
        for severity in ("error", "warning")
        if (rule, severity) not in fired
    ]
    assert missing == []


def test_every_route_is_present() -> None:
    routes = {row["route"] for row in EXPECTED_ROWS}
    assert routes == {"validated", "rejected", "dead_letter"}
    assert any(row["route"] == "validated" and row["findings"] for row in EXPECTED_ROWS)
    clean = sum(1 for row in EXPECTED_ROWS if row["route"] == "validated" and not row["findings"])
    assert clean > len(EXPECTED_ROWS) / 2, "most claims in a realistic stream are coded correctly"


def test_all_three_settings_are_present() -> None:
    settings = set()
    for raw, row in zip(LINES, EXPECTED_ROWS, strict=True):
        if row["route"] != "dead_letter":
            settings.add(json.loads(raw)["setting"])
    assert settings == {"inpatient", "outpatient", "professional"}


def test_inpatient_claims_carry_no_cpt() -> None:
    for raw, row in zip(LINES, EXPECTED_ROWS, strict=True):
        if row["route"] != "dead_letter":
            event = json.loads(raw)
            if event["setting"] == "inpatient":
                assert not event.get("procedures"), event["claim_id"]


def test_dead_letter_kinds_are_present() -> None:
    kinds = {row["dead_letter_kind"] for row in EXPECTED_ROWS if row["dead_letter_kind"]}
    assert {"not_utf8", "invalid_json", "contract_violation"} <= kinds


def test_committed_files_are_what_the_generator_writes() -> None:
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
