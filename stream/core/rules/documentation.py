"""A rule's documentation is its docstring, in fixed sections, with code lists from its sets.

The docstring of a rule's check reads:

    One or two sentences: what the rule asks of a claim.

    ## What it checks
    The exact condition, branch by branch. A list the check reads is written as a
    placeholder, never typed: `{SUPRATENTORIAL_TUMOUR}` (a code set of the rule's module)
    or `{Trait.LYMPHOMA}` (a code family of the catalogue).

    ## Why
    The guideline, edit or policy behind it, and why its severity is what it is.

A placeholder names a module-level value of the rule's module: a code set (`CodeSet`,
`ProcedureCodes`), words the check matches (a tuple or frozenset of strings), a mapping of
names to code sets, a tuple of those, or an object that documents itself
(`document(show) -> str`). `rule()` refuses a docstring that lacks a section, adds
another, or names a placeholder that is none of these.

The other sections of a rule's documentation are derived, never written: which claims it
reads (from its declared scope) and its two examples, the one that fails and the one that
passes (from its case file, `stream.core.rules.casebook`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stream.core.codes.codeset import CodeSet
from stream.core.codes.cpt import ProcedureCodes
from stream.core.codes.icd10cm import TRAIT_CODES, Trait
from stream.core.rules.code_lists import CodeList, plain

SECTIONS = ("What it checks", "Why")
_HEADING = re.compile(r"^## (.*)$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Z_][A-Z0-9_]*)?)\}")
_TRAIT = "Trait."


class RuleDocumentationError(TypeError):
    """A rule whose docstring is not its documentation in the fixed sections."""


@runtime_checkable
class SelfDocumented(Protocol):
    """Data of a rule that writes itself out (MET-032's table of supporting diagnoses)."""

    def document(self, show: Callable[[CodeList], str]) -> str: ...


def listing(value: object, show: Callable[[CodeList], str] = plain) -> str | None:
    """A placeholder's value written out; None for a value that is no list a rule reads."""
    if isinstance(value, CodeSet | ProcedureCodes):
        return show(value)
    if isinstance(value, SelfDocumented):
        return value.document(show)
    if isinstance(value, tuple | frozenset) and value and all(isinstance(v, str) for v in value):
        return ", ".join(sorted(value) if isinstance(value, frozenset) else value)
    if isinstance(value, Mapping) and value:
        parts = {name: listing(item, show) for name, item in value.items()}
        if all(parts.values()):
            return "; ".join(f"{name} {text}" for name, text in parts.items())
    elif isinstance(value, tuple) and value:
        items = [listing(item, show) for item in value]
        if all(items):
            return "; ".join(text for text in items if text)
    return None


@dataclass(frozen=True, slots=True)
class RuleText:
    """A rule's docstring, split into its sections; code lists still placeholders."""

    summary: str
    checks: str
    why: str
    placeholders: Mapping[str, object]
    """Each placeholder of the text and the list it stands for."""

    def render(self, text: str, show: Callable[[CodeList], str] = plain) -> str:
        """One section's text with its lists written out (code lists by `show`)."""
        written = {name: listing(value, show) for name, value in self.placeholders.items()}
        return _PLACEHOLDER.sub(lambda found: written[found.group(1)] or "", text)


def parse_docstring(
    rule_id: str, docstring: str | None, namespace: Mapping[str, object]
) -> RuleText:
    """Split a check's docstring into its sections; `namespace` resolves its placeholders."""
    text = inspect.cleandoc(docstring or "")
    pieces = _HEADING.split(text)
    summary, headings, bodies = pieces[0].strip(), pieces[1::2], pieces[2::2]
    if not summary:
        raise RuleDocumentationError(
            f"{rule_id}: the docstring opens with a sentence saying what the rule asks"
        )
    if tuple(h.strip() for h in headings) != SECTIONS:
        wanted = ", ".join(f"'## {s}'" for s in SECTIONS)
        raise RuleDocumentationError(
            f"{rule_id}: the docstring needs the sections {wanted}, in that order, and no "
            f"other (found {', '.join(repr(h) for h in headings) or 'none'}); its examples "
            "come from its case file"
        )
    checks, why = (body.strip() for body in bodies)
    if not checks or not why:
        raise RuleDocumentationError(f"{rule_id}: a section of the docstring is empty")
    names = {name for part in (summary, checks, why) for name in _PLACEHOLDER.findall(part)}
    placeholders = {name: _listed(rule_id, name, namespace) for name in sorted(names)}
    return RuleText(summary, checks, why, placeholders)


def _listed(rule_id: str, name: str, namespace: Mapping[str, object]) -> object:
    value: object
    if name.startswith(_TRAIT):
        bit = getattr(Trait, name.removeprefix(_TRAIT), None)
        value = TRAIT_CODES.get(bit) if isinstance(bit, int) else None
    else:
        value = namespace.get(name)
    if value is None or listing(value) is None:
        raise RuleDocumentationError(
            f"{rule_id}: the docstring's {{{name}}} is no list of the rule's module (a code "
            "set, words, a mapping of code sets) and no code family (Trait.X)"
        )
    return value
