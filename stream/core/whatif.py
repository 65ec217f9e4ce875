"""What-if: how a proposed policy would judge the claims a baseline policy judges.

Pure, like `decide`: one input record in, both verdicts and their difference out. A claim is
read and enriched once, and its rules run once: every rule either policy enables, with the
rules' own severities. Each policy then keeps its own rules and severities and routes
(`Ruleset.restate`, `Ruleset.route`), as `Decider.decide` under that policy would have; the
checks are pure functions of the claim, so one evaluation serves both.

A finding is the pair (rule, severity): a rule whose severity changes from warning to error
on a claim removes its warning finding and adds an error finding.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stream.core.adapters.formats import AdaptedClaim
from stream.core.claim import build_claim
from stream.core.contracts import DecisionRoute, KafkaSource, Severity, Source
from stream.core.decision import Decider, Output, internal_error, source_document
from stream.core.rules.config import Policies, RuleFinding, Ruleset, RuleState, union_ruleset

SAMPLES_PER_CHANGE = 5
"""Sample claims kept for each kind of change (a route transition, a rule added or removed)."""
NO_PAYER = "(no payer)"
"""How claims without a `payer_id` are grouped per payer."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One policy's judgement of one claim."""

    route: DecisionRoute
    findings: tuple[RuleFinding, ...]
    ruleset_version: str
    review_rules: tuple[str, ...] = ()
    """The rules that sent the claim to review (route `review` only)."""


def _keys(findings: tuple[RuleFinding, ...]) -> set[tuple[str, Severity]]:
    return {(f.rule_id, f.severity) for f in findings}


@dataclass(slots=True)
class ClaimComparison:
    """A claim judged by both policies."""

    event_id: str
    claim_id: str
    payer_id: str | None
    source: Source
    before: Verdict
    after: Verdict
    added: tuple[RuleFinding, ...] = ()
    removed: tuple[RuleFinding, ...] = ()

    def __post_init__(self) -> None:
        before, after = _keys(self.before.findings), _keys(self.after.findings)
        self.added = tuple(f for f in self.after.findings if (f.rule_id, f.severity) not in before)
        self.removed = tuple(
            f for f in self.before.findings if (f.rule_id, f.severity) not in after
        )

    @property
    def changed(self) -> bool:
        """Whether the route or the findings differ (a new ruleset version alone is no change)."""
        return self.before.route != self.after.route or bool(self.added or self.removed)

    @property
    def payer(self) -> str:
        return self.payer_id if self.payer_id is not None else NO_PAYER

    def document(self) -> dict[str, Any]:
        """The line of `changes.jsonl` for this claim."""
        return {
            "claim_id": self.claim_id,
            "event_id": self.event_id,
            "payer_id": self.payer_id,
            "route_before": self.before.route,
            "route_after": self.after.route,
            "findings_added": self.added,
            "findings_removed": self.removed,
            "review_rules_before": self.before.review_rules,
            "review_rules_after": self.after.review_rules,
            "ruleset_before": self.before.ruleset_version,
            "ruleset_after": self.after.ruleset_version,
            "source": source_document(self.source),
        }


class PolicyComparison:
    """Judges each claim under a baseline and a proposed policy; built once, like a Decider."""

    def __init__(self, decider: Decider, baseline: Policies, proposed: Policies) -> None:
        self.decider = decider
        self.baseline = baseline
        self.proposed = proposed
        self._default = self._pair(baseline.default, proposed.default)
        self._payers = {
            payer: self._pair(baseline.for_payer(payer), proposed.for_payer(payer))
            for payer in sorted(set(baseline.payers) | set(proposed.payers))
        }

    @staticmethod
    def _pair(before: Ruleset, after: Ruleset) -> tuple[Ruleset, Ruleset, Ruleset]:
        return union_ruleset(before, after), before, after

    def compare(
        self, value: bytes | AdaptedClaim | None, source: Source
    ) -> ClaimComparison | Output:
        """Both verdicts on one input record, or its dead letter (the same under any policy).
        Never raises."""
        event = self.decider.read(value, source)
        if isinstance(event, Output):
            return event
        try:
            union, before, after = self._payers.get(event.payer_id or "", self._default)
            claim = build_claim(event, self.decider.icd10cm, self.decider.cpt)
            findings = union.evaluate(claim)
            return ClaimComparison(
                event_id=event.event_id,
                claim_id=event.claim_id,
                payer_id=event.payer_id,
                source=source,
                before=_verdict(before, findings),
                after=_verdict(after, findings),
            )
        except Exception as error:  # as decide() would: a bug in the stage is a dead letter
            return internal_error(value, source, None, dt.datetime.now(dt.UTC), error)


def _verdict(ruleset: Ruleset, findings: tuple[RuleFinding, ...]) -> Verdict:
    kept = ruleset.restate(findings)
    route, review_rules = ruleset.route(kept)
    return Verdict(route, kept, ruleset.version, review_rules)


# --- the counts a what-if report shows ------------------------------------------------------


@dataclass
class PayerCounts:
    claims: int = 0
    changed: int = 0
    route_changed: int = 0
    added: int = 0
    removed: int = 0
    moved_to: Counter[DecisionRoute] = field(default_factory=Counter)
    """Claims that change route, by their route under the proposed policy."""

    def merge(self, other: PayerCounts) -> None:
        self.claims += other.claims
        self.changed += other.changed
        self.route_changed += other.route_changed
        self.added += other.added
        self.removed += other.removed
        self.moved_to.update(other.moved_to)


