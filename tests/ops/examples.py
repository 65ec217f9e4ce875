"""What the example stream must come to, counted from schemas/examples/expected.jsonl."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from stream.cli.batch import read_lines

from .support import REPO

# From this repository, not tests.stage_kafka.EXAMPLES: that resolves one folder too high.
ENCOUNTERS = REPO / "schemas" / "examples" / "encounters.jsonl"
EXPECTED = REPO / "schemas" / "examples" / "expected.jsonl"


def example_lines() -> list[bytes]:
    """The example stream's records, exactly as `claims-stage send` reads them."""
    with ENCOUNTERS.open("rb") as stream:
        return list(read_lines(stream))


@dataclass(frozen=True)
class ExpectedCounts:
    records: int
    routes: Counter[str]  # validated, rejected, dead_letter
    dead_letter_kinds: Counter[str]
    findings: Counter[tuple[str, str]]  # (rule_id, severity)

    @property
    def decisions(self) -> int:
        """Records decided: validated or rejected (claims_decisions_total)."""
        return self.routes["validated"] + self.routes["rejected"]

    @property
    def dead_letters(self) -> int:
        return self.routes["dead_letter"]


def expected_rows() -> list[dict[str, Any]]:
    """The example stream's sidecar: for each line, its route, findings and dead-letter kind."""
    return [json.loads(line) for line in EXPECTED.read_text().splitlines() if line.strip()]


def expected_counts() -> ExpectedCounts:
    expected = expected_rows()
    counts = ExpectedCounts(
        records=len(expected),
        routes=Counter(e["route"] for e in expected),
        dead_letter_kinds=Counter(e["dead_letter_kind"] for e in expected if e["dead_letter_kind"]),
        findings=Counter(
            (rule_id, severity) for e in expected for rule_id, severity in e["findings"].items()
        ),
    )
    assert counts.decisions + counts.dead_letters == counts.records
    assert sum(counts.dead_letter_kinds.values()) == counts.dead_letters
    return counts


def metrics_match(metrics: dict[str, float], counts: ExpectedCounts) -> bool:
    """Whether a worker's scraped /metrics count every example record as expected."""
    return (
        metrics.get('claims_decisions_total{outcome="validated"}') == counts.routes["validated"]
        and metrics.get('claims_decisions_total{outcome="rejected"}') == counts.routes["rejected"]
        and all(
            metrics.get(f'claims_dead_letters_total{{kind="{kind}"}}') == n
            for kind, n in counts.dead_letter_kinds.items()
        )
        and sum(v for k, v in metrics.items() if k.startswith("claims_dead_letters_total{"))
        == counts.dead_letters
    )
