"""Adding a rule takes three touches: its function, its case file and `make regen`.

In a copy of the project, `tools/new_rule.py` (`make new-rule`) writes the stubs of a
throwaway rule, the next ID after the catalogue's last (MET-043 today); the test writes its check and its cases over them and runs
`tools/regen.py` (`make regen`), whose snapshot step is the run of every rule case's test on
the copy (it stops the regeneration when one fails). Then the other tests that depend on the
catalogue (the registry, the example stream, the documents and their links, the ruleset
version, the architecture) pass on the copy, nothing else having been touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stream.core.rules import CATALOGUE, RULESET_VERSION
from stream.core.rules.fingerprint import next_version

ROOT = Path(__file__).resolve().parents[1]
NEW = f"MET-{int(CATALOGUE[-1].rule_id.removeprefix('MET-')) + 1:03d}"
"""The throwaway rule's ID: new whatever rules the catalogue has gained."""
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "var", "out", "*.egg-info", "__pycache__", "*_cache", ".hypothesis"
)
RULE_DEPENDENT_TESTS = (  # beside tests/test_rule_cases.py, which `make regen` runs
    "tests/test_registry.py",
    "tests/test_examples.py",
    "tests/test_docs.py",
    "tests/test_ruleset_version.py",
    "tests/test_architecture.py",
)

CHECK = '''

TOBACCO_COUNSELLING = CodeSet("Z71.6")
NICOTINE_DEPENDENCE = CodeSet("F17.2")


@rule(
    "{NEW}",
    title="Tobacco-use counselling needs the tobacco use coded",
    severity="warning",
    citation="ICD-10-CM Tabular Z71.6 'use additional code for nicotine dependence'",
    carc="16",
    rarc="M76",
    applies_to=TOBACCO_COUNSELLING,
)
def met043_counselling_needs_tobacco_use(claim: Claim) -> Hit | None:
    """Counselling for tobacco use is coded with the tobacco use it treats.

    ## What it checks
    A claim with {TOBACCO_COUNSELLING} and no code of {NICOTINE_DEPENDENCE} warns.

    ## Why
    The Tabular asks for an additional code for the nicotine dependence at Z71.6.
    """
    counselling = claim.in_set(TOBACCO_COUNSELLING)
    if not counselling or claim.in_set(NICOTINE_DEPENDENCE):
        return None
    return hit("warning", f"{codes_of(counselling)} without nicotine dependence coded", counselling)
'''

CASES = """\
[[case]]
name = "catalogue violating"
setting = "outpatient"
diagnoses = ["C34.11", "Z71.6"]
expect = {"{NEW}" = "warning"}

[case.finding]
diagnoses = [2]
names = ["Z71.6"]

[[case]]
name = "catalogue compliant"
setting = "outpatient"
diagnoses = ["C34.11", "Z71.6", "F17.210"]
expect = {}
"""


def run(copy: Path, *command: str) -> str:
    """Run a command of the copy with the copy's package; its output, or fail with it."""
    environment = {**os.environ, "PYTHONPATH": str(copy)}
    done = subprocess.run(
        [sys.executable, *command],
        cwd=copy,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def write_the_rule(copy: Path) -> None:
    """The rule's check and cases, over the stubs the scaffold wrote."""
    module = copy / "stream" / "core" / "rules" / "conflicts.py"
    text = module.read_text("utf-8")
    stub = text.index(f'\n\n@rule(\n    "{NEW}"')
    assert "TODO" in text[stub:], "the scaffold writes a stub to fill in"
    module.write_text(text[:stub] + CHECK.replace("{NEW}", NEW), "utf-8")
    cases = copy / "stream" / "core" / "rules" / "cases" / f"{NEW}.toml"
    assert "TODO" in cases.read_text("utf-8")
    cases.write_text(CASES.replace("{NEW}", NEW), "utf-8")


def test_a_new_rule_is_its_function_its_case_file_and_make_regen(tmp_path: Path) -> None:
    assert CATALOGUE[-1].rule_id < NEW, "the throwaway rule must be new"
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=NOT_COPIED)

    run(copy, "tools/new_rule.py", NEW, "conflicts", "counselling_needs_tobacco_use")
    registered = f"from stream.core.rules import RULES_BY_ID; print(RULES_BY_ID['{NEW}'].title)"
    assert run(copy, "-c", registered).startswith("TODO"), "the stub is in the catalogue"
    write_the_rule(copy)
    run(copy, "tools/regen.py")

    ruleset = (copy / "stream" / "core" / "rules" / "ruleset.py").read_text("utf-8")
    assert f'RULESET_VERSION = "{next_version(RULESET_VERSION)}"' in ruleset
    assert f"<!-- rule-range -->MET-001 … {NEW}<" in (copy / "README.md").read_text("utf-8")
    assert f"<b>{NEW}</b>" in (copy / "docs" / "rules.md").read_text("utf-8")
    expected = (copy / "schemas" / "examples" / "expected.jsonl").read_text("utf-8")
    findings = [json.loads(line)["findings"] for line in expected.splitlines()]
    assert {NEW: "warning"} in findings
    snapshot = (copy / "tests" / "__snapshots__" / "test_rule_cases.ambr").read_text("utf-8")
    assert f"{NEW}: catalogue violating" in snapshot

    report = run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", *RULE_DEPENDENT_TESTS)
    assert " passed" in report, report
    assert "failed" not in report, report
    assert "skipped" not in report, report


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["MET-43", "conflicts"], "a rule ID reads MET-0xx"),
        (["MET-001", "conflicts"], "MET-001 exists already"),
        ([NEW, "gossip"], "no family 'gossip'; the families are: code_validity"),
        ([NEW, "conflicts", "Bad-Name"], "a function name is lower-case words"),
    ],
)
def test_the_scaffold_refuses_what_it_cannot_write(arguments: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "new_rule.py"), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert says in done.stderr
