"""Faust's consumer on librdkafka, fetching in batches.

Faust's own consumers hand records to the conductor one at a time (`_drain_messages` waits
on several futures per record) and its aiokafka driver parses fetches in Python on a second
thread that shares the GIL. This consumer replaces that loop and keeps the rest of Faust:

- One thread calls librdkafka's `consume(num_messages, timeout)` (`BatchReader.fetch`),
  which waits and reads with the GIL released. The event loop turns the messages into a
  `RecordBatch` and passes it to Faust's conductor as the value of one message, so Faust's
  conductor, channel, stream and agent carry a batch per event.
- Acknowledgement: the agent acknowledges each record once its output is stored, in offset
  order (`stream.worker.acks`); the committable offset of a partition is the last
  acknowledged offset plus one. Faust's commit timer commits it through librdkafka, on a
  thread of its own, synchronously.
- Rebalance: librdkafka runs `on_assign` and `on_revoke` inside `consume()`, on the fetching
  thread. The revocation is done by the event loop while that thread waits: Faust's own
  handling (flow stopped, channels cleared), a bounded wait for the revoked partitions'
  outputs (`wait_empty`), Faust's `on_partitions_revoked` signal (the agent drops what still
  waits), then the fetching thread commits what was acknowledged and returns, so the
  partitions go to their new owner with their offsets committed.
- Shutdown: the last commit, then the client closed on the fetching thread (a close runs the
  revocation callbacks on the calling thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from confluent_kafka import Consumer as LibrdkafkaConsumer
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from faust.transport.consumer import Consumer, RecordMap
from faust.types import TP, ConsumerMessage
from mode import Service

from stream.kafka import clients
from stream.worker.transport.hooks import StageHooks, hooks_of
from stream.worker.transport.reader import BatchReader
from stream.worker.transport.records import RecordBatch

log = logging.getLogger("claims_stage.worker")

REBALANCE_WAIT_FRACTION = 0.5
"""Of the session timeout: how long a revocation waits for outputs still in flight before
their records are dropped (and decided again by the partitions' new owner)."""
REQUEST_TIMEOUT = 30.0


def consumer_config(hooks: StageHooks, group: str, session_timeout: float) -> dict[str, Any]:
    """librdkafka's settings for the worker's input: memory bounded, offsets by hand."""
    settings = hooks.settings
    config: dict[str, Any] = {
        **clients.connection(settings),
        "group.id": group,
        "client.id": f"{group}-worker",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": int(session_timeout * 1000),
        "heartbeat.interval.ms": int(min(3.0, session_timeout / 3) * 1000),
        "max.poll.interval.ms": 300_000,
        # Bytes fetched ahead of the agent: librdkafka's queue, and what one fetch asks.
        "queued.max.messages.kbytes": settings.fetch_queue_mib * 1024,
        "fetch.max.bytes": settings.fetch_queue_mib * 1024 * 1024 // 2,
        "fetch.message.max.bytes": 1024 * 1024,
        "enable.partition.eof": False,
    }
    if settings.exactly_once:  # librdkafka's default, said: aborted input is never decided
        config["isolation.level"] = "read_committed"
    if hooks.on_error is not None:
        config["error_cb"] = hooks.on_error
    return config


class BatchConsumer(Consumer):
    """Faust's `Consumer` on librdkafka; records reach the agent a fetched batch at a time."""

    consumer_stopped_errors = (KafkaException,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hooks = hooks_of(self.app)
        self._client: Any = None
        self.reader: BatchReader | None = None
        self._fetching = ThreadPoolExecutor(1, thread_name_prefix="rdkafka-fetch")
        self._asking = ThreadPoolExecutor(1, thread_name_prefix="rdkafka-ask")
        self._closing = False
        self._rebalancing = False
        """The fetching thread is inside a rebalance callback."""
        self._lost = False

    # --- the client ----------------------------------------------------------------------------

    async def on_start(self) -> None:
        if self.hooks.before_start is not None:
            await self.hooks.before_start()
        conf = self.app.conf
        config = consumer_config(self.hooks, conf.id, conf.broker_session_timeout)
        config["on_commit"] = self._commit_done
        self._client = LibrdkafkaConsumer(config)
        settings = self.hooks.settings
        self.reader = BatchReader(self._client, settings.batch_size, settings.batch_wait_ms / 1000)

    def _commit_done(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if self.reader is not None:
            self.reader.commit_done(error, partitions)

    def rewind(self, offsets: dict[TP, int]) -> None:
        """Exactly-once: fetch these partitions again from these offsets (their transaction
        was aborted). librdkafka drops what it had fetched past them (the seek is a barrier);
        a partition revoked meanwhile is its new owner's."""
        for tp, offset in self._ensure_reader().rewind(offsets).items():
            try:
                self._client.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as error:
                log.warning("could not seek back (%s)", error.args[0].name())

    def group_metadata(self) -> Any:
        """The group's metadata for `send_offsets_to_transaction` (exactly_once): its
        generation fences a transaction of a worker the group has moved on from."""
        return self._client.consumer_group_metadata()

    def _ensure_reader(self) -> BatchReader:
        if self.reader is None:
            raise RuntimeError("the consumer has not started")
        return self.reader

    async def subscribe(self, topics: Iterable[str]) -> None:
        self._client.subscribe(
            list(topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    async def on_stop(self) -> None:
        await super().on_stop()  # waits for what is in flight, and commits
        self._closing = True  # no fetch after the one under way
        if self._client is not None:
            await self._on_thread(self._fetching, self._client.close)
        self._fetching.shutdown(wait=False)
        self._asking.shutdown(wait=False)

    def close(self) -> None:
        """Faust asks this on a rebalance after the stop began: the client closes in
        `on_stop`, on the fetching thread."""
        self._closing = True

    async def _on_thread(self, pool: ThreadPoolExecutor, call: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, call, *args)

    # --- fetching ---------------------------------------------------------------------------------

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetcher task, which Faust starts once partitions are assigned: this
        consumer fetches in a task of its own (`_fetch`), from its start, since librdkafka
        joins the group and assigns partitions inside consume()."""
        while not (self._stopped.is_set() or fetcher._stopped.is_set()):
            await asyncio.sleep(1.0)

    @Service.task
    async def _fetch(self) -> None:
        """Batches from librdkafka to Faust's conductor, one at a time."""
        reader = self._ensure_reader()
        while not (self.should_stop or self._closing):
            try:
                messages, generation = await self._on_thread(self._fetching, reader.fetch)
            except RuntimeError:  # the client was closed: the consumer is stopping
                return
            fetched = reader.batch_of(messages, generation)
            for error in fetched.errors:
                self._consumer_error(error)
            batch = fetched.batch
            if batch is not None and await self._deliverable(batch):
                await self._deliver_in_turn(batch)

    async def _deliver_in_turn(self, batch: RecordBatch) -> None:
        """Hand the batch over; with exactly_once, wait until the agent is done with it
        before fetching again. Fetching ahead would cut what arrives during a transaction
        into small batches queued for the agent, each a transaction of its own, whose fixed
        cost (about 15 ms) then adds up; fetched after the commit, the next batch holds all
        of it (up to `batch_size`). The wait ends early when a rebalance or the stop begins
        (the agent then leaves the batch)."""
        if not self.hooks.settings.exactly_once:
            await self._deliver(batch)
            return
        finished = batch.finished = asyncio.Event()
        await self._deliver(batch)
        while not finished.is_set() and batch.current and not self.should_stop:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 0.1)

    async def _deliverable(self, batch: RecordBatch) -> bool:
        """Wait until Faust lets records flow to the batch's partitions (after a rebalance
        it pauses them until its recovery is done); False if the batch is no longer for
        this worker. No rebalance can begin meanwhile: its callbacks need consume()."""
        partitions = {record.tp for record in batch.records}
        while not self.flow_active or partitions & self._paused_partitions:
            if self.should_stop or not batch.current:
                return False
            if not self.flow_active:
                await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
            else:
                await asyncio.sleep(0.01)
        return batch.current

    async def _deliver(self, batch: RecordBatch) -> None:
        """Hand one batch to Faust's conductor as the value of one message."""
        app = self.app
        monitor = app.monitor
        counts = batch.counts()
        for tp, (count, last) in counts.items():
            monitor.track_tp_end_offset(tp, self.highwater(tp))
            bulk = getattr(monitor, "on_records_in", None)
            if bulk is not None:
                bulk(tp, count, last)
        first = batch.records[0]
        message = ConsumerMessage(
            first.topic,
            first.partition,
            first.offset,
            time.time(),
            0,
            [],
            None,
            cast(Any, batch),
            None,
            0,
            batch.size,
            first.tp,
            generation_id=app.consumer_generation_id,
        )
        message.tracked = True  # counted above, record by record; not one of Faust's
        await self.callback(message)

    def _consumer_error(self, error: KafkaError) -> None:
        log.warning("input consumer error (%s: %s)", error.name(), error.str())
        if self.hooks.on_error is not None:
            self.hooks.on_error(error)

    # --- rebalance (librdkafka's callbacks, on the fetching thread) ------------------------------

    def _on_assign(self, client: Any, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", _numbers(partitions))
        assigned = self._ensure_reader().assigned(partitions)
        client.assign(partitions)
        if not self.app.rebalancing:  # the first assignment comes without a revocation
            self.app.on_rebalance_start()
        self.app.consumer_generation_id = self._ensure_reader().generation
        self._on_loop(self.on_partitions_assigned(assigned, self._ensure_reader().generation))

    def _on_revoke(self, client: Any, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked: %s", _numbers(partitions))
        reader = self._ensure_reader()
        revoked = reader.revoking(partitions)
        self._rebalancing = True
        try:
            if not self._closing:
                self.app.on_rebalance_start()
                self._on_loop(self.on_partitions_revoked(revoked))
            final = reader.revoked(revoked)
            if not self.hooks.settings.exactly_once:  # else the transactions commit them
                reader.commit_now(final)
        except KafkaException as error:
            log.warning("could not commit revoked partitions' offsets (%s)", error.args[0].name())
        finally:
            self._rebalancing = False

    def _on_lost(self, client: Any, partitions: list[TopicPartition]) -> None:
        """Partitions taken away without a revocation (the session expired): nothing may be
        committed for them any more."""
        log.warning("partitions lost (the group's session expired): %s", _numbers(partitions))
        reader = self._ensure_reader()
        lost = reader.revoking(partitions)
        self._rebalancing = self._lost = True
        try:
            if not self._closing:
                self.app.on_rebalance_start()
                self._on_loop(self.on_partitions_revoked(lost))
            reader.revoked(lost)
        finally:
            self._rebalancing = self._lost = False

    def _on_loop(self, work: Any) -> None:
        """Run a rebalance step on the event loop and wait for it (this thread holds the
        rebalance until it returns), a session timeout at most."""
        step = asyncio.run_coroutine_threadsafe(work, self.loop)
        began = time.monotonic()
        try:
            step.result(timeout=self.app.conf.broker_session_timeout)
        except TimeoutError:
            log.warning("a rebalance step is still running after the session timeout")
        except Exception as error:
            log.error("a rebalance step failed (%s)", type(error).__name__)
        else:
            log.debug("rebalance step done in %.3f s", time.monotonic() - began)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Faust's revocation (flow stopped, bounded wait for outputs, the agent's drop)."""
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        await self._on_partitions_revoked(revoked)

    # --- waiting and committing ------------------------------------------------------------------

    async def wait_empty(self) -> None:
        """Wait, within half the session timeout, for every record handed to the agent to
        be acknowledged; what still waits is then left to the partitions' next owner (the
        agent drops it on Faust's revocation signal). Nothing is committed here: after a
        revocation the fetching thread commits, and at the stop the client's close does."""
        reader = self._ensure_reader()
        if self._lost:
            return  # nothing of these partitions can be committed any more
        deadline = time.monotonic() + self.app.conf.broker_session_timeout * REBALANCE_WAIT_FRACTION
        while not self.should_stop and self._pending(reader.held) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def _pending(self, tps: set[TP]) -> int:
        pending = self.hooks.pending
        return pending(tps) if pending is not None else 0

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        committable = self._ensure_reader().committable()
        return iter(
            [tp for tp in committable if topics is None or tp in topics or tp.topic in topics]
        )

    def _new_offset(self, tp: TP) -> int | None:
        return self._ensure_reader().committable([tp]).get(tp)

    def _should_commit(self, tp: TP, offset: int) -> bool:
        return True  # `committable` has compared with what was committed

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        held = self._ensure_reader().held
        committable = {tp: offset for tp, offset in offsets.items() if tp in held}
        if not committable:
            return False
        if not await self._commit(committable):
            return False
        self._committed_offset.update(committable)
        self.app.monitor.on_tp_commit(committable)
        return True

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        if self._rebalancing:
            return False  # the revocation commits what its partitions acknowledged
        try:
            self._ensure_reader().commit(dict(offsets))
        except KafkaException as error:
            log.warning("offset commit refused (%s); it is asked again", error.args[0].name())
            return False
        return True

    def ack(self, message: Any) -> bool:
        """A Faust message acknowledged: only a batch the stream skipped (a rebalance began
        before the agent took it); its records are read again, nothing to record."""
        message.acked = True
        return False

    # --- what Faust asks of a consumer -------------------------------------------------------------

    def assignment(self) -> set[TP]:
        return self.reader.held if self.reader is not None else set()

    def highwater(self, tp: TP) -> int:
        _, high = self._client.get_watermark_offsets(
            TopicPartition(tp.topic, tp.partition), cached=True
        )
        return int(high)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        found: dict[TP, int] = await self._on_thread(self._asking, self._watermarks, partitions, 1)
        return found

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        found: dict[TP, int] = await self._on_thread(self._asking, self._watermarks, partitions, 0)
        return found

    def _watermarks(self, partitions: tuple[TP, ...], which: int) -> dict[TP, int]:
        return {
            tp: int(
                self._client.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=REQUEST_TIMEOUT
                )[which]
            )
            for tp in partitions
        }

    async def position(self, tp: TP) -> int | None:
        [found] = self._client.position([TopicPartition(tp.topic, tp.partition)])
        return int(found.offset) if found.offset >= 0 else None

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """The committed offsets of the partitions held, without a seek: librdkafka reads a
        new assignment from there already, and seeking again could hand a record over twice."""
        held = list(self.assignment())
        if not held:
            return {}
        found = await self._committed([TopicPartition(tp.topic, tp.partition) for tp in held])
        offsets = {TP(p.topic, p.partition): int(p.offset) for p in found if p.offset >= 0}
        self._ensure_reader().committed(offsets)
        return offsets

    async def _committed(self, partitions: list[TopicPartition]) -> Any:
        """The group's committed offsets, asked again while the broker does not answer in
        time: with exactly_once the answer waits while a transaction holding offsets of
        these partitions is open (a worker that died with one under another instance id:
        until the broker aborts it, `CLAIMS_TRANSACTION_TIMEOUT`)."""
        while True:
            try:
                return await self._on_thread(
                    self._asking, self._client.committed, partitions, REQUEST_TIMEOUT
                )
            except KafkaException as error:
                if error.args[0].code() != KafkaError._TIMED_OUT or self.should_stop:
                    raise
                log.warning(
                    "committed offsets not readable yet (a transaction holding them is "
                    "still open); asking again"
                )

    async def _seek(self, partition: TP, offset: int) -> None:
        self._client.seek(TopicPartition(partition.topic, partition.partition, offset))

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        for tp, offset in partitions.items():
            await self._seek(tp, offset)

    def topic_partitions(self, topic: str) -> int | None:
        return None

    def key_partition(
        self, topic: str, key: bytes | None, partition: int | None = None
    ) -> int | None:
        return partition  # librdkafka places keys itself (murmur2, as Java clients do)

    async def create_topic(self, topic: str, *args: Any, **kwargs: Any) -> None:
        log.warning("the stage creates its topics beforehand; not creating %r", topic)

    def _new_topicpartition(self, topic: str, partition: int) -> TP:
        return TP(topic, partition)

    def _to_message(self, tp: TP, record: Any) -> ConsumerMessage:
        kind, stamp = record.timestamp()
        key, value = record.key(), record.value()
        return ConsumerMessage(
            record.topic(),
            record.partition(),
            record.offset(),
            cast(float, stamp / 1000.0 if kind else None),
            kind,
            record.headers() or [],
            key,
            value,
            None,
            len(key or b""),
            len(value or b""),
            tp,
            generation_id=self.app.consumer_generation_id,
        )

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> RecordMap:
        """Faust's record-at-a-time path (unused by the worker, which reads in batches)."""
        messages = await self._on_thread(
            self._fetching, self._client.consume, self.hooks.settings.batch_size, timeout
        )
        records: dict[TP, list[Any]] = {}
        for message in messages:
            if message.error() is None:
                records.setdefault(TP(message.topic(), message.partition()), []).append(message)
        return records

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock detector: the worker's `/healthz` watches progress instead."""

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        records = await self._getmany(None, timeout)
        for tp, messages in records.items():
            for message in messages:
                yield tp, self._to_message(tp, message)


def _numbers(partitions: list[TopicPartition]) -> str:
    """Partitions named by topic and numbers, for the log."""
    by_topic: dict[str, list[int]] = {}
    for p in partitions:
        by_topic.setdefault(p.topic, []).append(p.partition)
    return "; ".join(f"{t} {sorted(n)}" for t, n in by_topic.items()) or "none"
