"""The code index is an object the stage builds from the code sets its rules declare, and
rule knowledge (MET-010's severities) lives in the rules, not in the codes layer."""

from __future__ import annotations

import csv
import importlib
import pkgutil
from importlib import resources
from types import ModuleType

import pytest

import stream.core.rules
from stream.core.codes.codeset import CodeIndex, CodeSet
from stream.core.codes.icd10cm import SiteFamily
from stream.core.decision import Decider, stage_code_index
from stream.core.rules import CATALOGUE, history
from stream.core.rules.base import _code_sets_in
from stream.core.rules.config import Policies


def rule_modules() -> list[ModuleType]:
    """Every module of the rules package, the shared code lists included."""
    return [
        importlib.import_module(f"stream.core.rules.{info.name}")
        for info in pkgutil.iter_modules(stream.core.rules.__path__)
    ]


def test_every_code_set_a_rule_module_holds_is_declared_by_a_rule() -> None:
    """A set no rule declares would get no bit and be answered code by code: none may. A
    set that only names a part of a composed set (`NET_PRIMARY | ENDOCRINE_PANCREAS`) is
    asked nothing itself."""
    declared = {id(codes) for rule in CATALOGUE for codes in rule.code_sets}
    parts = {id(part) for rule in CATALOGUE for codes in rule.code_sets for part in codes.parts}
    for module in rule_modules():
        for name, value in vars(module).items():
            for codes in _code_sets_in(value, depth=3):
                assert id(codes) in declared | parts, f"{module.__name__}.{name}: {codes!r}"


def test_rules_declare_the_sets_they_read() -> None:
    by_id = {rule.rule_id: rule for rule in CATALOGUE}
    specs = {c.spec for c in by_id["MET-037"].code_sets}  # a dict of sets
    assert {"C79.81", "C78.5", "C79.51"} <= specs
    assert "C61" in {c.spec for c in by_id["MET-031"].code_sets}  # inside a comprehension
    assert any(c.spec.startswith("C22 C24") for c in by_id["MET-032"].code_sets)  # nested
    assert by_id["MET-001"].code_sets == ()


def test_the_index_gives_one_bit_per_distinct_spec() -> None:
    first, same, other = CodeSet("C78.5"), CodeSet("C78.5"), CodeSet("C79.51")
    index = CodeIndex([first, same, other])
    assert index.bit(first) == index.bit(same) != index.bit(other)
    assert index.memberships("C78.5") == index.bit(first)
    assert index.memberships("C79.51") == index.bit(other)
    assert index.memberships("C61") == 0
    with pytest.raises(KeyError, match="not in the code index"):
        index.bit(CodeSet("C61"))


def test_two_stages_build_their_own_indexes() -> None:
    """No process-wide state: an index made later is as complete as the first."""
    first, second = stage_code_index(), stage_code_index()
    assert first is not second
    assert first.bits.keys() == second.bits.keys()
    late = CodeSet("C18")  # made after the first lookups
    assert CodeIndex([late]).memberships("C18.7")


def test_a_stage_refuses_rules_whose_sets_its_index_lacks(decider: Decider) -> None:
    catalog = decider.icd10cm
    original = catalog.index
    try:
        catalog.index = CodeIndex([])
        with pytest.raises(ValueError, match="not in the code index"):
            Decider(Policies(), icd10cm=catalog)
    finally:
        catalog.index = original


def test_met010_severity_is_the_rules_knowledge() -> None:
    assert "met010_severity" not in SiteFamily.__slots__
    text = resources.files("stream.core.codes").joinpath("data/site_families.csv")
    rows = list(csv.DictReader(text.read_text("utf-8").splitlines()))
    assert list(rows[0]) == ["family", "active_primary", "personal_history"]
    names = {row["family"] for row in rows}
    warning = history.PAIRED_OR_MULTICENTRIC
    assert warning <= names
    assert len(warning) == 16
    assert len(names - warning) == 35
