"""The stage's own Prometheus metrics, on the registry Faust's transport sensor uses too.

Labels take values from small fixed sets only (outcome, rule ID, severity, dead-letter
kind, code-set fiscal year, partition number, versions): never a claim, a patient or a code.

Decisions, findings and dead letters are exported from the worker's `Tally` at scrape
time rather than counted twice: the status page, the logs and `/metrics` read one count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from stream import __version__
from stream.core.contracts import DEAD_LETTER_KINDS, OUTCOMES
from stream.core.rules import CATALOGUE
from stream.core.tally import Tally

# decide() takes tens of microseconds; the buckets resolve that and its slow tail.
DECISION_BUCKETS = (
    0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0,
)  # fmt: skip
# Kafka timestamp to broker acknowledgement: milliseconds to minutes (a backlog).
END_TO_END_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip

# A transaction: a few milliseconds at low load, up to seconds for a full batch on a slow
# broker; the broker aborts one at transaction_timeout (30 s by default).
TRANSACTION_BUCKETS = (
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
TRANSACTION_OUTCOMES = ("committed", "aborted")
TRANSACTION_ABORT_REASONS = ("output_refused", "commit_failed", "revoked", "stopping")
"""Why `claims_transaction_aborts_total` counts an abort (stream.worker.transactions)."""

WORKER_PARTS = ("metrics", "delivery", "acknowledgement", "poller")
"""The parts of the worker whose faults `claims_worker_faults_total` counts."""

FINDING_SERIES: tuple[tuple[str, str], ...] = tuple(
    (rule.rule_id, severity)
    for rule in CATALOGUE
    for severity in (("error", "warning") if rule.warning_branches else (rule.severity,))
)
"""Every (rule, severity) a finding can carry without configuration: exported from the start."""


class TallyCollector(Collector):
    """`claims_decisions_total`, `claims_reviews_total`, `claims_findings_total`,
    `claims_dead_letters_total`, `claims_code_set_decisions_total`,
    `claims_nearest_code_set_decisions_total`.

    Every series exists from the start (at 0), so rates and absent() work before the
    first record of a kind arrives.
    """

    def __init__(self, tally: Tally, code_sets: tuple[str, ...] = ()) -> None:
        self.tally = tally
        self.code_sets = code_sets

    def collect(self) -> Iterator[CounterMetricFamily]:
        tally = self.tally
        decisions = CounterMetricFamily(
            "claims_decisions", "Claims decided, by outcome.", labels=["outcome"]
        )
        for outcome in OUTCOMES:
            decisions.add_metric([outcome], tally.decisions(outcome))
        yield decisions
        yield CounterMetricFamily(
            "claims_reviews",
            "Validated decisions sent to the review topic, because a rule configured with "
            'route = "review" flagged them (part of claims_decisions_total{outcome="validated"}).',
            value=tally.routes["review"],
        )
        findings = CounterMetricFamily(
            "claims_findings",
            "Findings raised, by rule and severity.",
            labels=["rule_id", "severity"],
        )
        for series in sorted(set(FINDING_SERIES) | set(tally.findings)):
            findings.add_metric(list(series), tally.findings[series])
        yield findings
        dead_letters = CounterMetricFamily(
            "claims_dead_letters",
            "Input records that could not be read as encounter events, by kind.",
            labels=["kind"],
        )
        for kind in DEAD_LETTER_KINDS:
            dead_letters.add_metric([kind], tally.dead_letter_kinds[kind])
        yield dead_letters
        by_code_set = CounterMetricFamily(
            "claims_code_set_decisions",
            "Claims decided, by the ICD-10-CM fiscal year whose code set judged them.",
            labels=["fiscal_year"],
        )
        # only the stage's own fixed labels: the tally cannot add a value of its own
        for label in self.code_sets:
            by_code_set.add_metric([label], tally.code_sets[label])
        yield by_code_set
        yield CounterMetricFamily(
            "claims_nearest_code_set_decisions",
            "Claims judged by the nearest ICD-10-CM code set because no loaded set covers "
            "their date (finding MET-042): a release is missing.",
            value=tally.nearest_code_set,
        )


class StageMetrics:
    """Everything the stage exports about itself. One instance per worker."""

    def __init__(
        self,
        registry: CollectorRegistry,
        tally: Tally,
        ruleset_version: str,
        icd10cm: str,
        code_sets: tuple[str, ...] = (),
        code_sets_end: dt.date | None = None,
    ) -> None:
        self.registry = registry
        registry.register(TallyCollector(tally, code_sets))
        self.code_sets_end = Gauge(
            "claims_code_sets_last_date_timestamp_seconds",
            "The last date the loaded ICD-10-CM code sets cover (00:00 UTC, Unix time): the "
            "end of the latest set's fiscal year. Claims dated after it are judged by the "
            "nearest set (MET-042) until the next release is loaded.",
            registry=registry,
        )
        if code_sets_end is not None:
            self.code_sets_end.set(covered_until(code_sets_end))
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
        self.transactions = Counter(
            "claims_transactions_total",
            "Exactly-once mode: transactions ended, by outcome (committed: a batch's outputs "
            "and input offsets made visible together; aborted: none of them, the batch is "
            "decided again).",
            ["outcome"],
            registry=registry,
        )
        self.transaction_aborts = Counter(
            "claims_transaction_aborts_total",
            "Exactly-once mode: transactions aborted, by reason (output_refused, "
            "commit_failed, revoked, stopping).",
            ["reason"],
            registry=registry,
        )
        for outcome in TRANSACTION_OUTCOMES:
            self.transactions.labels(outcome)
        for reason in TRANSACTION_ABORT_REASONS:
            self.transaction_aborts.labels(reason)
        self.transaction_seconds = Histogram(
            "claims_transaction_seconds",
            "Exactly-once mode: from a transaction's begin to its commit (deciding its "
            "records, producing their outputs, sending the offsets, committing).",
            buckets=TRANSACTION_BUCKETS,
            registry=registry,
        )
        self.worker_faults = Counter(
            "claims_worker_faults_total",
            "Exceptions caught in the worker's own machinery, by part: metrics and logs "
            "(counted and passed over), delivery and acknowledgement (the worker stops).",
            ["part"],
            registry=registry,
        )
        for part in WORKER_PARTS:
            self.worker_faults.labels(part)
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


def covered_until(last: dt.date) -> float:
    """A last covered date as the gauge carries it: Unix time of its 00:00 UTC."""
    return dt.datetime.combine(last, dt.time(), dt.UTC).timestamp()
