"""The stage's own Prometheus metrics, on the registry Faust's transport sensor uses too.

Labels take values from small fixed sets only (outcome, rule ID, severity, dead-letter
kind, partition number, versions): never a claim, a patient or a code.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stream import __version__
from stream.contracts import DeadLetterKind
from stream.decide import StageOutput
from stream.rules import CATALOGUE

# decide() takes tens of microseconds; the buckets resolve that and its slow tail.
DECISION_BUCKETS = (
    0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0,
)  # fmt: skip
# Kafka timestamp to broker acknowledgement: milliseconds to minutes (a backlog).
END_TO_END_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
DEAD_LETTER_KINDS: tuple[DeadLetterKind, ...] = (
    "not_utf8",
    "invalid_json",
    "contract_violation",
    "too_large",
    "internal_error",
)


class StageMetrics:
    """Everything the stage exports about itself. One instance per worker."""

    def __init__(self, registry: CollectorRegistry, ruleset_version: str, icd10cm: str) -> None:
        self.registry = registry
        self.decisions = Counter(
            "claims_decisions_total",
            "Claims decided, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.findings = Counter(
            "claims_findings_total",
            "Findings raised, by rule and severity.",
            ["rule_id", "severity"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "claims_dead_letters_total",
            "Input records that could not be read as encounter events, by kind.",
            ["kind"],
            registry=registry,
        )
        self.decision_seconds = Histogram(
            "claims_decision_seconds",
            "Time spent in the decision function per record.",
            buckets=DECISION_BUCKETS,
            registry=registry,
        )
        self.end_to_end_seconds = Histogram(
            "claims_end_to_end_seconds",
            "From the input record's Kafka timestamp to the broker's acknowledgement of "
            "its output.",
            buckets=END_TO_END_BUCKETS,
            registry=registry,
        )
        self.output_send_errors = Counter(
            "claims_output_send_errors_total",
            "Output deliveries the broker refused or that timed out; each is sent again, and "
            "its input stays uncommitted until one is accepted.",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "claims_consumer_lag",
            "Input records not yet committed (end offset minus committed offset), per "
            "partition held by this worker.",
            ["partition"],
            registry=registry,
        )
        self.consumer_lag_seconds = Gauge(
            "claims_consumer_lag_seconds",
            "How far behind in time the worker is, per partition held: the age of the "
            "last decided record while records wait, 0 when none wait.",
            ["partition"],
            registry=registry,
        )
        self.last_decision = Gauge(
            "claims_last_decision_timestamp_seconds",
            "Unix time of the last record decided or dead-lettered.",
            registry=registry,
        )
        self.info = Gauge(
            "claims_stage_info",
            "The versions this worker runs: always 1.",
            ["version", "ruleset_version", "icd10cm"],
            registry=registry,
        )
        self.info.labels(__version__, ruleset_version, icd10cm).set(1)
        # Every series exists from the start, so rates and absent() work before the
        # first record of a kind arrives.
        for outcome in ("validated", "rejected"):
            self.decisions.labels(outcome)
        for kind in DEAD_LETTER_KINDS:
            self.dead_letters.labels(kind)
        for rule in CATALOGUE:
            for severity in ("error", "warning") if rule.warning_branches else (rule.severity,):
                self.findings.labels(rule.rule_id, severity)
        # Children looked up once: `labels()` costs more than the increment itself.
        self._decisions = {o: self.decisions.labels(o) for o in ("validated", "rejected")}
        self._dead_letters = {k: self.dead_letters.labels(k) for k in DEAD_LETTER_KINDS}
        self._findings: dict[tuple[str, str], Counter] = {}

    def record(self, output: StageOutput, decide_seconds: float) -> None:
        """Count one decided record (called once its output is acknowledged)."""
        self.decision_seconds.observe(decide_seconds)
        if output.dead_letter_kind is not None:
            self._dead_letters[output.dead_letter_kind].inc()
        else:
            self._decisions[output.route].inc()
            for finding in output.findings:
                key = (finding.rule_id, finding.severity)
                child = self._findings.get(key)
                if child is None:
                    child = self._findings[key] = self.findings.labels(*key)
                child.inc()
