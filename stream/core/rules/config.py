"""The rules as this deployment runs them: the catalogue plus an optional policy file.

The policy file is TOML (its path in `CLAIMS_RULES_CONFIG`). A `[rules.<ID>]` table sets a
rule for every claim; a `[payers.<PAYER>.rules.<ID>]` table sets it for the claims whose
`payer_id` is PAYER only, over the global setting, key by key:

    [rules.MET-026]
    enabled = false              # every payer

    [rules.MET-007]
    route = "review"             # a claim with no error that MET-007 flags goes to review

    [payers.ACME.rules.MET-025]
    severity = "error"           # ACME's claims only

Keys: `enabled` (true, false), `severity` ("error", "warning", or "default": the rule's
own), `route` ("review", or "default": where the outcome sends the claim).

MET-042 (a claim dated outside the loaded code sets, judged by the nearest) cannot be
disabled, globally or for a payer: such a claim would pass without saying so.

Every policy is a `Ruleset` built once, at start: the global one, and one for each payer
whose section changes anything. Its version says which policy judged a claim: the
catalogue's version, then `+cfg.<hash>` when the global policy changes anything (the hash of
today's files is unchanged), then `.payer.<hash>` when the payer's policy differs from the
global one (`2026.12.0+cfg.1a2b3c4d.payer.5e6f7a8b`).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from stream.core.claim import Claim
from stream.core.codes.codeset import CodeSet
from stream.core.contracts import DecisionRoute, Severity
from stream.core.memo import Lru
from stream.core.rules import CATALOGUE, RULE_ID_RANGE, RULES_BY_ID, RULESET_VERSION, Hit, Rule
from stream.core.rules.tomllines import key_lines, line_of

SeverityChoice = Literal["error", "warning", "default"]
RouteChoice = Literal["review", "default"]
RULE_KEYS = ("enabled", "severity", "route")


def _known_rule(rule_id: str) -> str:
    if rule_id not in RULES_BY_ID:
        raise ValueError(f"unknown rule ID {rule_id} (the catalogue has {RULE_ID_RANGE})")
    return rule_id


RuleId = Annotated[str, AfterValidator(_known_rule)]
PayerId = Annotated[str, Field(min_length=1, pattern=r"^\S(.*\S)?$")]


class _Section(BaseModel):
    # strict: `enabled = "no"` is a mistake to report, not a string to coerce to False.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RuleOverride(_Section):
    """One rule's keys in one section; an absent key inherits (catalogue, then global)."""

    enabled: bool | None = None
    severity: SeverityChoice | None = None
    route: RouteChoice | None = None


class PayerPolicy(_Section):
    rules: dict[RuleId, RuleOverride] = {}


class RulesConfig(_Section):
    rules: dict[RuleId, RuleOverride] = {}
    payers: dict[PayerId, PayerPolicy] = {}


class RulesConfigError(ValueError):
    """The rules configuration file cannot be used; the message says why and where."""


def load_rules_config(path: Path) -> RulesConfig:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesConfigError(f"cannot read the rules configuration {path}: {error}") from error
    return parse_rules_config(text, str(path))


