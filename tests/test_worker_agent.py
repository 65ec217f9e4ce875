"""The worker's parts without a broker: the agent, the output producer and the fatal stop on
a fake producer. Refusals, callbacks that raise, delivery reports in any order, revocation,
and the in-flight budget; every input record ends in exactly one stored output, or the
worker stops with it uncommitted."""

from __future__ import annotations

import asyncio
import logging

import pytest
from confluent_kafka import KafkaError, KafkaException

from stream.core.contracts import DeadLetter
from stream.core.decision import Decider
from stream.ops.health import STALL_SECONDS
from stream.worker import agent as agent_module
from stream.worker.fatal import EXIT_STATUS, FAULT_EXIT_STATUS
from tests.worker_fakes import FakeProducer, WorkerStage, claim


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_module, "REDELIVERY_FIRST_BACKOFF", 0.0)


async def turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def test_reports_in_any_order_acknowledge_in_offset_order(decider: Decider) -> None:
    stage = WorkerStage(decider)
    stage.run(*(stage.event(claim(n), partition=n % 2) for n in range(6)))
    assert len(stage.producer.sent) == 6
    stage.producer.answer_all(reverse=True)  # the last output is stored first
    stage.outputs.poll()
    assert len(stage.acked) == 6
    for partition in (0, 1):
        offsets = [o for p, o in stage.acked if p == partition]
        assert offsets == [0, 1, 2]
    assert stage.agent.acks.in_flight() == 0
    assert stage.state.tally.records == 6


def test_a_later_report_waits_for_the_earlier_record(decider: Decider) -> None:
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(1)), stage.event(claim(2)))
    first, second = stage.producer.sent
    stage.producer.answer(second)
    stage.outputs.poll()
    assert stage.acked == []
    assert stage.agent.oldest_pending() is not None
    stage.producer.answer(first)
    stage.outputs.poll()
    assert stage.acked == [(0, 0), (0, 1)]
    assert stage.agent.oldest_pending() is None


# --- refusals --------------------------------------------------------------------------------


TOO_LARGE = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)


def refuse(stage: WorkerStage, producer: FakeProducer, error: KafkaError) -> None:
    """The broker refuses the last output `producer` sent; the agent answers."""

    async def refused() -> None:
        producer.answer(producer.sent[-1], error)
        stage.outputs.poll()
        await turns()

    asyncio.run(refused())


def test_a_record_refused_in_a_batch_for_size_is_sent_again_alone(decider: Decider) -> None:
    """The broker refuses a batch over the topic's size whole: a small record in it is not
    too large, and is stored once sent in a batch of its own."""
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(7)))
    refuse(stage, stage.producer, TOO_LARGE)
    assert len(stage.solo.sent) == 1
    assert stage.solo.sent[0].topic == stage.settings.validated_topic
    stage.solo.answer_all()
    stage.outputs.poll()
    assert stage.acked == [(0, 0)]
    assert stage.state.tally.routes["validated"] == 1


def test_a_decision_refused_alone_as_too_large_becomes_its_records_dead_letter(
    decider: Decider,
) -> None:
    stage = WorkerStage(decider)
    raw = claim(7)
    stage.run(stage.event(raw))
    decision = stage.producer.sent[0]
    assert decision.topic == stage.settings.validated_topic
    refuse(stage, stage.producer, TOO_LARGE)
    refuse(stage, stage.solo, TOO_LARGE)
    assert stage.acked == []  # not before the dead letter is stored
    letter = stage.producer.sent[1]
    assert letter.topic == stage.settings.dlq_topic
    document = DeadLetter.model_validate_json(letter.value)
    assert document.error.kind == "decision_too_large"
    assert document.raw_value.encode() == raw
    assert dict(letter.headers)["error_kind"] == b"decision_too_large"
    assert f"{len(decision.value):,} bytes" in document.error.message
    stage.producer.answer(letter)
    stage.outputs.poll()
    assert stage.acked == [(0, 0)]
    assert stage.producer.stored == [letter]  # one output for the record, no retry of it
    assert stage.state.tally.dead_letter_kinds["decision_too_large"] == 1
    assert not stage.stops


