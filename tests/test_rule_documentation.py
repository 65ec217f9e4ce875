"""A rule's documentation and messages are written from the rule, never retyped.

- `rule()` refuses a docstring that is not documentation in the fixed sections, or names a
  list that does not exist;
- code lists in documents and messages are rendered from the sets the check reads, and
  composed sets are written as their parts; messages name only the codes valid on the
  claim's date, documents date the codes that do not exist in every loaded code set;
- which claims a rule reads is derived from its declared scope.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from stream.core.claim import Claim
from stream.core.codes.codeset import CodeSet
from stream.core.codes.cpt import ProcedureCodes
from stream.core.codes.icd10cm import TRAIT_CODES, Trait
from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE, RULES_BY_ID, Rule
from stream.core.rules.base import Hit, rule
from stream.core.rules.casebook import examples_of
from stream.core.rules.code_lists import DatedListing, plain
from stream.core.rules.conflicts import FEMALE_ONLY
from stream.core.rules.documentation import RuleDocumentationError, listing
from stream.core.rules.procedures import NON_FDG_TRACERS, SUPPORT, SUPRATENTORIAL_TUMOUR

PROSTATE_OR_TESTIS = CodeSet("C61 C62")
A_WORD = "not a list"

DOCUMENTED = """Says what the rule asks.

## What it checks
{PROSTATE_OR_TESTIS} beside {Trait.NODAL_SECONDARY}.

