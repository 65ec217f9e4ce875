"""Faust's own ceiling: a bare agent that drains a topic, for comparison with the stage.

    python -m bench.faust_ceiling TOPIC COUNT {ack,sensor,decide}

On the worker's transport (`CLAIMS_TRANSPORT`). `ack` only acknowledges each record; `sensor` does the same with the stage's Prometheus
sensor installed; `decide` also calls `decide` on each record (no output is produced).
It prints one line of JSON, `{"mode": ..., "records_per_s": ...}`, once COUNT records
have passed, and exits. Run by `bench.stage`; not a part of the stage.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

import faust
import mode.loop
from prometheus_client import CollectorRegistry

from stream.cli.common import freeze_long_lived_objects
from stream.core.contracts import KafkaSource
from stream.core.decision import Decider
from stream.ops import sensor
from stream.settings import Settings
from stream.worker.app import faust_app
from stream.worker.transport.records import RecordBatch


def main() -> None:
    topic_name, count, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    mode.loop.use("uvloop")
    stage = Decider() if kind == "decide" else None
    freeze_long_lived_objects()
    # The worker's own Faust app (bootstrap and security from the bench's environment), in a
    # consumer group of its own and without the web server.
    settings = Settings(app_id=f"ceiling-{uuid.uuid4().hex[:8]}")
    app = faust_app(settings, web_enabled=False)
    if kind == "sensor":
        sensor.install(app, CollectorRegistry())
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    seen = {"n": 0, "started": 0.0}

    def take(record: Any) -> None:
        """One record: decided (in `decide` mode) and acknowledged."""
        if not seen["n"]:
            seen["started"] = time.perf_counter()
        if stage is not None:
            message = record.message
            stage.decide(
                message.value,
                KafkaSource.model_construct(
                    topic=message.topic, partition=message.partition, offset=message.offset
                ),
                key=message.key,
            )
        record.ack()
        seen["n"] += 1
        if seen["n"] == count:
            rate = count / (time.perf_counter() - seen["started"])
            print(json.dumps({"mode": kind, "records_per_s": round(rate)}), flush=True)
            os._exit(0)  # measured; no need to wait for a graceful shutdown

    async def drain(stream: Any) -> None:
        # A Faust event is one record on aiokafka, a fetched batch on librdkafka.
        async for event in stream.noack().events():
            records = event.value if isinstance(event.value, RecordBatch) else [event]
            for record in records:
                take(record)

    app.agent(topic, name="drain")(drain)
    faust.Worker(
        app, loglevel="ERROR", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
