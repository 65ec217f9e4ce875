"""The stage's Faust transport on librdkafka: `rdkafka://host:port`.

Registered under the `faust.transports` entry point (pyproject.toml), so Faust finds it by
its URL scheme. The consumer reads in batches (`consumer.BatchConsumer`); Faust's app,
agents, streams, web views and sensors run on it unchanged. `faust_app` in
`stream.worker.app` builds apps on it and gives it the stage's settings (`hooks.attach`).
"""

from __future__ import annotations

from typing import ClassVar

from faust.transport import base

from stream.worker.transport.consumer import BatchConsumer
from stream.worker.transport.producer import LibrdkafkaProducer

SCHEME = "rdkafka"


class Transport(base.Transport):
    """librdkafka (confluent-kafka) under Faust."""

    Consumer: ClassVar[type] = BatchConsumer
    Producer: ClassVar[type] = LibrdkafkaProducer
    default_port = 9092
    driver_version = "confluent-kafka"


__all__ = ["SCHEME", "Transport"]
