"""The metastatic-coding rule catalogue: every rule its family modules declare, in ID order.

A rule is declared once, with `@rule("MET-0xx", ...)` over its check in the module of its
family (`FAMILIES`); the catalogue is gathered from those modules, so a new rule needs no
registration of its own. Every listing of rules (`docs/rules.md`, `claims-stage rules`,
`claims-stage explain`) is generated from `CATALOGUE`; `RULESET_VERSION` is written by
`make regen` when the catalogue's content changes (`stream.core.rules.fingerprint`).
"""

from __future__ import annotations

from types import ModuleType

from stream.core.rules import (
    code_validity,
    conflicts,
    haematology,
    history,
    manifestations,
    primary_and_secondary,
    procedures,
    sequencing,
    specificity,
    therapy_encounters,
)
from stream.core.rules.base import Hit, Rule
from stream.core.rules.ruleset import RULESET_VERSION

FAMILIES: tuple[ModuleType, ...] = (
    code_validity,
    primary_and_secondary,
    history,
    sequencing,
    therapy_encounters,
    manifestations,
    haematology,
    specificity,
    procedures,
    conflicts,
)
"""The modules that declare rules, one a family of the catalogue. A new family module is
listed here (`tests/test_registry.py` fails on a rule declared anywhere else)."""


def declared_rules(modules: tuple[ModuleType, ...]) -> tuple[Rule, ...]:
    """Every rule the modules declare at module level, once each, in ID order."""
    found = {id(value): value for module in modules for value in vars(module).values()}
    rules = [value for value in found.values() if isinstance(value, Rule)]
    return tuple(sorted(rules, key=lambda declared: declared.rule_id))


CATALOGUE: tuple[Rule, ...] = declared_rules(FAMILIES)

RULES_BY_ID: dict[str, Rule] = {r.rule_id: r for r in CATALOGUE}

RULE_ID_RANGE = f"{CATALOGUE[0].rule_id}..{CATALOGUE[-1].rule_id}"
"""`MET-001..MET-0nn`, for messages and documents: derived, never typed."""

__all__ = [
    "CATALOGUE",
    "FAMILIES",
    "RULESET_VERSION",
    "RULES_BY_ID",
    "RULE_ID_RANGE",
    "Hit",
    "Rule",
    "declared_rules",
]
