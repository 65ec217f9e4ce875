"""The rules as this deployment runs them: the catalogue plus an optional configuration.

The configuration is a TOML file (its path in `CLAIMS_RULES_CONFIG`) that can disable a
rule or fix its severity:

    [rules.MET-026]
    enabled = false

    [rules.MET-031]
    severity = "warning"   # every MET-031 finding becomes a warning

MET-042 (a claim dated outside the loaded code sets) cannot be disabled: such a claim would
pass unjudged. A configuration that changes anything gives the ruleset a version suffix
derived from its content (`2026.12.0+cfg.1a2b3c4d`), so every decision says which rules
judged it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from stream.core.claim import Claim
from stream.core.codes.codeset import CodeSet
from stream.core.contracts import Severity
from stream.core.rules import CATALOGUE, RULE_ID_RANGE, RULES_BY_ID, RULESET_VERSION, Hit, Rule


class RuleOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity | None = None


class RulesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: dict[str, RuleOverride] = {}

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, rules: dict[str, RuleOverride]) -> dict[str, RuleOverride]:
        unknown = sorted(set(rules) - set(RULES_BY_ID))
        if unknown:
            raise ValueError(f"unknown rule IDs {', '.join(unknown)} (known: {RULE_ID_RANGE})")
        for rule_id, override in rules.items():
            if not override.enabled and RULES_BY_ID[rule_id].judges_dates:
                raise ValueError(
                    f"{rule_id} cannot be disabled: claims dated outside the loaded code "
                    "sets would then pass unjudged"
                )
        return rules


class RulesConfigError(ValueError):
    """The rules configuration file cannot be used; the message says why."""


def load_rules_config(path: Path) -> RulesConfig:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as error:
        raise RulesConfigError(f"cannot read the rules configuration {path}: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise RulesConfigError(f"{path} is not valid TOML: {error}") from error
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise RulesConfigError(f"{path}: {problems}") from error


@dataclass(slots=True)  # not frozen: frozen construction costs ~4x on the hot path
class RuleFinding:
    """A finding as the stage produces it: the fields of the contract's `Finding`, in order.

    A plain dataclass rather than the pydantic model because it is made on the hot path
    and serialised by orjson; a test keeps the two field lists identical.
    """

    rule_id: str
    severity: Severity
    message: str
    citation: str
    diagnosis_sequences: tuple[int, ...]
    procedure_lines: tuple[int, ...]
    carc: str
    rarc: str | None


_Check = tuple[Callable[[Claim], Hit | None], Rule, Severity | None, int, int, bool]


@dataclass(frozen=True, slots=True)
class ActiveRule:
    rule: Rule
    severity: Severity | None
    """A fixed severity from the configuration, or None to keep the rule's own."""


class Ruleset:
    """The enabled rules, evaluated in ID order; built once, used for every claim."""

    def __init__(self, config: RulesConfig | None = None) -> None:
        config = config or RulesConfig()
        self.active: tuple[ActiveRule, ...] = tuple(
            ActiveRule(rule, config.rules[rule.rule_id].severity)
            if rule.rule_id in config.rules
            else ActiveRule(rule, None)
            for rule in CATALOGUE
            if rule.rule_id not in config.rules or config.rules[rule.rule_id].enabled
        )
        self._bound_to: dict[CodeSet, int] | None = None
        self._checks: tuple[_Check, ...] = ()
        self._date_checks: tuple[_Check, ...] = ()
        effective = {
            rule_id: override.model_dump(exclude_defaults=True)
            for rule_id, override in sorted(config.rules.items())
            if override.model_dump(exclude_defaults=True)
        }
        if effective:
            digest = hashlib.sha256(json.dumps(effective, sort_keys=True).encode()).hexdigest()
            self.version = f"{RULESET_VERSION}+cfg.{digest[:8]}"
        else:
            self.version = RULESET_VERSION

    @classmethod
    def from_file(cls, path: Path | None) -> Ruleset:
        return cls(load_rules_config(path) if path else None)

    @property
    def code_sets(self) -> tuple[CodeSet, ...]:
        """Every code set the enabled rules read, for the stage's code index."""
        return tuple(codes for a in self.active for codes in a.rule.code_sets)

    def _bind(self, bits: dict[CodeSet, int]) -> None:
        """Flat tuples for the per-claim loop, against the claim's code index: the loop
        runs once per rule on every decision. A rule's `applies_to` becomes a bit mask: traits,
        or the code set's membership bit."""
        checks = tuple(
            (
                a.rule.check,
                a.rule,
                a.severity,
                a.rule.applies_to if isinstance(a.rule.applies_to, int) else 0,
                bits.get(a.rule.applies_to, 0) if isinstance(a.rule.applies_to, CodeSet) else 0,
                a.rule.reads_procedures,
            )
            for a in self.active
        )
        self._checks = checks
        self._date_checks = tuple(c for c in checks if c[1].judges_dates)
        self._bound_to = bits

    def evaluate(self, claim: Claim) -> tuple[RuleFinding, ...]:
        if claim.code_bits is not self._bound_to:
            self._bind(claim.code_bits)
        findings: list[RuleFinding] = []
        traits, sets, procedures = claim.traits, claim.memberships, bool(claim.procedures)
        # A claim dated outside the loaded code sets is judged by MET-042 alone: no code
        # can be judged without a code set.
        checks = self._checks if claim.code_set is not None else self._date_checks
        for check, rule, severity, gate_traits, gate_set, reads_procedures in checks:
            # Skip rules that cannot fire on this claim, without calling them.
            if (
                (gate_traits and not traits & gate_traits)
                or (gate_set and not sets & gate_set)
                or (reads_procedures and not procedures)
            ):
                continue
            found = check(claim)
            if found is None:
                continue
            findings.append(
                RuleFinding(
                    rule_id=rule.rule_id,
                    severity=severity or found.severity,
                    message=found.message,
                    citation=rule.citation,
                    diagnosis_sequences=found.diagnosis_sequences,
                    procedure_lines=found.procedure_lines,
                    carc=rule.carc,
                    rarc=rule.rarc,
                )
            )
        return tuple(findings)
