"""Exactly-once mode without a broker: the agent on a fake transactional producer. Each
fetched batch's outputs and its input offsets are committed in one transaction; a failed
transaction is aborted and its records fetched and decided again; a fenced producer stops the worker;
a rebalance commits what was taken before the partitions go."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError
from faust.types import TP

from stream.core.decision import Decider
from stream.settings import Settings
from stream.worker import transactions as transactions_module
from stream.worker.fatal import EXIT_STATUS, FAULT_EXIT_STATUS
from tests.worker_fakes import INPUT, TransactionalStage, produced_event_id


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transactions_module, "RETRY_FIRST_BACKOFF", 0.0)


def ids(count: int, first: int = 0) -> list[str]:
    return [f"evt-{n}" for n in range(first, first + count)]


def test_a_batch_commits_its_outputs_and_offsets_in_one_transaction(decider: Decider) -> None:
    stage = TransactionalStage(decider)
    stage.run(stage.batch(6))
    producer = stage.producer
    assert producer.initialised == 1
    assert stage.committed_ids() == ids(6)
    # The offsets after each partition's last record, with the group's metadata.
    assert producer.offsets == {(INPUT, 0): 3, (INPUT, 1): 3}
    assert producer.metadata == ["group-metadata"]
    assert stage.acked == []  # the consumer commits nothing itself
    assert stage.metric("claims_transactions_total", {"outcome": "committed"}) == 1
    assert stage.metric("claims_transaction_seconds_count") == 1
    assert stage.state.tally.records == 6
    assert stage.agent.in_flight() == 0


def test_an_aborted_commit_decides_the_batch_again(decider: Decider) -> None:
    stage = TransactionalStage(decider)
    producer = stage.producer
    producer.commit_errors.append(
        KafkaError(KafkaError.REQUEST_TIMED_OUT, "commit timed out", txn_requires_abort=True)
    )
    batch = stage.batch(4)
    stage.run(batch)
    assert [produced_event_id(p) for p in producer.aborted] == ids(4)
    assert producer.committed == []
    # The consumer goes back to the batch's first offsets and fetches it again.
    assert stage.rewound == [{TP(INPUT, 0): 0, TP(INPUT, 1): 0}]
    assert stage.transactions.failures == 1
    stage.run(batch)
    assert stage.committed_ids() == ids(4)  # each once, in the second transaction
    assert stage.transactions.failures == 0
    assert producer.offsets == {(INPUT, 0): 2, (INPUT, 1): 2}
    assert stage.metric("claims_transactions_total", {"outcome": "aborted"}) == 1
    assert stage.metric("claims_transaction_aborts_total", {"reason": "commit_failed"}) == 1
    assert stage.metric("claims_transactions_total", {"outcome": "committed"}) == 1
    assert stage.state.tally.records == 4  # counted once, when committed
    assert stage.stops == []


def test_a_refused_output_aborts_the_transaction_and_the_batch_is_sent_again(
    decider: Decider,
) -> None:
    stage = TransactionalStage(decider)
    stage.producer.refuse[1] = KafkaError(KafkaError.NOT_ENOUGH_REPLICAS, "not enough replicas")
    batch = stage.batch(3)
    stage.run(batch)
    assert stage.producer.committed == []
    assert len(stage.rewound) == 1
    stage.run(batch)  # fetched again
    assert stage.committed_ids() == ids(3)
    assert len(stage.producer.aborted) == 3
    assert stage.metric("claims_transaction_aborts_total", {"reason": "output_refused"}) == 1
    assert stage.metric("claims_output_send_errors_total") == 1


def test_a_decision_refused_for_size_goes_alone_then_as_its_dead_letter(
    decider: Decider,
) -> None:
    stage = TransactionalStage(decider)
    producer = stage.producer
    too_large = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large")
    producer.refuse[1] = too_large  # first attempt: in a batch with the others
    producer.refuse[4] = too_large  # second attempt: alone (flushed before and after)
    batch = stage.batch(3)
    for _ in range(3):  # fetched again after each aborted attempt
        stage.run(batch)
    assert len(stage.rewound) == 2
    assert producer.flushes == 2
    topics = [p.topic for p in producer.committed]
    assert topics[1] == stage.settings.dlq_topic
    assert b"decision_too_large" in producer.committed[1].value
    assert [produced_event_id(p) for i, p in enumerate(producer.committed) if i != 1] == [
        "evt-0",
        "evt-2",
    ]
    assert stage.state.tally.records == 3
    assert stage.stops == []


def test_a_fenced_producer_stops_the_worker_and_commits_nothing(decider: Decider) -> None:
    stage = TransactionalStage(decider)
    stage.producer.commit_errors.append(
        KafkaError(KafkaError._FENCED, "fenced by a newer producer", fatal=True)
    )
    stage.run(stage.batch(4))
    assert stage.producer.committed == []
    assert stage.producer.offsets == {}
    assert stage.stops == ["stop"]
    assert stage.fatal.status == EXIT_STATUS
    assert stage.fatal.reason is not None
    assert stage.fatal.reason.startswith("fenced")
    assert stage.rewound == []  # nothing more for this worker to fetch
    assert "claims-stage-test" in stage.fatal.reason  # the transactional id, named
    assert "CLAIMS_INSTANCE_ID" in stage.fatal.reason  # both causes and what to check
    assert "CLAIMS_TRANSACTION_TIMEOUT" in stage.fatal.reason
    assert stage.state.tally.records == 0


def test_a_transaction_that_cannot_be_aborted_stops_the_worker(decider: Decider) -> None:
    """An abort that keeps timing out leaves librdkafka's producer unable to begin another
    transaction: the worker stops (a restart aborts it) rather than stall."""
    stage = TransactionalStage(decider)
    stage.producer.commit_errors.append(
        KafkaError(KafkaError._TIMED_OUT, "commit timed out", txn_requires_abort=True)
    )
    timed_out = KafkaError(KafkaError._TIMED_OUT, "abort timed out", retriable=True)
    stage.producer.abort_errors.extend([timed_out] * transactions_module.CALL_TRIES)
    stage.run(stage.batch(4))
    assert stage.producer.committed == []
    assert stage.stops == ["stop"]
    assert stage.fatal.status == FAULT_EXIT_STATUS
    assert "could not be aborted" in (stage.fatal.reason or "")
    assert stage.rewound == []  # nothing more for this worker to fetch


def test_a_rebalance_during_an_open_transaction_commits_what_was_taken(
    decider: Decider,
) -> None:
    stage = TransactionalStage(decider, revoke_after=3)
    stage.run(stage.batch(8))
    # Records 0-2 were taken before the rebalance began: committed, with their offsets;
    # the rest is left to the partitions' next owner, from those offsets.
    assert stage.committed_ids() == ids(3)
    assert stage.producer.offsets == {(INPUT, 0): 2, (INPUT, 1): 1}
    assert len(stage.producer.sent) == 3
    assert stage.producer.aborted == []
    assert stage.agent.in_flight() == 0
    assert stage.rewound == []  # the new assignment fetches from the committed offsets


def test_a_rebalance_before_the_first_record_commits_nothing(decider: Decider) -> None:
    stage = TransactionalStage(decider, revoke_after=0)
    stage.run(stage.batch(4))
    assert stage.producer.sent == []
    assert stage.producer.committed == []
    assert stage.producer.offsets == {}


def test_a_failed_commit_during_a_rebalance_is_not_retried(decider: Decider) -> None:
    """The group moved on: the transaction is aborted and the records are the new owner's."""
    stage = TransactionalStage(decider, revoke_after=2)
    stage.producer.commit_errors.append(
        KafkaError(KafkaError.ILLEGAL_GENERATION, "the group moved on", txn_requires_abort=True)
    )
    stage.run(stage.batch(5))
    assert stage.producer.committed == []
    assert len(stage.producer.aborted) == 2
    assert len(stage.producer.sent) == 2
    assert stage.state.tally.records == 0
    assert stage.rewound == []


def test_at_least_once_is_the_default_and_has_no_transactions() -> None:
    settings = Settings()
    assert settings.processing_guarantee == "at_least_once"
    assert not settings.exactly_once


def test_exactly_once_needs_the_librdkafka_transport() -> None:
    with pytest.raises(ValueError, match="needs CLAIMS_TRANSPORT=librdkafka"):
        Settings(processing_guarantee="exactly_once", transport="aiokafka")


def test_the_transactional_id_is_the_group_and_the_instance() -> None:
    settings = Settings(app_id="claims-stage", instance_id="worker-0")
    assert settings.transactional_id == "claims-stage-worker-0"
