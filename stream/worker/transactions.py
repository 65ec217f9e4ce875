"""Exactly-once processing: a fetched batch's outputs and its input offsets in one transaction.

With `CLAIMS_PROCESSING_GUARANTEE=exactly_once` the output producer is transactional and the
input consumer commits nothing itself. For each fetched batch (`RecordBatch`) the agent
begins a transaction, decides the records and produces their outputs into it, then sends
the offsets after the batch's records with the consumer group's metadata
(`send_offsets_to_transaction`) and commits. A read_committed consumer of the output topics
sees the batch's outputs once the offsets that say they were made are committed too, and
never otherwise: a crash before the commit leaves an open transaction that the broker
aborts (at once when the restarted worker initialises its transactional id, else after
`transaction_timeout`), and the batch is decided again from the committed offsets.

- Transaction size: one fetched batch (the fetch is poll-then-consume, so batches stay
  small at low load and grow to `batch_size` under load on their own). A batch whose
  outputs pass the in-flight budget (`in_flight_mib`) is split: the records taken so far
  are committed, the rest goes on in a new transaction, so memory stays bounded.
- Failure: a delivery refused, a commit the broker refused or that timed out: the
  transaction is aborted, the consumer's position goes back to the first records it held
  (a seek), and they are fetched and decided again in a new transaction after a backoff.
  The consumer polls meanwhile, so a rebalance the failure came from (the group's
  generation moved on while a broker restarted) is served before the next attempt. A refusal that
  retrying cannot cure stops the worker as in at-least-once mode; an output refused for its
  size is sent alone in the next attempt, and if refused alone, replaced by its record's
  `decision_too_large` dead letter.
- Fenced (a newer producer with the same transactional id): a fatal error; the worker
  stops (`FatalStop.fenced`, exit status 2) without committing anything more.
- Rebalance: librdkafka runs the revocation on the fetching thread, and the consumer waits
  (`wait_empty`, half the session timeout) for the records in the open transaction. The
  agent stops taking records of a batch once a rebalance began, and commits the
  transaction with the records it took, before the partitions go; what it had not taken
  goes to the partitions' next owner from those offsets. A transaction that still commits
  after the group moved on is refused by the group coordinator (KIP-447: the group's
  generation is in the metadata sent with the offsets) and aborted.
- Blocking calls (init, send offsets, commit, abort, flush) run on a thread of their own,
  so the event loop keeps serving delivery reports, web pages and timers.

The transactional id is `<app id>-<instance id>` (`Settings.transactional_id`). With
librdkafka 1.9+ and brokers 2.5+ (KIP-447), zombie fencing across rebalances comes from
the group metadata, so the id need only be stable per worker instance: a worker restarted
under the same instance id aborts its predecessor's open transaction at once
(`init_transactions` bumps the producer epoch); two live workers with the same id fence
each other, so each running worker needs its own. A worker whose name changes (a
Kubernetes Deployment's pod) cannot fence its dead predecessor by id: the predecessor's
open transaction holds read_committed consumers of its partitions back until the broker
aborts it after `transaction_timeout`, and nothing is duplicated or lost meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from faust.types import TP

from stream.core.contracts import Route
from stream.core.decision import Output
from stream.ops.metrics import StageMetrics
from stream.worker.fatal import FAULT_EXIT_STATUS, FatalStop
from stream.worker.outputs import PERMANENT_REFUSALS, TOO_LARGE
from stream.worker.transport.records import InputRecord, RecordBatch

log = logging.getLogger("claims_stage.worker")

RETRY_FIRST_BACKOFF = 0.2
RETRY_MAX_BACKOFF = 10.0
CALL_TRIES = 5
"""Tries of one transactional call whose error librdkafka calls retriable."""
WATCHDOG_MARGIN = 10.0
"""Seconds past a transactional call's own timeout before the worker stops waiting for it."""
SHUTDOWN_ABORT_TIMEOUT = 5.0
"""Seconds an abort may block the event loop when the agent is cancelled (the stop)."""


AbortReason = Literal["output_refused", "commit_failed", "revoked", "stopping"]
"""As `stream.ops.metrics.TRANSACTION_ABORT_REASONS`."""

SENT_ALONE, DEAD_LETTER = 1, 2
"""What a record refused for its size gets in the next attempt."""

Decide = Callable[[InputRecord], tuple[Output, float]]
Counted = Callable[[InputRecord, Output, float], None]
LetterFor = Callable[[InputRecord, Output, str], Output]


