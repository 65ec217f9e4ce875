"""Faust's Prometheus transport sensor, with its per-record work made cheap.

`faust.sensors.prometheus.PrometheusMonitor` looks up labelled children and normalises the
stream's name with a regular expression for every record, and keeps Faust's in-memory
statistics besides: on this machine it cost about a third of Faust's own per-record time
(consume-and-acknowledge alone: 14,700 records/s without it, 9,700 with it). This subclass
exports the same series, with the children looked up once per topic, partition and stream.
"""

from __future__ import annotations

from typing import Any

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry


class LeanPrometheusMonitor(PrometheusMonitor):
    def __init__(self, metrics: FaustMetrics, **kwargs: Any) -> None:
        super().__init__(metrics=metrics, **kwargs)
        self._by_topic: dict[str, Any] = {}
        self._by_partition: dict[Any, Any] = {}
        self._end_offsets: dict[Any, Any] = {}
        self._by_stream: dict[int, Any] = {}

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        metrics = self._metrics
        metrics.messages_received.inc()
        metrics.active_messages.inc()
        topic = self._by_topic.get(tp.topic)
        if topic is None:
            topic = self._by_topic[tp.topic] = metrics.messages_received_per_topics.labels(
                topic=tp.topic
            )
        topic.inc()
        partition = self._by_partition.get(tp)
        if partition is None:
            partition = self._by_partition[tp] = (
                metrics.messages_received_per_topics_partition.labels(
                    topic=tp.topic, partition=tp.partition
                )
            )
        partition.set(offset)
        # What Faust's own views read (`messages_active`, read offsets); nothing per record
        # is kept beyond that.
        self.messages_received_total += 1
        self.messages_active += 1
        self.tp_read_offsets[tp] = offset

    def on_records_in(self, tp: Any, count: int, last_offset: int) -> None:
        """`count` records of a partition fetched at once (the librdkafka transport hands
        them over in batches): the same received-message series, counted in bulk."""
        metrics = self._metrics
        metrics.messages_received.inc(count)
        topic = self._by_topic.get(tp.topic)
        if topic is None:
            topic = self._by_topic[tp.topic] = metrics.messages_received_per_topics.labels(
                topic=tp.topic
            )
        topic.inc(count)
        partition = self._by_partition.get(tp)
        if partition is None:
            partition = self._by_partition[tp] = (
                metrics.messages_received_per_topics_partition.labels(
                    topic=tp.topic, partition=tp.partition
                )
            )
        partition.set(last_offset)
        self.messages_received_total += count
        self.tp_read_offsets[tp] = last_offset

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        metrics = self._metrics
        metrics.total_events.inc()
        metrics.total_active_events.inc()
        child = self._by_stream.get(id(stream))
        if child is None:
            child = self._by_stream[id(stream)] = metrics.total_events_per_stream.labels(
                stream=f"stream.{self._stream_label(stream)}.events"
            )
        child.inc()
        self.events_total += 1
        self.events_active += 1

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        self._metrics.total_active_events.dec()
        self.events_active -= 1

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        self._metrics.active_messages.dec()
        self.messages_active -= 1

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        child = self._end_offsets.get(tp)
        if child is None:
            child = self._end_offsets[tp] = self._metrics.topic_partition_end_offset.labels(
                topic=tp.topic, partition=tp.partition
            )
        child.set(offset)
        self.tp_end_offsets[tp] = offset


def install(app: Any, registry: CollectorRegistry, name_prefix: str = "faust") -> None:
    """What `setup_prometheus_sensors` does, with the lean monitor (the page is the caller's)."""
    app.monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(registry, name_prefix))
