"""The worker's health: progress state, the verdict `/healthz` serves, and throughput.

Pure functions of the state the worker keeps, so each verdict has a unit test.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from stream.core.tally import Tally

STALL_SECONDS = 30.0
"""No decision for this long while records wait: the worker is stalled (health 503)."""
RATE_SAMPLES = 13
"""Progress samples kept for the throughput figure: a minute at one sample every 5 s."""


@dataclass
class WorkerState:
    """What the health check, the lag gauges, the status page and the logs read."""

    started: float = field(default_factory=time.time)
    last_progress: float = field(default_factory=time.time)
    tally: Tally = field(default_factory=Tally)
    last_input_timestamp: dict[int, float] = field(default_factory=dict)
    lag: dict[int, int] = field(default_factory=dict)
    lag_seconds: dict[int, float] = field(default_factory=dict)
    lag_error: str | None = None
    progress: deque[tuple[float, int]] = field(
        default_factory=lambda: deque([(time.time(), 0)], maxlen=RATE_SAMPLES)
    )
    """(time, records decided) every few seconds: the last minute's throughput."""
    last_decision: float | None = None
    failing_since: dict[tuple[int, int], float] = field(default_factory=dict)
    """Records whose output the broker has not taken yet: (partition, offset) -> first failure."""
    assigned_at: float | None = None
    session_timeout: float = 30.0
    """The consumer group's session timeout: a cluster silent for longer has given this
    worker's partitions away, or could not tell that it should."""
    unreachable_since: float | None = None
    """When the first of the current run of failed calls to the cluster began; None once
    one succeeds."""
    unreachable_reason: str | None = None

    def kafka_unreachable(self, since: float, reason: str) -> None:
        """A call to the cluster begun at `since` failed; the earliest of a run counts."""
        if self.unreachable_since is None:
            self.unreachable_since = since
        self.unreachable_reason = reason

    def kafka_reachable(self) -> None:
        self.unreachable_since = self.unreachable_reason = None

    def health(
        self, partitions: set[int], now: float, oldest_pending: float | None = None
    ) -> tuple[bool, str]:
        """(healthy, reason): the cluster answers, partitions held, outputs accepted,
        acknowledgements advancing while outputs are pending, progress while records wait.

        `oldest_pending` is when the oldest record still waiting for its acknowledgement was
        decided (None: none waits)."""
        if self.unreachable_since is not None:
            # A lag reading is many calls and can fail long after it began; an output the
            # cluster stored meanwhile (progress) shows it still answered then.
            silent = now - max(self.unreachable_since, self.last_progress)
            if silent > self.session_timeout:
                return False, (
                    f"Kafka unreachable for {math.ceil(silent)} s (longer than the "
                    f"{self.session_timeout:g} s session timeout): {self.unreachable_reason}"
                )
        if not partitions:
            return False, "no partitions assigned to this worker"
        waiting = sum(self.lag.get(p, 0) for p in partitions)
        if self.failing_since:
            oldest = now - min(self.failing_since.values())
            if oldest > STALL_SECONDS:
                return False, (
                    f"{len(self.failing_since)} outputs not accepted by the broker for "
                    f"{oldest:.0f} s"
                )
        if oldest_pending is not None and now - oldest_pending > STALL_SECONDS:
            return False, (
                f"acknowledgements stalled: an output has been pending for "
                f"{now - oldest_pending:.0f} s"
            )
        since = now - max(self.last_progress, self.assigned_at or 0.0)
        if waiting and since > STALL_SECONDS:
            return False, f"stalled: {waiting} records waiting, nothing decided for {since:.0f} s"
        return True, f"ok: {len(partitions)} partitions, {waiting} records waiting"

    def rate(self) -> float:
        """Records per second over the last minute or so."""
        if len(self.progress) < 2:
            return 0.0
        (start, first), (end, last) = self.progress[0], self.progress[-1]
        return (last - first) / (end - start) if end > start else 0.0
