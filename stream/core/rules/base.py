"""What a rule is: a small pure function over the enriched claim, with its metadata.

A rule's docstring is its documentation, in fixed sections (`stream.core.rules.documentation`),
rendered by `claims-stage explain MET-0xx` and the rule reference of `docs/rules.md`; its metadata
feeds the rule table of `docs/rules.md` and `claims-stage rules`, and its ID is the catalogue's.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import CodeType
from typing import Protocol

from stream.core.claim import Claim, ClaimDiagnosis, ClaimProcedure, Fact
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import TRAIT_CODES, Trait
from stream.core.contracts import Severity
from stream.core.rules.code_lists import CodeList, plain
from stream.core.rules.documentation import SECTIONS, RuleText, parse_docstring


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
    """The rule judges the claim's date against the loaded code sets (MET-042): it cannot
    be disabled, or claims judged by a code set not their own would pass unflagged."""
    needs: int = 0
    """`Fact` bits the rule can only fire with (all of them): a reason for the encounter, a
    TNM, an invalid code... The ruleset skips the check on claims without them."""
    text: RuleText | None = field(default=None, repr=False)
    """The docstring in its sections (`rule()` always sets it)."""

    @property
    def code_sets(self) -> tuple[CodeSet, ...]:
        """Every `CodeSet` the rule reads: its `applies_to` and the module-level sets its
        check names (directly, inside comprehensions, or inside tuples, dicts and
        dataclasses of sets).
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
        """Which claims the rule is evaluated on, in words, from its declared scope."""
        if self.judges_dates:
            return (
                "claims dated outside the loaded ICD-10-CM code sets, judged by the nearest "
                "one (the rule cannot be disabled)"
            )
        within = "claims"
        if self.needs:
            within += f" with {Fact.describe(self.needs)}"
        if self.reads_procedures:
            return (
                f"{within} that carry procedure codes the rules read: outpatient and "
                "professional claims (an inpatient claim's CPT codes count only as evidence "
                "for an exemption)"
            )
        if isinstance(self.applies_to, CodeSet):
            return f"{within} with a valid code in {self.applies_to}"
        if isinstance(self.applies_to, int):
            families = [
                f"{name.lower().replace('_', ' ')} ({TRAIT_CODES[bit]})"
                for name, bit in vars(Trait).items()
                if name.isupper() and bit in TRAIT_CODES and bit & self.applies_to == bit
            ]
            return f"{within} with a valid code of a family: {'; '.join(families)}"
        return within if self.needs else "every claim"

    @property
    def written(self) -> RuleText:
        """The docstring in its sections; a rule made without `rule()` has none."""
        if self.text is None:
            raise ValueError(f"{self.rule_id} has no documentation: declare it with @rule")
        return self.text

    def sections(self, show: Callable[[CodeList], str] = plain) -> dict[str, str]:
        """The written sections of the documentation, code lists rendered by `show`."""
        text = self.written
        return {
            SECTIONS[0]: text.render(text.checks, show),
            SECTIONS[1]: text.render(text.why, show),
        }

    @property
    def summary(self) -> str:
        """What the rule asks of a claim, in a sentence or two."""
        text = self.written
        return " ".join(text.render(text.summary).split())

    @property
    def documentation(self) -> str:
        """The written documentation as Markdown, code lists as written in the sets."""
        parts = [self.summary]
        parts += [f"## {heading}\n\n{body}" for heading, body in self.sections().items()]
        return "\n\n".join(parts)


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
    needs: int = 0,
) -> Callable[[Check], Rule]:
    """Declare a rule: `@rule("MET-005", title=..., ...)` over its check function.

    Refuses a check whose docstring is not documentation in the fixed sections
    (`stream.core.rules.documentation`).
    """

    def declare(check: Check) -> Rule:
        text = parse_docstring(rule_id, check.__doc__, check.__globals__)
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
            needs,
            text,
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
    elif depth and dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _code_sets_in(getattr(value, item.name), depth - 1)