def test_a_dead_letter_refused_as_too_large_stops_the_worker(decider: Decider) -> None:
    stage = WorkerStage(decider)
    stage.run(stage.event(b"not json"))
    letter = stage.producer.sent[0]
    assert letter.topic == stage.settings.dlq_topic
    refuse(stage, stage.producer, TOO_LARGE)
    assert not stage.stops
    refuse(stage, stage.solo, TOO_LARGE)
    assert stage.stops == ["stop"]
    assert stage.fatal.status == EXIT_STATUS
    assert stage.fatal.reason is not None
    assert repr(stage.settings.dlq_topic) in stage.fatal.reason
    assert "MSG_SIZE_TOO_LARGE" in stage.fatal.reason
    assert len(stage.producer.sent) + len(stage.solo.sent) == 2  # never sent again
    assert stage.acked == []  # uncommitted: a restart with the topic fixed redoes it


@pytest.mark.parametrize("code", [KafkaError.INVALID_RECORD, KafkaError.INVALID_TIMESTAMP])
def test_a_permanent_refusal_is_not_retried(decider: Decider, code: int) -> None:
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(1)))
    stage.producer.answer(stage.producer.sent[0], KafkaError(code))
    stage.outputs.poll()
    asyncio.run(turns())
    assert len(stage.producer.sent) == 1
    assert stage.stops == ["stop"]
    assert stage.fatal.status == EXIT_STATUS
    assert KafkaError(code).name() in (stage.fatal.reason or "")
    assert stage.acked == []


def test_an_authorization_refusal_stops_the_worker_naming_the_topic(decider: Decider) -> None:
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(1)))
    stage.producer.answer(stage.producer.sent[0], KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    stage.outputs.poll()
    assert stage.stops == ["stop"]
    assert f"may not write topic {stage.settings.validated_topic!r}" in (stage.fatal.reason or "")
    assert len(stage.producer.sent) == 1
    assert stage.acked == []


def test_a_fatal_client_error_of_no_known_kind_stops_the_worker_naming_it(
    decider: Decider,
) -> None:
    stage = WorkerStage(decider)
    fatal = KafkaError(KafkaError._FATAL, "idempotent sequence lost", fatal=True)
    stage.fatal.error_callback(fatal)
    assert stage.stops == ["stop"]
    reason = stage.fatal.reason or ""
    assert "_FATAL: idempotent sequence lost" in reason
    assert "authorization" not in reason  # not a cause it does not know


def test_a_refusal_librdkafka_makes_at_once_gets_the_same_verdict(decider: Decider) -> None:
    stage = WorkerStage(decider)
    stage.producer.refuse_at_once = TOO_LARGE
    stage.solo.refuse_at_once = TOO_LARGE
    event = stage.event(claim(3))

    async def scenario() -> None:
        await stage.feed(event)
        stage.producer.refuse_at_once = None  # the dead letter is taken
        await turns()

    asyncio.run(scenario())
    assert [p.topic for p in stage.producer.sent] == [stage.settings.dlq_topic]
    stage.producer.answer_all()
    stage.outputs.poll()
    assert stage.acked == [(0, 0)]


def test_a_retriable_failure_is_sent_again_until_stored(decider: Decider) -> None:
    stage = WorkerStage(decider)

    async def scenario() -> None:
        await stage.feed(stage.event(claim(1)))
        for _ in range(3):
            stage.producer.answer(stage.producer.sent[-1], KafkaError(KafkaError._MSG_TIMED_OUT))
            stage.outputs.poll()
            await turns()
        assert stage.state.failing_since
        stage.producer.answer(stage.producer.sent[-1])
        stage.outputs.poll()

    asyncio.run(scenario())
    assert len(stage.producer.sent) == 4
    assert stage.acked == [(0, 0)]
    assert not stage.stops
    assert not stage.state.failing_since
    assert stage.metric("claims_output_send_errors_total") == 3


# --- callbacks that raise --------------------------------------------------------------------


def test_a_metric_that_raises_costs_a_count_not_the_acknowledgement(
    decider: Decider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(1)), stage.event(claim(2)))

    def broken(_: float) -> None:
        raise ValueError("a broken histogram")

    monkeypatch.setattr(stage.metrics.end_to_end_seconds, "observe", broken)
    stage.producer.answer_all()
    with caplog.at_level(logging.ERROR, logger="claims_stage.worker"):
        stage.outputs.poll()
    assert stage.acked == [(0, 0), (0, 1)]
    assert not stage.stops
    assert stage.metric("claims_worker_faults_total", {"part": "metrics"}) == 2
    faults = [r for r in caplog.records if "could not count" in r.getMessage()]
    assert [getattr(r, "event_id", None) for r in faults] == ["evt-1", "evt-2"]
    assert all("a broken histogram" not in r.getMessage() for r in caplog.records)


