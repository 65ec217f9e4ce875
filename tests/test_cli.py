"""The command line: batch check, rule listings, schema export."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stream.cli.listing import (
    REFERENCE_START,
    TABLE_END,
    TABLE_START,
    markdown_reference,
    markdown_table,
    replace_generated_sections,
)
from stream.cli.main import app
from stream.core.codes.releases import LoadedRelease
from stream.core.contracts import MAX_RECORD_BYTES, DeadLetter, Decision
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE, RULESET_VERSION
from stream.core.rules.config import Policies
from stream.core.rules.documentation import SECTIONS
from tests.claims import encode, encounter
from tests.reference import SessionReferenceData, StageRunner

ROOT = Path(__file__).resolve().parents[1]
runner = StageRunner()


def good(n: int) -> bytes:
    return encode(
        encounter(["C34.11", "C79.51"], primary_status="active", event_id=f"e{n}", claim_id=f"c{n}")
    )


def _event(**changes: Any) -> bytes:
    event = encounter(["C34.11", "C79.51"], ["71260"], event_id="bad", claim_id="CLM-BAD")
    event.update(changes)
    return encode(event)


BAD_LINES: dict[str, tuple[bytes, str]] = {
    "not utf-8": (b'{"schema_version": 1, "event_id": "\xff\xfe"}', "not_utf8"),
    "not json": (b"this is not json", "invalid_json"),
    "truncated": (b'{"schema_version": 1, "event_id": "e', "invalid_json"),
    "not an object": (b"[1, 2, 3]", "contract_violation"),
    "missing field": (
        _event(claim_id=None).replace(b'"claim_id": null, ', b""),
        "contract_violation",
    ),
    "unknown field": (_event(diagnosis=[]), "contract_violation"),
    "sequence gap": (
        _event(diagnoses=[{"sequence": 1, "code": "C34.11"}, {"sequence": 3, "code": "C79.51"}]),
        "contract_violation",
    ),
    "dangling pointer": (
        _event(procedures=[{"line": 1, "code": "71260", "diagnosis_pointers": [9]}]),
        "contract_violation",
    ),
    "impossible date": (_event(date_of_service="2026-02-30"), "contract_violation"),
    "wrong schema version": (_event(schema_version=2), "contract_violation"),
    "3 MB line": (_event(payer_id="x" * 3_000_000), "too_large"),
}


def test_check_gives_one_dead_letter_per_bad_line_and_decides_the_rest(tmp_path: Path) -> None:
    lines: list[bytes] = []
    expected_kinds: dict[int, str] = {}
    for n, (raw, kind) in enumerate(BAD_LINES.values()):
        lines.append(good(n))
        lines.append(raw)
        expected_kinds[len(lines)] = kind
    lines.append(good(99))
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")

    result = runner.invoke(app, ["check", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output

    outputs = {
        name: (tmp_path / "out" / f"{name}.jsonl").read_bytes().splitlines()
        for name in ("validated", "rejected", "dead-letter")
    }
    assert len(outputs["validated"]) == len(BAD_LINES) + 1
    assert outputs["rejected"] == []
    letters = [DeadLetter.model_validate_json(line) for line in outputs["dead-letter"]]
    assert {letter.source.line: letter.error.kind for letter in letters} == expected_kinds  # type: ignore[union-attr]
    for letter in letters:
        raw = lines[letter.source.line - 1]  # type: ignore[union-attr]
        kept = (
            letter.raw_value.encode()
            if letter.raw_value_encoding == "utf-8"
            else base64.b64decode(letter.raw_value)
        )
        assert kept == raw
        assert len(letter.error.message) > 20
    decided = [Decision.model_validate_json(line) for line in outputs["validated"]]
    assert {d.source.line for d in decided} == set(range(1, len(lines) + 1, 2))  # type: ignore[union-attr]
    assert "lines decided" in result.output
    assert "contract_violation 7" in result.output


def test_check_reads_stdin(tmp_path: Path) -> None:
    data = good(1) + b"\n" + encode(encounter(["C79.51"])) + b"\n"
    result = runner.invoke(app, ["check", "-", "--out", str(tmp_path)], input=data)
    assert result.exit_code == 0, result.output
    rejected = (tmp_path / "rejected.jsonl").read_bytes().splitlines()
    assert [json.loads(r)["source"] for r in rejected] == [{"file": "-", "line": 2}]
    assert "MET-005" in result.output


def test_check_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["check", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    source = tmp_path / "in.jsonl"
    source.write_bytes(good(1))
    unwritable = runner.invoke(app, ["check", str(source), "--out", str(blocker / "out")])
    assert unwritable.exit_code == 2
    assert "cannot write" in unwritable.output
    no_out = runner.invoke(app, ["check", str(source)])
    assert no_out.exit_code == 2


def test_check_with_a_rules_configuration(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text('[rules.MET-005]\nseverity = "warning"\n')
    source = tmp_path / "in.jsonl"
    source.write_bytes(encode(encounter(["C79.51"])) + b"\n")
    result = runner.invoke(
        app, ["check", str(source), "--out", str(tmp_path / "o"), "--rules-config", str(config)]
    )
    assert result.exit_code == 0, result.output
    decision = json.loads((tmp_path / "o" / "validated.jsonl").read_bytes())
    assert decision["findings"][0]["severity"] == "warning"
    assert decision["ruleset_version"].startswith(f"{RULESET_VERSION}+cfg.")


def test_check_refuses_a_broken_rules_configuration(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text("[rules.MET-999]\nenabled = false\n")
    source = tmp_path / "in.jsonl"
    source.write_bytes(good(1))
    result = runner.invoke(
        app, ["check", str(source), "--out", str(tmp_path), "--rules-config", str(config)]
    )
    assert result.exit_code == 2
    assert "MET-999" in result.output


def test_met042_cannot_be_disabled(tmp_path: Path) -> None:
    """A claim dated outside the loaded code sets must never pass unjudged."""
    config = tmp_path / "rules.toml"
    config.write_text("[rules.MET-042]\nenabled = false\n")
    source = tmp_path / "in.jsonl"
    source.write_bytes(good(1))
    result = runner.invoke(
        app, ["check", str(source), "--out", str(tmp_path), "--rules-config", str(config)]
    )
    assert result.exit_code == 2
    assert "MET-042 cannot be disabled" in result.output


def test_rules_lists_every_rule() -> None:
    result = runner.invoke(app, ["rules"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for rule in CATALOGUE:
        assert rule.rule_id in result.output


def test_explain_prints_the_rule_documentation_in_its_sections() -> None:
    # A narrow width on purpose: what a pipe receives is whole lines, never cut or folded.
    result = runner.invoke(app, ["explain", "met-5"], env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "MET-005 A secondary malignancy code requires a primary-site indicator" in text
    assert "X12: CARC 16, RARC M76" in text
    headings = ["What it checks", "Why", "Which claims it reads"]
    headings += ["Example that fails", "Example that passes"]
    positions = [text.index(heading) for heading in headings]
    assert positions == sorted(positions)
    # the scope is derived from the rule's declaration, the codes from its sets
    assert "with a valid code of a family: secondary (C77-C79)" in text
    # the failing example is decided: its code, its description and the stage's message
    assert "`C79.51` Secondary malignant neoplasm of bone" in text
    finding = next(line for line in text.splitlines() if "MET-005** error" in line)
    assert finding.endswith(
        "MET-005** error (diagnoses 1): C79.51 (secondary malignant neoplasm of bone) has no "
        "primary site: code the active primary, a Z85 history code, or C80.1"
    ), finding
    assert "The stage finds nothing: the claim is validated." in text
    assert runner.invoke(app, ["explain", "MET-099"]).exit_code == 2


def _code(*args: str) -> Any:
    return runner.invoke(app, ["code", *args], env={"COLUMNS": "200"})


def test_code_lookup() -> None:
    result = _code("c7951", "--on", "2026-05-15")
    assert result.exit_code == 0
    assert "C79.51" in result.output
    assert "secondary_malignancy" in result.output
    assert _code("10006", "--on", "2026-05-15").exit_code == 0
    assert _code("Q99999").exit_code == 1


def test_code_on_either_side_of_the_fy2027_boundary() -> None:
    before = _code("C79.83", "--on", "2026-09-30")
    assert before.exit_code == 1
    assert "not valid on that date" in before.output
    assert "it takes effect on 2026-10-01 (FY2027)" in before.output
    after = _code("C79.83", "--on", "2026-10-01")
    assert after.exit_code == 0, after.output
    assert "(ICD-10-CM FY2027): valid on that date, billable" in after.output
    for result in (before, after):
        # no description in the bundled tables: say so, and describe it by its parent
        assert "No description in the bundled ICD-10-CM 2026-04-01 tables" in result.output
        assert "C79.8, Secondary malignant neoplasm of other specified sites" in result.output


def test_code_on_a_split_and_outside_the_loaded_code_sets() -> None:
    split = _code("C86.0", "--on", "2024-10-01")
    assert "C86.0 was split on 2024-10-01: use C86.00 or C86.01" in split.output
    assert "billable on that date" not in split.output
    assert _code("C86.0", "--on", "2024-09-30").exit_code == 0
    # no cliff: FY2027 is in force after the built-in masters end, through 2027-09-30
    april = _code("C34.11", "--on", "2027-04-01")
    assert april.exit_code == 0
    assert "on 2027-04-01 (ICD-10-CM FY2027): valid on that date, billable" in april.output
    assert "no loaded ICD-10-CM code set covers" not in april.output
    late = _code("C34.11", "--on", "2027-10-05")
    assert late.exit_code == 0  # valid in the nearest set, which judges the date
    assert "no loaded ICD-10-CM code set covers that date" in late.output
    assert "judged by FY2027, the nearest, with a MET-042 warning" in late.output
    assert _code("A9616", "--on", "2025-09-30").exit_code == 1
    assert "active from 2025-10-01" in _code("A9616", "--on", "2025-10-01").output


def test_code_with_a_bad_date_is_a_usage_error() -> None:
    result = runner.invoke(app, ["code", "C61", "--on", "yesterday"])
    assert result.exit_code == 2
    assert "not a date" in result.output


def test_schemas_on_disk_match_the_models(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schemas", "--out", str(ROOT / "schemas"), "--check"])
    assert result.exit_code == 0, "schemas/ drifted from the contracts: run `make schemas`"
    (tmp_path / "decision.schema.json").write_text("{}")
    drifted = runner.invoke(app, ["schemas", "--out", str(tmp_path), "--check"])
    assert drifted.exit_code == 1


def test_generated_sections_follow_the_registry() -> None:
    stale = f"x <!-- rule-range -->MET-001 … MET-007<!-- /rule-range --> y\n{TABLE_START}\nold\n{TABLE_END}\n"
    fresh = replace_generated_sections(stale)
    assert f"{CATALOGUE[0].rule_id} … {CATALOGUE[-1].rule_id}" in fresh
    assert markdown_table() in fresh
    assert "old" not in fresh


def test_update_rewrites_the_generated_parts_of_every_file_named(tmp_path: Path) -> None:
    page = tmp_path / "rules.md"
    page.write_text(f"# Rules\n{TABLE_START}\nold\n{TABLE_END}\n")
    front = tmp_path / "README.md"
    front.write_text("Rules <!-- rule-range -->old<!-- /rule-range -->, the rest as it is.\n")
    result = runner.invoke(
        app, ["rules", "--markdown", "--update", str(page), "--update", str(front)]
    )
    assert result.exit_code == 0, result.output
    assert page.read_text() == f"# Rules\n{TABLE_START}\n{markdown_table()}\n{TABLE_END}\n"
    first, last = CATALOGUE[0].rule_id, CATALOGUE[-1].rule_id
    assert front.read_text() == (
        f"Rules <!-- rule-range -->{first} … {last}<!-- /rule-range -->, the rest as it is.\n"
    )


def test_update_of_a_file_without_markers_is_a_usage_error(tmp_path: Path) -> None:
    document = tmp_path / "notes.md"
    document.write_text("# notes\n")
    result = runner.invoke(app, ["rules", "--update", str(document)])
    assert result.exit_code == 2
    assert "no generated rule table" in result.output
    assert document.read_text() == "# notes\n"


def test_an_error_is_one_line_whatever_the_path_length(tmp_path: Path) -> None:
    """Written to a pipe, an error is not folded at a width: a log or a test reads it whole."""
    deep = tmp_path / ("a-long-folder-name-" * 4) / ("another-long-folder-" * 4)
    deep.mkdir(parents=True)
    document = deep / "notes.md"
    document.write_text("# notes\n")
    result = runner.invoke(app, ["rules", "--update", str(document)], env={"COLUMNS": "40"})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert str(document) in lines[0]
    assert "no generated rule table" in lines[0]


def test_update_of_a_rule_reference_without_its_end_is_a_usage_error(tmp_path: Path) -> None:
    document = tmp_path / "notes.md"
    text = f"# notes\n{TABLE_START}\n{TABLE_END}\n{REFERENCE_START}\nold\n"
    document.write_text(text)
    result = runner.invoke(app, ["rules", "--update", str(document)])
    assert result.exit_code == 2
    assert "no generated rule reference" in result.output
    assert document.read_text() == text


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda r: r.rule_id)
def test_every_rule_is_documented_in_the_fixed_sections(rule: Any) -> None:
    assert rule.summary
    sections = rule.sections()
    assert list(sections) == list(SECTIONS)
    assert all(body.strip() for body in sections.values())
    assert "{" not in rule.documentation, "a placeholder was left unrendered"
    assert rule.citation
    assert rule.carc


def test_the_rule_reference_has_one_block_a_rule_with_both_examples(decider: Decider) -> None:
    reference = markdown_reference(decider)
    assert reference.count("<details>") == len(CATALOGUE)
    for heading in ("Which claims it reads", "Example that fails", "Example that passes"):
        assert reference.count(f"#### {heading}") == len(CATALOGUE)


def test_invalid_settings_are_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_WEB_PORT", "not-a-port")
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 2
    assert "CLAIMS_WEB_PORT" in result.output


class CountingReferenceData(SessionReferenceData):
    def __init__(self) -> None:
        self.deciders = 0

    def decider(
        self,
        policies: Policies,
        max_record_bytes: int = MAX_RECORD_BYTES,
        releases: Sequence[LoadedRelease] = (),
    ) -> Decider:
        self.deciders += 1
        return super().decider(policies, max_record_bytes, releases)


def test_a_command_decides_with_the_reference_data_it_is_given(tmp_path: Path) -> None:
    source = tmp_path / "claims.jsonl"
    source.write_bytes(good(1) + b"\n")
    given = CountingReferenceData()
    result = runner.invoke(app, ["check", str(source), "--out", str(tmp_path)], obj=given)
    assert result.exit_code == 0, result.output
    assert given.deciders == 1
