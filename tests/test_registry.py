"""The catalogue is every rule its family modules declare: adding a rule is its function
plus its case file (and `make regen`).

A rule declared outside the family modules, a duplicate ID, a rule without a case file, a
case file without a rule, a case file that does not read as cases, a rule that never fires
in its own cases, or a rule still holding the scaffold's TODOs fails here. The case files are
package data (`stream/core/rules/cases/`): the tests, `claims-stage explain` and
`docs/rules.md` read the same files.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

import stream.core.rules
from stream.core.rules import CATALOGUE, FAMILIES, RULES_BY_ID, declared_rules
from stream.core.rules.base import Rule
from stream.core.rules.casebook import CaseFileError, all_cases, cases_of, parse_cases

ROOT = Path(__file__).resolve().parents[1]


def defined_rules() -> dict[str, Rule]:
    """Every `Rule` object at module level in the rules package, by ID."""
    found: dict[str, Rule] = {}
    for module_info in pkgutil.iter_modules(stream.core.rules.__path__):
        module = importlib.import_module(f"stream.core.rules.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, Rule):
                found[value.rule_id] = value
    return found


def fired_severities(rule_id: str) -> set[str]:
    """The severities with which a rule fires in its own case file."""
    return {case.expect[rule_id] for case in cases_of(rule_id) if rule_id in case.expect}


def test_every_defined_rule_is_registered() -> None:
    defined = defined_rules()
    registered = {rule.rule_id: rule for rule in CATALOGUE}
    assert set(defined) == set(registered), set(defined) ^ set(registered)
    for rule_id, rule in defined.items():
        assert registered[rule_id] is rule, f"{rule_id}: another object is registered"


def test_the_catalogue_is_what_the_families_declare_once_each_in_id_order() -> None:
    assert declared_rules(FAMILIES) == CATALOGUE
    doubled = (*FAMILIES, FAMILIES[0])  # a rule seen twice is one rule
    assert declared_rules(doubled) == CATALOGUE
    assert [rule.rule_id for rule in declared_rules(FAMILIES[::-1])] == sorted(RULES_BY_ID)


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.rule_id)
def test_no_rule_is_a_scaffold_left_unwritten(rule: Rule) -> None:
    """`make new-rule` writes TODOs; a rule is done when none is left."""
    written = [rule.title, rule.citation, rule.documentation]
    assert not any("TODO" in text for text in written)
    assert not any("TODO" in str(case) for case in cases_of(rule.rule_id))


def test_rule_ids_are_unique_and_in_order() -> None:
    ids = [rule.rule_id for rule in CATALOGUE]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert ids == sorted(ids)
    assert len(RULES_BY_ID) == len(CATALOGUE)


def test_case_files_and_rules_match_one_to_one() -> None:
    files = set(all_cases())
    assert files == set(RULES_BY_ID), files ^ set(RULES_BY_ID)


def test_a_case_file_with_an_unknown_key_is_refused() -> None:
    """A misspelt field would silently drop a condition from the claim."""
    good = '[[case]]\nname = "n"\nsetting = "outpatient"\ndiagnoses = ["C61"]\nexpect = {}\n'
    assert parse_cases("MET-000", good)[0].diagnoses == ("C61",)
    for broken in (
        good.replace("setting", "settings"),
        good.replace('"outpatient"', '"ambulatory"'),
        good.replace("expect = {}", 'expect = {"MET-005" = "fatal"}'),
        good.replace("[[case]]", "[[cases]]"),
        good + "[case.finding]\nnames = []\n",
    ):
        with pytest.raises(CaseFileError, match=r"MET-000\.toml"):
            parse_cases("MET-000", broken)


def test_the_case_files_are_package_data() -> None:
    """Every case file matches the package data the wheel carries, so `claims-stage
    explain` and the tests read the same files in an installed stage."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"][
        "setuptools"
    ]["package-data"]["stream.core.rules"]
    folder = ROOT / "stream" / "core" / "rules"
    files = [path.relative_to(folder).as_posix() for path in folder.glob("cases/*")]
    assert len(files) == len(RULES_BY_ID)
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in package_data), name


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.rule_id)
def test_every_rule_fires_in_its_cases_at_each_of_its_severities(rule: Rule) -> None:
    expected = {"error", "warning"} if rule.warning_branches else {rule.severity}
    assert fired_severities(rule.rule_id) == expected


def test_the_registry_check_sees_an_unregistered_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream.core.rules import code_validity
    from stream.core.rules.base import rule as declare

    @declare("MET-999", title="t", severity="error", citation="c", carc="16", rarc=None)
    def orphan(claim: object) -> None:
        """Documented.

        ## What it checks
        Nothing.

        ## Why
        A test.
        """

    monkeypatch.setattr(code_validity, "orphan", orphan, raising=False)
    assert "MET-999" in defined_rules()
    assert "MET-999" not in RULES_BY_ID


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.rule_id)
def test_every_rule_has_x12_codes_of_their_shape(rule: Rule) -> None:
    """A claim adjustment reason code is a number; a remark code letters and a number."""
    assert re.fullmatch(r"[1-9]\d{0,2}", rule.carc), rule.carc
    assert rule.rarc is None or re.fullmatch(r"[A-Z]{1,2}\d{1,3}", rule.rarc), rule.rarc
