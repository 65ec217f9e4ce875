"""One tally of what the stage decided: routes, findings, code sets and dead-letter kinds.

Routes are where records went: `validated`, `review`, `rejected`, `dead_letter`. A decision
sent to review is a validated decision (its outcome), so the count of validated decisions
is `validated + review`: `decisions("validated")`.

Batch mode prints it, the worker's status page and logs read it, and the Prometheus
counters of decisions, findings and dead letters are exported from it, so the three can
never disagree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from stream.core.contracts import DeadLetterKind, Outcome, Route
from stream.core.decision import Output


@dataclass
class Tally:
    """Counts of outputs, updated once per output record."""

    records: int = 0
    routes: Counter[Route] = field(default_factory=Counter)
    findings: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letter_kinds: Counter[DeadLetterKind] = field(default_factory=Counter)
    code_sets: Counter[str] = field(default_factory=Counter)
    """Decisions by the ICD-10-CM fiscal year that judged them (`FY2026`)."""
    nearest_code_set: int = 0
    """Decisions judged by the nearest code set: no loaded set covers their date (MET-042)."""

    def record(self, output: Output) -> None:
        self.records += 1
        self.routes[output.route] += 1
        if output.dead_letter_kind is not None:
            self.dead_letter_kinds[output.dead_letter_kind] += 1
        if output.code_set is not None:
            self.code_sets[output.code_set] += 1
            if output.nearest_code_set:
                self.nearest_code_set += 1
        for finding in output.findings:
            self.findings[(finding.rule_id, finding.severity)] += 1

    def decisions(self, outcome: Outcome) -> int:
        """Decisions of an outcome, wherever they went (validated ones also go to review)."""
        if outcome == "validated":
            return self.routes["validated"] + self.routes["review"]
        return self.routes[outcome]

    def merge(self, other: Tally) -> None:
        """Add another tally's counts (a batch worker's share of the input) to this one."""
        self.records += other.records
        self.routes.update(other.routes)
        self.findings.update(other.findings)
        self.dead_letter_kinds.update(other.dead_letter_kinds)
        self.code_sets.update(other.code_sets)
        self.nearest_code_set += other.nearest_code_set

    def top_errors(self, count: int) -> list[tuple[str, int]]:
        """The rules with the most error findings, most frequent first."""
        errors = [(rule, n) for (rule, severity), n in self.findings.items() if severity == "error"]
        return sorted(errors, key=lambda row: (-row[1], row[0]))[:count]
