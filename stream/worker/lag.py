"""Lag measurement: how many input records wait, and how far behind in time the worker is."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException

from stream.kafka.lag import LagReader, LagReaderClosedError
from stream.ops.health import WorkerState
from stream.ops.metrics import StageMetrics
from stream.settings import Settings

log = logging.getLogger("claims_stage.worker")


def _reason(error: Exception) -> str:
    if isinstance(error, KafkaException) and isinstance(error.args[0], KafkaError):
        return f"{error.args[0].name()}: {error.args[0].str()}"
    return f"{type(error).__name__}: {error}"


class LagMonitor:
    """Reads the group's lag for the partitions this worker holds, into state and gauges.

    One `LagReader` (one Kafka client) serves every reading of the worker's life; `stop`
    closes it when the worker stops.
    """

    def __init__(
        self,
        settings: Settings,
        held_partitions: Callable[[], set[int]],
        state: WorkerState,
        metrics: StageMetrics,
        reader: LagReader | None = None,
    ) -> None:
        self.settings = settings
        self.held_partitions = held_partitions
        self.state = state
        self.metrics = metrics
        self.reader = reader or LagReader(settings)

    async def measure(self) -> None:
        partitions = self.held_partitions()
        state = self.state
        if partitions != set(state.lag):
            # A new assignment: the stall clock starts here, not at the last decision.
            state.assigned_at = time.time()
        asked = time.time()
        try:
            lag = await asyncio.to_thread(self.reader.read, partitions)
        except LagReaderClosedError:
            return  # the worker is stopping: no more readings
        except Exception as error:
            state.lag_error = type(error).__name__
            # The lag reading is also the worker's look at the cluster: /healthz turns 503
            # once these fail for longer than the session timeout.
            state.kafka_unreachable(asked, _reason(error))
            log.warning("could not read consumer lag (%s)", state.lag_error)
            return
        state.kafka_reachable()
        self.update(lag, time.time())

    async def stop(self, *_: object, **__: object) -> None:
        """Close the lag reader's client (a receiver of the app's shutdown signal)."""
        await asyncio.to_thread(self.reader.close)

    def update(self, lag: dict[int, int], now: float) -> None:
        """Record a lag reading: waiting records and seconds behind, per partition."""
        state, metrics = self.state, self.metrics
        state.lag_error = None
        state.progress.append((now, state.tally.records))
        for partition in set(state.lag) - set(lag):
            metrics.consumer_lag.remove(str(partition))
            metrics.consumer_lag_seconds.remove(str(partition))
            state.lag_seconds.pop(partition, None)
        state.lag = lag
        for partition, waiting in lag.items():
            behind = 0.0
            if waiting:
                newest = state.last_input_timestamp.get(partition) or state.assigned_at or now
                behind = max(now - newest, 0.0)
            metrics.consumer_lag.labels(str(partition)).set(waiting)
            metrics.consumer_lag_seconds.labels(str(partition)).set(behind)
            state.lag_seconds[partition] = behind