def parse_rules_config(text: str, name: str) -> RulesConfig:
    """Read a policy file; every problem is reported with the line it is on."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesConfigError(f"{name} is not valid TOML: {error}") from error
    try:
        config = RulesConfig.model_validate(data)
    except ValidationError as error:
        errors: list[Any] = error.errors(include_url=False)
    else:
        errors = list(_undisabled_rules_disabled(config))
        if not errors:
            return config
    lines = key_lines(text)
    located = sorted((_problem(lines, e) for e in errors), key=lambda problem: problem[0] or 0)
    problems = [f"line {line}: {text}" if line else text for line, text in located]
    heading = f"{name}: {len(problems)} problems" if len(problems) > 1 else name
    raise RulesConfigError(
        heading + (":\n  " if len(problems) > 1 else ": ") + "\n  ".join(problems)
    )


def _undisabled_rules_disabled(config: RulesConfig) -> Iterator[dict[str, Any]]:
    """Errors, as pydantic words them, for rules a policy must not disable (MET-042)."""
    sections: list[tuple[tuple[str, ...], dict[str, RuleOverride]]] = [(("rules",), config.rules)]
    sections += [(("payers", p, "rules"), policy.rules) for p, policy in config.payers.items()]
    for where, rules in sections:
        for rule_id, override in rules.items():
            if override.enabled is False and RULES_BY_ID[rule_id].judges_dates:
                yield {
                    "loc": (*where, rule_id, "enabled"),
                    "type": "value_error",
                    "msg": f"{rule_id} cannot be disabled: claims dated outside the loaded "
                    "code sets would then pass without saying they were judged by another "
                    "year's code set",
                    "input": False,
                }


def _problem(lines: dict[tuple[str, ...], int], error: Any) -> tuple[int | None, str]:
    """`line 7: payers.ACME.rules.MET-025.severity = "fatal": must be one of ...`."""
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    where = ".".join(loc) or "the file"
    line = line_of(lines, loc)
    kind, message = error["type"], str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind == "extra_forbidden":
        message = _unknown_key_message(loc)
    elif kind in ("literal_error", "bool_type", "string_type", "dict_type", "model_type"):
        where += f" = {json.dumps(error.get('input'), default=str)}"
        message = _expected(loc, message)
    return line, f"{where}: {message}"


def _unknown_key_message(loc: list[str]) -> str:
    if len(loc) >= 2 and loc[-3:-1] == ["rules", loc[-2]] and loc[-2] in RULES_BY_ID:
        return f"unknown key {loc[-1]!r}: a rule takes {', '.join(RULE_KEYS)}"
    if len(loc) == 3 and loc[0] == "payers":
        return f"unknown key {loc[-1]!r}: a payer section takes [payers.{loc[1]}.rules.<ID>]"
    return f"unknown key {loc[-1]!r}: the file takes [rules.<ID>] and [payers.<PAYER>.rules.<ID>]"


def _expected(loc: list[str], message: str) -> str:
    choices = {
        "enabled": "must be true or false",
        "severity": 'must be "error", "warning" or "default" (the rule\'s own)',
        "route": 'must be "review" or "default" (by outcome)',
    }
    if loc and loc[-1] in choices and len(loc) >= 3 and loc[-3] == "rules":
        return choices[loc[-1]]
    if loc and loc[-1] in RULES_BY_ID:
        return f"a rule is a table of {', '.join(RULE_KEYS)}: [{'.'.join(loc)}]"
    return message


# --- what a policy makes of each rule ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleState:
    """How one policy runs one rule."""

    enabled: bool = True
    severity: Severity | None = None
    """A fixed severity, or None for the rule's own."""
    review: bool = False
    """Whether a claim with no error that this rule flags goes to the review topic."""

    def overridden(self, override: RuleOverride) -> RuleState:
        severity = self.severity
        if override.severity is not None:
            severity = None if override.severity == "default" else override.severity
        return RuleState(
            enabled=self.enabled if override.enabled is None else override.enabled,
            severity=severity,
            review=self.review if override.route is None else override.route == "review",
        )

    def changes(self, before: RuleState | None = None) -> dict[str, object]:
        """The keys that differ from `before` (the catalogue), as a policy file writes them."""
        before = before or RuleState()
        changed: dict[str, object] = {}
        if self.enabled != before.enabled:
            changed["enabled"] = self.enabled
        if self.severity != before.severity:
            changed["severity"] = self.severity or "default"
        if self.review != before.review:
            changed["route"] = "review" if self.review else "default"
        return changed


CATALOGUE_STATES: dict[str, RuleState] = {rule.rule_id: RuleState() for rule in CATALOGUE}


def _overridden(
    states: Mapping[str, RuleState], overrides: Mapping[str, RuleOverride]
) -> dict[str, RuleState]:
    return {
        rule_id: state.overridden(overrides[rule_id]) if rule_id in overrides else state
        for rule_id, state in states.items()
    }


def _digest(document: object) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:8]


def _version(*parts: str | None) -> str:
    build = ".".join(part for part in parts if part)
    return f"{RULESET_VERSION}+{build}" if build else RULESET_VERSION