class Sent:
    """One record's output in the open transaction, and what the broker said of it."""

    __slots__ = ("error", "output", "record", "seconds")

    def __init__(self, record: InputRecord, output: Output, seconds: float) -> None:
        self.record = record
        self.output = output
        self.seconds = seconds
        self.error: KafkaError | None = None

    def report(self, error: KafkaError | None, message: Any) -> None:
        """librdkafka's delivery report: on the event loop (the poller) or on the thread
        that commits (its flush), so it only records."""
        if error is not None:
            self.error = error


class TransactionError(Exception):
    """A transactional call failed: `error` says whether to abort or stop."""

    def __init__(self, error: KafkaError, reason: AbortReason) -> None:
        super().__init__(error.name())
        self.error = error
        self.reason = reason


class Transactions:
    """The exactly-once path of the agent: one transaction per fetched batch.

    `producer` is librdkafka's transactional producer (with `transactional.id`);
    `group_metadata` gives the input consumer's `consumer_group_metadata()` when a
    transaction commits; `decide`, `counted` and `letter_for` are the agent's.
    """

    def __init__(
        self,
        producer: Any,
        topics: dict[Route, str],
        group_metadata: Callable[[], Any],
        metrics: StageMetrics,
        fatal: FatalStop,
        max_bytes: int,
        timeout: float,
        rewind: Callable[[dict[TP, int]], None],
    ) -> None:
        self.producer = producer
        self.rewind = rewind
        """Sets the consumer's position back to these offsets (they are fetched again)."""
        self.failures = 0
        """Transactions that did not commit, in a row (the backoff before the next)."""
        self.topics = topics
        self.group_metadata = group_metadata
        self.metrics = metrics
        self.fatal = fatal
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.ready = False
        self.open: list[Sent] = []
        """The records of the open transaction (what a revocation waits for)."""
        self.opened_at: float | None = None
        self.refused_for_size: dict[tuple[TP, int], int] = {}
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="rdkafka-txn")

    # --- a batch --------------------------------------------------------------------------------

    async def decide_batch(
        self, batch: RecordBatch, decide: Decide, counted: Counted, letter_for: LetterFor
    ) -> None:
        """Every record of the batch decided and committed with its offset, in one
        transaction or, past the in-flight budget, in several; stops where the batch stops
        being this worker's (a rebalance) or the worker stops."""
        start = 0
        while start < len(batch.records) and self.fatal.reason is None:
            sends = await self.transact(batch, start, decide, letter_for)
            if not sends:
                return
            for sent in sends:
                counted(sent.record, sent.output, sent.seconds)
            start += len(sends)

    async def transact(
        self, batch: RecordBatch, start: int, decide: Decide, letter_for: LetterFor
    ) -> list[Sent]:
        """One transaction over records from `start`; returns its records once committed.
        None when it did not commit: the batch's records from `start` are given back to the
        consumer (`rewind`: its position goes back to them) and fetched and decided again in
        a new transaction, after a backoff; or the rest of the batch is no longer for this
        worker (a rebalance, the stop). Retrying from the consumer, not from memory, lets it
        poll meanwhile: a transaction refused for the group's generation commits only once
        the consumer has rejoined the group, inside a poll."""
        if self.failures:
            await asyncio.sleep(
                min(RETRY_FIRST_BACKOFF * 2 ** (self.failures - 1), RETRY_MAX_BACKOFF)
            )
        if self.fatal.reason is not None or not batch.current:
            return []
        try:
            sends = await self.attempt(batch, start, decide, letter_for)
        except TransactionError as failure:
            self.failures += 1
            await self.failed(failure)
            if self.fatal.reason is None and batch.current:
                self.rewind(first_offsets(batch.records[start:]))
            return []
        except asyncio.CancelledError:
            self.abort_now()
            raise
        if sends:
            self.failures = 0
        return sends

    async def attempt(
        self, batch: RecordBatch, start: int, decide: Decide, letter_for: LetterFor
    ) -> list[Sent]:
        """Begin, produce, send the offsets, commit; raises `TransactionError`."""
        await self.init()
        began = time.perf_counter()
        self._call(self.producer.begin_transaction, "commit_failed")
        self.opened_at = time.time()
        sends = self.open = []
        await self.produce_run(batch, start, decide, letter_for)
        if not sends:  # a rebalance began before the first record: nothing to commit
            await self.abort("revoked")
            return []
        offsets = [
            TopicPartition(tp.topic, tp.partition, offset)
            for tp, offset in next_offsets(sends).items()
        ]
        await self._commit(offsets, self.group_metadata())
        self.metrics.transactions.labels("committed").inc()
        self.metrics.transaction_seconds.observe(time.perf_counter() - began)
        self.open, self.opened_at = [], None
        for sent in sends:
            self.refused_for_size.pop((sent.record.tp, sent.record.offset), None)
        return sends

    async def produce_run(
        self, batch: RecordBatch, start: int, decide: Decide, letter_for: LetterFor
    ) -> None:
        """Decide and produce records from `start` until the batch ends, stops being
        current, or its outputs pass the in-flight budget."""
        size = 0
        records = batch.records
        for n in range(start, len(records)):
            if not batch.current or size > self.max_bytes:
                return
            record = records[n]
            output, seconds = decide(record)
            special = self.refused_for_size.get((record.tp, record.offset))
            if special == DEAD_LETTER:
                output = letter_for(record, output, self.topics[output.route])
            sent = Sent(record, output, seconds)
            self.open.append(sent)
            size += len(output.value) + len(record.value or b"")
            await self.produce(sent, alone=special == SENT_ALONE)
            if n % 64 == 63:
                await asyncio.sleep(0)  # the poller, the web pages and the timers run

    async def produce(self, sent: Sent, alone: bool) -> None:
        """Queue one output in the transaction; waits while librdkafka's queue is full. An
        output sent alone is flushed before and after, so it is a batch of its own."""
        if alone:
            await self._in_thread(self.producer.flush, self.timeout)
        output = sent.output
        while True:
            try:
                self.producer.produce(
                    self.topics[output.route],
                    value=output.value,
                    key=output.key,
                    headers=output.headers,
                    on_delivery=sent.report,
                )
                break
            except BufferError:
                await asyncio.sleep(0.002)  # the poller serves delivery reports meanwhile
            except KafkaException as error:  # refused at once: as if the broker had
                sent.error = error.args[0]
                break
        if alone:
            await self._in_thread(self.producer.flush, self.timeout)

    # --- the blocking calls, on the transactions' thread ----------------------------------------

    async def init(self) -> None:
        """`init_transactions`, once: fences (aborts) what an earlier producer with the same
        transactional id left open."""
        if not self.ready:
            await self._retrying(
                lambda: self.producer.init_transactions(self.timeout), "commit_failed"
            )
            self.ready = True

    async def start(self) -> None:
        """Before the consumer joins the group: `init_transactions`. A failure here that is
        not fatal is tried again with the first batch."""
        try:
            await self.init()
        except TransactionError as failure:
            if not self.fatal.kafka_error(failure.error):
                log.warning(
                    "transactions not initialised yet (%s); tried again with the first batch",
                    failure.error.name(),
                )

    async def _commit(self, offsets: list[TopicPartition], metadata: Any) -> None:
        await self._retrying(
            lambda: self.producer.send_offsets_to_transaction(offsets, metadata, self.timeout),
            "commit_failed",
        )
        await self._retrying(
            lambda: self.producer.commit_transaction(self.timeout), "commit_failed"
        )

    async def _retrying(self, call: Callable[[], Any], reason: AbortReason) -> None:
        """A transactional call on the transactions' thread, tried again while librdkafka
        calls its error retriable; raises `TransactionError`."""
        for n in range(CALL_TRIES):
            try:
                await self._blocking(call, reason)
                return
            except KafkaException as exception:
                error: KafkaError = exception.args[0]
                if error.fatal() or error.txn_requires_abort() or not error.retriable():
                    raise TransactionError(error, reason) from None
                if n == CALL_TRIES - 1:
                    raise TransactionError(error, reason) from None
                log.warning("transaction call failed (%s); asking again", error.name())
                await asyncio.sleep(min(RETRY_FIRST_BACKOFF * 2**n, RETRY_MAX_BACKOFF))

    async def _blocking(self, call: Callable[[], Any], reason: AbortReason) -> None:
        """Run a call that blocks, within its timeout and a margin. librdkafka's
        `send_offsets_to_transaction` can block past its own timeout when the group's
        coordinator went away (confluentinc/librdkafka#5456, #5511; the producer's
        `connections.max.idle.ms` in `stream.worker.outputs.transactional` makes it ask
        again). A call blocked past the margin all the same leaves the producer unusable,
        so the worker stops (status 1, the cause named); its restart under the same
        instance id aborts the open transaction, and nothing is lost or repeated."""
        pending = self._in_thread(call)
        try:
            await asyncio.wait_for(asyncio.shield(pending), self.timeout + WATCHDOG_MARGIN)
        except TimeoutError:
            self.fatal.stop(
                f"a transactional call did not return within {self.timeout + WATCHDOG_MARGIN:.0f}"
                " s (librdkafka blocks there when the group's coordinator went away); the "
                "worker stops so that its restart aborts the open transaction",
                FAULT_EXIT_STATUS,
            )
            raise TransactionError(
                KafkaError(KafkaError._TIMED_OUT, "transactional call blocked"), reason
            ) from None

    def _call(self, call: Callable[[], Any], reason: AbortReason) -> None:
        try:
            call()
        except KafkaException as exception:
            raise TransactionError(exception.args[0], reason) from None

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    # --- failures -------------------------------------------------------------------------------

    async def failed(self, failure: TransactionError) -> None:
        """A transaction that did not commit: stop (fenced, or a refusal that retrying
        cannot cure) or abort it, so the records are decided again."""
        error = failure.error
        if self.fatal.reason is not None or self.fatal.kafka_error(error):
            # stopping (fenced, refused for good, a call that blocked): nothing more
            self.open, self.opened_at = [], None
            return
        reason = failure.reason
        if any(sent.error is not None for sent in self.open):
            reason = "output_refused"
            self.judge(self.open)
        log.warning(
            "transaction of %d records not committed (%s); it is aborted and its records "
            "decided again",
            len(self.open),
            error.name(),
        )
        await self.abort(reason)

    def judge(self, sends: list[Sent]) -> None:
        """The refused outputs of a failed transaction: what their next attempt sends, or
        the fatal stop for a refusal that retrying cannot cure."""
        for sent in sends:
            error = sent.error
            if error is None:
                continue
            self.metrics.output_send_errors.inc()
            topic = self.topics[sent.output.route]
            if self.fatal.kafka_error(error, topic):
                return
            name = error.name()
            where = (sent.record.tp, sent.record.offset)
            state = self.refused_for_size.get(where, 0)
            if name in TOO_LARGE and state == 0:
                self.refused_for_size[where] = SENT_ALONE
            elif name in TOO_LARGE and sent.output.route != "dead_letter":
                self.refused_for_size[where] = DEAD_LETTER
            elif name in TOO_LARGE or name in PERMANENT_REFUSALS:
                self.fatal.refused(error, topic)
                return

    async def abort(self, reason: AbortReason) -> None:
        """Abort the open transaction (its outputs are never visible to read_committed
        consumers)."""
        self.metrics.transactions.labels("aborted").inc()
        self.metrics.transaction_aborts.labels(reason).inc()
        self.open, self.opened_at = [], None
        try:
            await self._retrying(lambda: self.producer.abort_transaction(self.timeout), reason)
        except TransactionError as failure:
            if self.fatal.kafka_error(failure.error) or failure.error.code() == KafkaError._STATE:
                return  # stopping already, or nothing was open
            # librdkafka begins no transaction while one is still aborting: every next
            # attempt would fail (_CONFLICT) and the worker stall. A restart aborts it.
            self.fatal.stop(
                f"the open transaction could not be aborted ({failure.error.name()}, "
                f"{CALL_TRIES} tries); the worker stops so that its restart aborts it",
                FAULT_EXIT_STATUS,
            )

    def abort_now(self) -> None:
        """The agent is cancelled (the worker stops): abort what is open, briefly."""
        if not self.open:
            return
        self.metrics.transactions.labels("aborted").inc()
        self.metrics.transaction_aborts.labels("stopping").inc()
        self.open, self.opened_at = [], None
        try:
            self.producer.abort_transaction(SHUTDOWN_ABORT_TIMEOUT)
        except KafkaException as error:
            log.warning("transaction abort at stop failed (%s)", error.args[0].name())

    # --- what the consumer and the health page ask --------------------------------------------

    def in_flight(self, tps: Any = None) -> int:
        """Records of these partitions in the open transaction."""
        if tps is None:
            return len(self.open)
        wanted = set(tps)
        return sum(1 for sent in self.open if sent.record.tp in wanted)


def first_offsets(records: list[InputRecord]) -> dict[TP, int]:
    """Per partition, the offset of its first record: where to fetch again from."""
    offsets: dict[TP, int] = {}
    for record in records:
        offsets.setdefault(record.tp, record.offset)
    return offsets


def next_offsets(sends: list[Sent]) -> dict[TP, int]:
    """Per partition, the offset after the last record sent: what the transaction commits."""
    offsets: dict[TP, int] = {}
    for sent in sends:
        offsets[sent.record.tp] = sent.record.offset + 1
    return offsets