## Why
Because.
"""


def declare(docstring: str, **scope: Any) -> Rule:
    def check(claim: Claim) -> Hit | None:
        return None

    check.__doc__ = docstring
    return rule(
        "MET-900", title="t", severity="warning", citation="c", carc="16", rarc=None, **scope
    )(check)


def test_a_documented_rule_renders_its_lists_from_the_sets() -> None:
    declared = declare(DOCUMENTED)
    assert declared.summary == "Says what the rule asks."
    assert declared.sections() == {"What it checks": "C61, C62 beside C77.", "Why": "Because."}


@pytest.mark.parametrize(
    ("docstring", "says"),
    [
        ("Says what it asks.", "needs the sections"),
        (DOCUMENTED.replace("## Why\nBecause.\n", ""), "needs the sections"),
        (DOCUMENTED.replace("## Why", "## Rationale"), "'Rationale'"),
        (DOCUMENTED + "\n## Example\nC61.\n", "examples come from its case file"),
        (
            "Says.\n\n## Why\nBecause.\n\n## What it checks\nC61.\n",
            "in that order",
        ),
        (DOCUMENTED.replace("Because.", ""), "a section of the docstring is empty"),
        (DOCUMENTED.replace("Says what the rule asks.", ""), "opens with a sentence"),
        (DOCUMENTED.replace("PROSTATE_OR_TESTIS", "PROSTATE_OR_OVARY"), "{PROSTATE_OR_OVARY}"),
        (DOCUMENTED.replace("PROSTATE_OR_TESTIS", "A_WORD"), "{A_WORD} is no list"),
        (DOCUMENTED.replace("Trait.NODAL_SECONDARY", "Trait.NODES"), "{Trait.NODES}"),
    ],
)
def test_rule_refuses_a_docstring_that_is_not_its_documentation(docstring: str, says: str) -> None:
    with pytest.raises(RuleDocumentationError, match="MET-900") as refused:
        declare(docstring)
    assert says in str(refused.value)


def test_scope_is_derived_from_the_declaration() -> None:
    assert declare(DOCUMENTED).scope == "every claim"
    in_set = declare(DOCUMENTED, applies_to=PROSTATE_OR_TESTIS).scope
    assert in_set.endswith("with a valid code in C61, C62")
    traits = declare(DOCUMENTED, applies_to=Trait.SECONDARY | Trait.SECONDARY_NET).scope
    assert traits.endswith("a family: secondary (C77-C79); secondary net (C7B)")
    assert "outpatient and professional" in declare(DOCUMENTED, reads_procedures=True).scope
    assert "outside the loaded" in declare(DOCUMENTED, judges_dates=True).scope


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.rule_id)
def test_every_rule_names_the_claims_it_reads_from_its_declaration(rule: Rule) -> None:
    if isinstance(rule.applies_to, CodeSet):
        assert str(rule.applies_to) in rule.scope
    elif isinstance(rule.applies_to, int):
        for bit, codes in TRAIT_CODES.items():
            assert (f"({codes})" in rule.scope) == (bit & rule.applies_to == bit), bit
    assert ("outpatient and professional" in rule.scope) == rule.reads_procedures
    assert ("outside the loaded" in rule.scope) == rule.judges_dates


# --- code sets: composed, written from themselves -----------------------------------------


def test_a_code_set_writes_itself_as_prose_does() -> None:
    assert str(CodeSet("C71.0-C71.5 C71.8 M84.5- T86.-")) == "C71.0-C71.5, C71.8, M84.5-, T86.-"
    assert str(CodeSet("Z51 !Z51.0 !Z51.11")) == "Z51 other than Z51.0, Z51.11"
    assert str(CodeSet("C50.#1")) == "C50.x1"
    fracture, transplant = CodeSet("M84.5-"), CodeSet("T86.-")
    assert "M84.521A" in fracture
    assert "M84.4" not in fracture
    assert "T86" in transplant
    assert "T86.19" in transplant
    assert "T87.0" not in transplant


def test_sets_compose_and_remember_their_parts() -> None:
    primary, history = CodeSet("C7A"), CodeSet("Z85.07 Z85.89")
    either = primary | CodeSet("C25.4") | history
    assert str(either) == "C7A, C25.4, Z85.07, Z85.89"
    assert ["C7A.012" in either, "C25.4" in either, "Z85.89" in either] == [True] * 3
    assert "C25.0" not in either
    assert either.parts[0] is primary
    assert either.parts[-1] is history
    other = CodeSet("Z51") - CodeSet("Z51.0 Z51.11")
    assert str(other) == "Z51 other than Z51.0, Z51.11"
    assert "Z51.6" in other
    assert "Z51.11" not in other
    with pytest.raises(ValueError, match="exclusions"):
        _ = other | primary
    with pytest.raises(ValueError, match="exclusions"):
        _ = primary - other


def test_documents_date_the_codes_that_are_not_in_every_code_set(decider: Decider) -> None:
    dated = DatedListing(decider.icd10cm.calendar, decider.cpt)
    assert "C83.390 (from 2024-10-01)" in dated(SUPRATENTORIAL_TUMOUR)
    assert "C71.8, C71.9" in dated(SUPRATENTORIAL_TUMOUR)  # valid every year: no date
    assert "Z85.4A (from 2025-10-01)" in dated(FEMALE_ONLY)
    assert "A9616 (from 2025-10-01)" in dated(NON_FDG_TRACERS)
    lung = next(support for support in SUPPORT if support.name == "lung biopsy")
    assert "32405 (deleted 2021-01-01)" in lung.document(dated)
    assert dated(ProcedureCodes("10021-35999")) == "10021-35999"


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.rule_id)
def test_every_code_a_rule_lists_exists_in_a_loaded_code_set(decider: Decider, rule: Rule) -> None:
    """A mistyped code in a rule's set would match nothing and document nonsense."""
    dated = DatedListing(decider.icd10cm.calendar, decider.cpt)
    assert rule.text is not None
    written = [dated(codes) for codes in rule.code_sets]
    written += [listing(value, dated) or "" for value in rule.text.placeholders.values()]
    for text in written:
        assert "in no loaded code set" not in text, text


def _met030_error(decider: Decider, day: str) -> str:
    case = examples_of("MET-030")["violating"].model_copy(
        update={"date_of_service": dt.date.fromisoformat(day)}
    )
    output = decider.decide(case.encoded(), FileSource(file="t", line=1))
    [finding] = [f for f in output.findings if f.rule_id == "MET-030"]
    assert finding.severity == "error"
    return finding.message


def test_a_message_names_only_the_codes_valid_on_the_claims_date(decider: Decider) -> None:
    """C83.390 (primary CNS lymphoma) supports 61510 from 2024-10-01, when it exists."""
    before, after = _met030_error(decider, "2024-09-30"), _met030_error(decider, "2024-10-01")
    assert "C83.390" not in before
    assert "C83.390" in after
    for message in (before, after):
        assert "C71.0-C71.5, C71.8, C71.9, C79.31, C79.32" in message
    assert plain(SUPRATENTORIAL_TUMOUR) in after  # every item of the set, none retyped


def test_the_met030_message_lists_every_code_of_its_supporting_set(decider: Decider) -> None:
    message = _met030_error(decider, "2026-05-15")
    for item in SUPRATENTORIAL_TUMOUR.included:
        assert item in message
    assert RULES_BY_ID["MET-030"].severity == "error"