def test_an_acknowledgement_that_raises_stops_the_worker_and_keeps_the_record(
    decider: Decider, caplog: pytest.LogCaptureFixture
) -> None:
    stage = WorkerStage(decider)
    events = stage.run(stage.event(claim(1)), stage.event(claim(2)))
    events[0].ack_raises = RuntimeError("C34.90 in a message")
    stage.producer.answer_all()
    with caplog.at_level(logging.ERROR, logger="claims_stage.worker"):
        served = stage.outputs.poll()
    assert served == 2  # both reports served: nothing escaped the callback
    assert stage.stops == ["stop"]
    assert stage.fatal.status == FAULT_EXIT_STATUS
    assert "acknowledgement failed: RuntimeError" in (stage.fatal.reason or "")
    assert stage.acked == []  # the second waits behind the first, which was not acknowledged
    assert stage.agent.acks.in_flight() == 2
    assert all("C34.90" not in r.getMessage() for r in caplog.records)
    assert {getattr(r, "claim_id", None) for r in caplog.records} >= {"CLM-1"}


def test_the_poller_survives_a_callback_that_raises(decider: Decider) -> None:
    """A callback that raised inside poll() ended the poll loop: acknowledgements stopped
    and nothing said so. Now the fault is reported and the reports after it are served."""
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(1)), stage.event(claim(2)))
    first, second = stage.producer.sent
    stage.producer.poll_raises = RuntimeError("a callback bug")

    async def scenario() -> None:
        stage.outputs.start()
        await asyncio.sleep(0.02)
        stage.producer.answer(first)
        stage.producer.answer(second)
        await asyncio.sleep(0.02)
        poller = stage.outputs._poller
        assert poller is not None
        assert not poller.done()
        poller.cancel()

    asyncio.run(scenario())
    assert stage.acked == [(0, 0), (0, 1)]
    assert stage.stops == ["stop"]
    assert stage.fatal.status == FAULT_EXIT_STATUS
    assert stage.metric("claims_worker_faults_total", {"part": "poller"}) == 1


def test_a_fatal_error_raised_by_poll_stops_the_worker_naming_it(decider: Decider) -> None:
    """After a fatal error (fenced, say) librdkafka's poll raises it, at times before
    `error_cb` reports it: the stop names the error, not a fault of the poller."""
    stage = WorkerStage(decider)
    fenced = KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True)
    stage.producer.poll_raises = KafkaException(fenced)
    stage.outputs.poll()
    assert stage.stops == ["stop"]
    assert stage.fatal.status == EXIT_STATUS
    assert (stage.fatal.reason or "").startswith("fenced")
    assert stage.metric("claims_worker_faults_total", {"part": "poller"}) == 0


# --- revocation --------------------------------------------------------------------------------


