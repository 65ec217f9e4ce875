"""What a rule is: a small pure function over the enriched claim, with its metadata.

A rule's docstring is its documentation (`claims-stage explain MET-0xx`), its metadata
feeds the rule table of the README and `claims-stage rules`, and its ID is the catalogue's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import CodeType

from stream.core.claim import Claim, ClaimDiagnosis, ClaimProcedure
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import Trait
from stream.core.contracts import Severity


@dataclass(slots=True)  # not frozen: frozen construction costs ~4x on the hot path
class Hit:
    """A rule's verdict on one claim: how severe, why, and which lines it concerns."""

    severity: Severity
    message: str
    diagnosis_sequences: tuple[int, ...] = ()
    procedure_lines: tuple[int, ...] = ()


def hit(
    severity: Severity,
    message: str,
    diagnoses: Iterable[ClaimDiagnosis] = (),
    procedures: Iterable[ClaimProcedure] = (),
) -> Hit:
    return Hit(
        severity,
        message,
        tuple(sorted({d.sequence for d in diagnoses})),
        tuple(sorted({p.line for p in procedures})),
    )


Check = Callable[[Claim], Hit | None]


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    title: str
    severity: Severity
    """The rule's highest severity: its error branch when it has one."""
    citation: str
    carc: str
    rarc: str | None
    check: Check = field(repr=False)
    warning_branches: bool = False
    """An error rule with branches the catalogue keeps at warning level."""
    applies_to: CodeSet | int | None = None
    """A necessary condition: the rule can only fire on a claim with a code of this set
    (or of these traits). The ruleset skips the check on other claims; the check still
    tests its own condition in full."""
    reads_procedures: bool = False
    """The rule can only fire on a claim whose procedures the rules read."""
    judges_dates: bool = False
    """The rule judges claims whose date lies outside the loaded code sets (MET-042); every
    other rule needs a code set and is not evaluated on them."""

    @property
    def code_sets(self) -> tuple[CodeSet, ...]:
        """Every `CodeSet` the rule reads: its `applies_to` and the module-level sets its
        check names (directly, inside comprehensions, or inside tuples and dicts of sets).
        The stage indexes them (`stream.core.codes.codeset.CodeIndex`)."""
        found: dict[int, CodeSet] = {}
        if isinstance(self.applies_to, CodeSet):
            found[id(self.applies_to)] = self.applies_to
        namespace = self.check.__globals__
        for name in _names(self.check.__code__):
            for codes in _code_sets_in(namespace.get(name), depth=3):
                found[id(codes)] = codes
        return tuple(found.values())

    @property
    def severity_label(self) -> str:
        if self.severity == "error" and self.warning_branches:
            return "error (warning as stated)"
        return self.severity

    @property
    def scope(self) -> str:
        """Which claims the rule is evaluated on, in words (`claims-stage explain`)."""
        if self.reads_procedures:
            return "claims with procedures (outpatient and professional)"
        if isinstance(self.applies_to, CodeSet):
            return f"claims with a code in {self.applies_to.spec}"
        if isinstance(self.applies_to, int):
            names = [
                name.lower().replace("_", " ")
                for name, bit in vars(Trait).items()
                if name.isupper()
                and isinstance(bit, int)
                and bit & self.applies_to == bit
                and bin(bit).count("1") == 1
            ]
            return f"claims with a code of: {', '.join(names)}"
        return "every claim"

    @property
    def documentation(self) -> str:
        return inspect.cleandoc(self.check.__doc__ or "")


def rule(
    rule_id: str,
    *,
    title: str,
    severity: Severity,
    citation: str,
    carc: str,
    rarc: str | None,
    warning_branches: bool = False,
    applies_to: CodeSet | int | None = None,
    reads_procedures: bool = False,
    judges_dates: bool = False,
) -> Callable[[Check], Rule]:
    """Declare a rule: `@rule("MET-005", title=..., ...)` over its check function."""

    def declare(check: Check) -> Rule:
        if not check.__doc__:
            raise TypeError(f"{rule_id} needs a docstring: it is the rule's documentation")
        return Rule(
            rule_id,
            title,
            severity,
            citation,
            carc,
            rarc,
            check,
            warning_branches,
            applies_to,
            reads_procedures,
            judges_dates,
        )

    return declare


def _names(code: CodeType) -> Iterator[str]:
    """Global names a function's code reads, including its nested comprehensions."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _names(constant)


def _code_sets_in(value: object, depth: int) -> Iterator[CodeSet]:
    if isinstance(value, CodeSet):
        yield value
    elif depth and isinstance(value, tuple | list | frozenset | set):
        for item in value:
            yield from _code_sets_in(item, depth - 1)
    elif depth and isinstance(value, dict):
        for item in value.values():
            yield from _code_sets_in(item, depth - 1)


def codes_of(diagnoses: Iterable[ClaimDiagnosis]) -> str:
    """`C78.7, C79.51` for messages."""
    return ", ".join(d.code for d in diagnoses)


def labels_of(diagnoses: Iterable[ClaimDiagnosis]) -> str:
    """`C78.7 (secondary …), C79.51 (secondary …)` for messages."""
    return ", ".join(d.label for d in diagnoses)