class Policies:
    """The global policy and each payer's, as rulesets built once; looked up per claim."""

    def __init__(self, config: RulesConfig | None = None) -> None:
        self.config = config or RulesConfig()
        self.global_states = _overridden(CATALOGUE_STATES, self.config.rules)
        # Hashed as today's single-policy files were, so their versions do not change.
        global_changes = {
            rule_id: state.changes()
            for rule_id, state in sorted(self.global_states.items())
            if state.changes()
        }
        global_part = f"cfg.{_digest(global_changes)}" if global_changes else None
        self.default = Ruleset(self.global_states, _version(global_part))
        self.payers: dict[str, Ruleset] = {}
        every_payer: dict[str, dict[str, dict[str, object]]] = {}
        for payer, policy in sorted(self.config.payers.items()):
            states = _overridden(self.global_states, policy.rules)
            changes = {
                rule_id: state.changes(self.global_states[rule_id])
                for rule_id, state in sorted(states.items())
                if state != self.global_states[rule_id]
            }
            if changes:  # a section that changes nothing is the global policy
                every_payer[payer] = changes
                self.payers[payer] = Ruleset(
                    states, _version(global_part, f"payer.{_digest(changes)}")
                )
        self.version = _version(
            global_part, f"payers.{_digest(every_payer)}" if every_payer else None
        )
        """The whole configuration's version: what a worker runs (status page, metrics)."""

    @classmethod
    def from_file(cls, path: Path | None) -> Policies:
        return cls(load_rules_config(path) if path else None)

    def for_payer(self, payer_id: str | None) -> Ruleset:
        """The ruleset that judges a claim of this payer: its own, or the global one."""
        return self.payers.get(payer_id or "", self.default)

    @property
    def routes_to_review(self) -> bool:
        """Whether any policy sends claims to the review topic."""
        return any(r.review_rules for r in (self.default, *self.payers.values()))

    def rulesets(self) -> dict[str | None, Ruleset]:
        """Every distinct policy: None for the global one, then each payer's."""
        every: dict[str | None, Ruleset] = {None: self.default}
        every.update(self.payers)
        return every


# --- the ruleset: what runs on each claim ------------------------------------------------


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


_Check = tuple[Callable[[Claim], Hit | None], Rule, Severity | None]
"""What the per-claim loop calls: the check, its rule, and a severity fixed by the policy."""


@dataclass(frozen=True, slots=True)
class _Gate:
    """A rule's necessary conditions as bit masks: the ruleset skips it on other claims."""

    traits: int  # some valid code of these families
    code_set: int  # some valid code in this code set (its bit in the stage's index)
    facts: int  # every one of these claim facts
    procedures: bool  # procedure codes the rules read

    def opens(self, traits: int, sets: int, facts: int, procedures: bool) -> bool:
        return not (
            (self.traits and not traits & self.traits)
            or (self.code_set and not sets & self.code_set)
            or (facts & self.facts) != self.facts
            or (self.procedures and not procedures)
        )


PLAN_CACHE_SIZE = 8_192
"""Claims with the same gate-relevant bits run the same rules: their plan is looked up, not
worked out again. Entry budget, least recently used first out: a key of five small integers
and a tuple of at most 42 checks, about 500 bytes an entry."""


@dataclass(frozen=True, slots=True)
class ActiveRule:
    rule: Rule
    severity: Severity | None
    """A fixed severity from the configuration, or None to keep the rule's own."""
    review: bool = False