class WordFinder:
    """Finds any of some words in free text, case-insensitive; `search` as `re.Pattern`'s.

    Reasons for the encounter repeat (order sets, templates), and an alternation of a dozen
    phrases tried at every position costs more than a rule's code checks: answers about
    short texts are remembered, within an entry budget (least recently used first out).
    """

    __slots__ = ("_remembered", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self._remembered = functools.lru_cache(maxsize=WORD_ANSWERS_KEPT)(pattern.search)

    def search(self, text: str) -> re.Match[str] | None:
        if len(text) > WORD_CACHE_TEXT_LENGTH:  # long texts are rare: searched every time
            return self.pattern.search(text)
        return self._remembered(text)


WORD_ANSWERS_KEPT = 2_048
"""Entry budget of each word finder's remembered answers."""
WORD_CACHE_TEXT_LENGTH = 256
"""The longest text whose answer is remembered (the contract's limit on a reason for the
encounter is `MAX_REASON_LENGTH`, 1,000 characters): about 1.3 KB an entry at worst (the
text, kept alive by the key and its match), 2.6 MB a finder."""


def any_of(words: Iterable[str], *, whole_words: bool = True) -> WordFinder:
    """A finder for free text of any of the words (the check and its documentation read the
    same tuple of words)."""
    alternatives = "|".join(re.escape(word) for word in words)
    pattern = rf"\b({alternatives})\b" if whole_words else f"({alternatives})"
    return WordFinder(re.compile(pattern, re.IGNORECASE))


class Coded(Protocol):
    @property
    def code(self) -> str: ...


def codes_of(lines: Iterable[Coded]) -> str:
    """`C78.7, C79.51` (diagnoses) or `20206, 38900` (procedures), for messages."""
    return ", ".join(line.code for line in lines)


def labels_of(diagnoses: Iterable[ClaimDiagnosis]) -> str:
    """`C78.7 (secondary …), C79.51 (secondary …)` for messages."""
    return ", ".join(d.label for d in diagnoses)


def current_malignancies(claim: Claim) -> list[ClaimDiagnosis]:
    """The claim's malignancies other than C80.2, which marks a transplanted organ's
    malignancy and needs the specific malignancy coded beside it (MET-034)."""
    return [
        d
        for d in claim.with_traits(Trait.MALIGNANCY)
        if not d.info.traits & Trait.TRANSPLANT_MALIGNANCY
    ]


Pair = tuple[list[ClaimDiagnosis], list[ClaimDiagnosis]]
"""Two groups of a claim's codes that must not stand together."""


def together(claim: Claim, first: CodeSet, second: CodeSet) -> Pair | None:
    """The claim's codes of two sets when it has codes of both; None otherwise."""
    ones = claim.in_set(first)
    if not ones:
        return None
    others = claim.in_set(second)
    return (ones, others) if others else None


def pair_hit(
    pair: Pair | None,
    severity: Severity,
    say: Callable[[list[ClaimDiagnosis], list[ClaimDiagnosis]], str],
) -> Hit | None:
    """A finding on both groups of a pair, in the words `say` gives them; None without one."""
    if pair is None:
        return None
    first, second = pair
    return hit(severity, say(first, second), [*first, *second])


class Problems:
    """What a rule with several branches finds on one claim, said in one finding."""

    __slots__ = ("_diagnoses", "_said")

    def __init__(self) -> None:
        self._said: list[str] = []
        self._diagnoses: list[ClaimDiagnosis] = []

    def add(self, text: str, diagnoses: Iterable[ClaimDiagnosis] = ()) -> None:
        self._said.append(text)
        self._diagnoses += diagnoses

    def hit(
        self, severity: Severity, frame: str = "{}", diagnoses: Iterable[ClaimDiagnosis] = ()
    ) -> Hit | None:
        """One finding saying every problem (`frame` places them), or None when none."""
        if not self._said:
            return None
        return hit(severity, frame.format("; ".join(self._said)), [*self._diagnoses, *diagnoses])