def test_revocation_drops_the_revoked_partitions_pending_records(decider: Decider) -> None:
    stage = WorkerStage(decider)
    stage.run(*(stage.event(claim(n), partition=n % 2) for n in range(4)))
    revoked = [p for p in stage.producer.sent if b'"partition":0' in p.value]
    assert len(revoked) == 2
    stage.agent.drop_partitions({stage.event(b"", 0).message.tp})
    assert stage.agent.acks.in_flight() == 2
    stage.producer.answer_all()  # late reports of the revoked partition's outputs
    stage.outputs.poll()
    assert stage.acked == [(1, 0), (1, 1)]  # partition 0's records: for their new owner
    assert stage.agent.in_flight_bytes == 0


def test_revocation_stops_a_retry(decider: Decider) -> None:
    stage = WorkerStage(decider)

    async def scenario() -> None:
        await stage.feed(stage.event(claim(1)))
        stage.producer.answer(stage.producer.sent[0], KafkaError(KafkaError._MSG_TIMED_OUT))
        stage.outputs.poll()
        stage.agent.drop_partitions({stage.event(b"", 0).message.tp})
        await turns()

    asyncio.run(scenario())
    assert len(stage.producer.sent) == 1  # the retry did not run
    assert not stage.state.failing_since
    assert stage.acked == []


def test_a_partition_assigned_again_starts_afresh(decider: Decider) -> None:
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(1)))
    stale = stage.producer.sent[0]
    stage.agent.drop_partitions({stage.event(b"", 0).message.tp})
    stage.offsets[0] = 0  # the new assignment starts again at the committed offset
    stage.run(stage.event(claim(1)))
    fresh = stage.producer.sent[1]
    stage.producer.answer(stale)
    stage.outputs.poll()
    assert stage.acked == []
    stage.producer.answer(fresh)
    stage.outputs.poll()
    assert stage.acked == [(0, 0)]


# --- bounded memory and health ----------------------------------------------------------------


def test_the_agent_waits_for_room_when_in_flight_bytes_pass_the_budget(
    decider: Decider,
) -> None:
    stage = WorkerStage(decider, in_flight_bytes=1)
    taken: list[int] = []

    async def scenario() -> None:
        async def feed() -> None:
            for n in range(3):
                await stage.agent.handle(stage.event(claim(n)), None)
                taken.append(n)

        feeding = asyncio.ensure_future(feed())
        await turns()
        assert taken == []  # the first record is over the budget: nothing more is taken
        assert len(stage.producer.sent) == 1
        for expected in (1, 2, 3):
            stage.producer.answer_all()
            stage.outputs.poll()
            await turns()
            assert len(taken) == expected
        await feeding

    asyncio.run(scenario())
    assert stage.acked == [(0, 0), (0, 1), (0, 2)]


def test_a_full_librdkafka_queue_waits_for_that_record(decider: Decider) -> None:
    stage = WorkerStage(decider)
    stage.producer.full = True

    async def scenario() -> None:
        feeding = asyncio.ensure_future(stage.feed(stage.event(claim(1))))
        await asyncio.sleep(0.01)
        assert not feeding.done()
        stage.producer.full = False
        await feeding

    asyncio.run(scenario())
    assert len(stage.producer.sent) == 1


def test_health_turns_503_when_acknowledgements_stop_while_outputs_wait(
    decider: Decider,
) -> None:
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(1)))
    oldest = stage.agent.oldest_pending()
    assert oldest is not None
    state = stage.state
    assert state.health({0}, oldest + 1, oldest)[0]
    ok, reason = state.health({0}, oldest + STALL_SECONDS + 1, oldest)
    assert not ok
    assert reason.startswith("acknowledgements stalled")
    stage.producer.answer_all()
    stage.outputs.poll()
    assert stage.agent.oldest_pending() is None


def test_a_failure_reported_by_the_last_flush_leaves_the_record_uncommitted(
    decider: Decider,
) -> None:
    """After Faust has stopped, the final flush serves reports outside the event loop: a
    failed output is not retried then, and its record stays uncommitted, without a fault."""
    stage = WorkerStage(decider)
    stage.run(stage.event(claim(1)))
    stage.producer.answer_all(KafkaError(KafkaError._MSG_TIMED_OUT))
    stage.outputs.flush()
    assert stage.acked == []
    assert not stage.stops
    assert len(stage.producer.sent) == 1