class Ruleset:
    """The enabled rules of one policy, evaluated in ID order; built once, used for every claim."""

    def __init__(
        self, states: Mapping[str, RuleState] | None = None, version: str = RULESET_VERSION
    ) -> None:
        states = states or {}
        self.version = version
        self.version_header = version.encode()
        self.states: dict[str, RuleState] = {
            rule.rule_id: states.get(rule.rule_id, RuleState()) for rule in CATALOGUE
        }
        self.active: tuple[ActiveRule, ...] = tuple(
            ActiveRule(rule, state.severity, state.review)
            for rule in CATALOGUE
            if (state := self.states[rule.rule_id]).enabled
        )
        self.review_rules = frozenset(a.rule.rule_id for a in self.active if a.review)
        self._fixed = {a.rule.rule_id: a.severity for a in self.active}
        self._bound_to: dict[CodeSet, int] | None = None
        self._gates: tuple[tuple[_Gate, _Check], ...] = ()
        self._masks = (0, 0, 0)
        self._plans: Lru[tuple[int, int, int, bool], tuple[_Check, ...]] = Lru(PLAN_CACHE_SIZE)

    @property
    def code_sets(self) -> tuple[CodeSet, ...]:
        """Every code set the enabled rules read, for the stage's code index."""
        return tuple(codes for a in self.active for codes in a.rule.code_sets)

    def _bind(self, bits: dict[CodeSet, int]) -> None:
        """Each rule's gate against the claim's code index: `applies_to` becomes a bit mask of
        traits, or the code set's membership bit."""
        self._gates = tuple(
            (
                _Gate(
                    traits=a.rule.applies_to if isinstance(a.rule.applies_to, int) else 0,
                    code_set=bits.get(a.rule.applies_to, 0)
                    if isinstance(a.rule.applies_to, CodeSet)
                    else 0,
                    facts=a.rule.needs,
                    procedures=a.rule.reads_procedures,
                ),
                (a.rule.check, a.rule, a.severity),
            )
            for a in self.active
        )
        # Only the bits some gate reads tell plans apart.
        gates = [gate for gate, _ in self._gates]
        self._masks = (
            _union(g.traits for g in gates),
            _union(g.code_set for g in gates),
            _union(g.facts for g in gates),
        )
        self._plans.clear()
        self._bound_to = bits

    def plan(self, claim: Claim) -> tuple[_Check, ...]:
        """The rules whose necessary conditions this claim meets, in ID order."""
        if claim.code_bits is not self._bound_to:
            self._bind(claim.code_bits)
        traits_mask, sets_mask, facts_mask = self._masks
        key = (
            claim.traits & traits_mask,
            claim.memberships & sets_mask,
            claim.facts & facts_mask,
            bool(claim.procedures),
        )
        plans = self._plans.entries  # the hot path: `Lru.get` inline
        plan = plans.get(key)
        if plan is not None:
            plans.move_to_end(key)
            return plan
        return self._plans.put(key, tuple(check for gate, check in self._gates if gate.opens(*key)))

    def evaluate(self, claim: Claim) -> tuple[RuleFinding, ...]:
        findings: list[RuleFinding] = []
        for check, rule, severity in self.plan(claim):
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

    def route(self, findings: tuple[RuleFinding, ...]) -> tuple[DecisionRoute, tuple[str, ...]]:
        """Where a claim with these findings goes, and the rules that sent it to review.

        Rejected when a finding is an error; else to review when a rule this policy routes
        to review found something; else validated.
        """
        for finding in findings:
            if finding.severity == "error":
                return "rejected", ()
        if self.review_rules:
            review = tuple(f.rule_id for f in findings if f.rule_id in self.review_rules)
            if review:
                return "review", review
        return "validated", ()

    def restate(self, findings: tuple[RuleFinding, ...]) -> tuple[RuleFinding, ...]:
        """This policy's findings, from findings made with the rules' own severities by a
        ruleset that enables every rule this one does (the checks are pure: one evaluation
        serves several policies)."""
        restated: list[RuleFinding] = []
        fixed = self._fixed
        for finding in findings:
            if finding.rule_id not in fixed:
                continue
            severity = fixed[finding.rule_id]
            restated.append(
                finding
                if severity is None or severity == finding.severity
                else replace(finding, severity=severity)
            )
        return tuple(restated)


def union_ruleset(*rulesets: Ruleset) -> Ruleset:
    """Every rule any of `rulesets` enables, with the rules' own severities."""
    return Ruleset(
        {
            rule.rule_id: RuleState(enabled=any(r.states[rule.rule_id].enabled for r in rulesets))
            for rule in CATALOGUE
        },
        version="union",
    )


def _union(masks: Iterable[int]) -> int:
    union = 0
    for mask in masks:
        union |= mask
    return union