@dataclass
class WhatIfTally:
    """Everything the summary and the report show, counted as claims are compared.

    Mergeable, so worker processes count their chunks and the merge, in input order, keeps
    the first samples of each change in input order too.
    """

    records: int = 0
    dead_letters: int = 0
    claims: int = 0
    changed: int = 0
    transitions: Counter[tuple[DecisionRoute, DecisionRoute]] = field(default_factory=Counter)
    """(route before, route after) for every claim judged, changed or not."""
    added: Counter[tuple[str, Severity]] = field(default_factory=Counter)
    removed: Counter[tuple[str, Severity]] = field(default_factory=Counter)
    payers: dict[str, PayerCounts] = field(default_factory=dict)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Change kind (`route:validated>review`, `added:MET-025`, `removed:MET-026`) -> the
    first claims that show it, as their `changes.jsonl` documents."""

    def record(self, result: ClaimComparison | Output) -> None:
        self.records += 1
        if isinstance(result, Output):
            self.dead_letters += 1
            return
        self.claims += 1
        before, after = result.before.route, result.after.route
        self.transitions[(before, after)] += 1
        payer = self.payers.setdefault(result.payer, PayerCounts())
        payer.claims += 1
        if not result.changed:
            return
        self.changed += 1
        payer.changed += 1
        payer.added += len(result.added)
        payer.removed += len(result.removed)
        kinds: list[str] = []
        if before != after:
            payer.route_changed += 1
            payer.moved_to[after] += 1
            kinds.append(f"route:{before}>{after}")
        for finding in result.added:
            self.added[(finding.rule_id, finding.severity)] += 1
            kinds.append(f"added:{finding.rule_id}")
        for finding in result.removed:
            self.removed[(finding.rule_id, finding.severity)] += 1
            kinds.append(f"removed:{finding.rule_id}")
        document: dict[str, Any] | None = None
        for kind in kinds:
            kept = self.samples.setdefault(kind, [])
            if len(kept) < SAMPLES_PER_CHANGE:
                document = document or sample_document(result)
                kept.append(document)

    def merge(self, other: WhatIfTally) -> None:
        self.records += other.records
        self.dead_letters += other.dead_letters
        self.claims += other.claims
        self.changed += other.changed
        self.transitions.update(other.transitions)
        self.added.update(other.added)
        self.removed.update(other.removed)
        for payer, counts in other.payers.items():
            self.payers.setdefault(payer, PayerCounts()).merge(counts)
        for kind, documents in other.samples.items():
            kept = self.samples.setdefault(kind, [])
            kept.extend(documents[: SAMPLES_PER_CHANGE - len(kept)])

    @property
    def route_changes(self) -> int:
        return sum(n for (before, after), n in self.transitions.items() if before != after)

    def rule_changes(self) -> dict[str, tuple[Counter[Severity], Counter[Severity]]]:
        """rule -> (findings added by severity, findings removed by severity), in ID order."""
        rules: dict[str, tuple[Counter[Severity], Counter[Severity]]] = {}
        for (rule_id, severity), count in self.added.items():
            rules.setdefault(rule_id, (Counter(), Counter()))[0][severity] += count
        for (rule_id, severity), count in self.removed.items():
            rules.setdefault(rule_id, (Counter(), Counter()))[1][severity] += count
        return dict(sorted(rules.items()))


def sample_document(result: ClaimComparison) -> dict[str, Any]:
    """A claim's change as plain data (it crosses process boundaries and goes in the report)."""
    return {
        "claim_id": result.claim_id,
        "payer": result.payer,
        "route_before": result.before.route,
        "route_after": result.after.route,
        "added": [_finding(f) for f in result.added],
        "removed": [_finding(f) for f in result.removed],
        "review": [
            _finding(f) for f in result.after.findings if f.rule_id in result.after.review_rules
        ],
        "where": _where(result.source),
    }


def _finding(finding: RuleFinding) -> dict[str, str]:
    return {"rule_id": finding.rule_id, "severity": finding.severity, "message": finding.message}


def _where(source: Source) -> str:
    if isinstance(source, KafkaSource):
        return f"{source.topic}/{source.partition}@{source.offset}"
    return f"{source.file}:{source.line}"


# --- what the proposed policy changes ---------------------------------------------------


@dataclass(frozen=True)
class PolicyChange:
    """One rule whose handling differs between the two configurations, for one scope."""

    scope: str
    """`every payer` for the global policy, else the payer's ID."""
    rule_id: str
    before: RuleState
    after: RuleState


EVERY_PAYER = "every payer"


def policy_changes(baseline: Policies, proposed: Policies) -> list[PolicyChange]:
    """What the proposed configuration changes: globally, then per payer where the payer's
    change is not just the global one."""
    changes = [
        PolicyChange(EVERY_PAYER, rule_id, state, proposed.default.states[rule_id])
        for rule_id, state in baseline.default.states.items()
        if state != proposed.default.states[rule_id]
    ]
    for payer in sorted(set(baseline.config.payers) | set(proposed.config.payers)):
        before, after = baseline.for_payer(payer).states, proposed.for_payer(payer).states
        for rule_id, state in before.items():
            global_before = baseline.default.states[rule_id]
            global_after = proposed.default.states[rule_id]
            if (state, after[rule_id]) == (global_before, global_after):
                continue  # the global change (or no change) is the payer's too
            if state == after[rule_id] and global_before == global_after:
                continue  # the payer's own setting, the same in both
            # a change of the payer's own, or a global change its section shields it from
            changes.append(PolicyChange(payer, rule_id, state, after[rule_id]))
    return changes
