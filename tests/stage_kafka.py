"""A real Kafka broker for the session and real worker processes (integration, ops tests).

The broker is the project's own local broker, started by the test run on free ports in a
temporary folder; nothing here is skipped when it is missing: it is started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from stream.cli.batch import read_lines
from stream.kafka.localbroker import LocalBroker
from stream.kafka.topics import create_topics
from stream.settings import Settings

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "schemas" / "examples" / "encounters.jsonl"


def example_lines() -> list[bytes]:
    with EXAMPLES.open("rb") as stream:
        return list(read_lines(stream))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a real single-node broker, for the whole session."""
    port, controller = free_port(), free_port()
    while controller == port:
        controller = free_port()
    broker = LocalBroker(
        tmp_path_factory.mktemp("kafka"), host=HOST, port=port, controller_port=controller
    )
    started = time.perf_counter()
    bootstrap = broker.start(timeout=240.0)
    print(f"\nbroker started in {time.perf_counter() - started:.1f} s at {bootstrap}")
    yield bootstrap
    broker.stop()


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    @property
    def document(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads(self.value)
        return loaded


@dataclass
class StageDeployment:
    """One test's topics, consumer group and web port, and its worker processes."""

    bootstrap: str
    workdir: Path
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    partitions: int = 6
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, web_port: int) -> dict[str, str]:
        return {
            **os.environ,
            "CLAIMS_KAFKA_BOOTSTRAP": self.bootstrap,
            "CLAIMS_INPUT_TOPIC": f"encounters-{self.name}",
            "CLAIMS_VALIDATED_TOPIC": f"claims.validated-{self.name}",
            "CLAIMS_REJECTED_TOPIC": f"claims.rejected-{self.name}",
            "CLAIMS_DLQ_TOPIC": f"encounters.dlq-{self.name}",
            "CLAIMS_APP_ID": f"claims-stage-{self.name}",
            "CLAIMS_WEB_PORT": str(web_port),
            "CLAIMS_PARTITIONS": str(self.partitions),
            "CLAIMS_LOG_LEVEL": "INFO",
        }

    @property
    def settings(self) -> Settings:
        env = self.env(0)
        return Settings(
            kafka_bootstrap=env["CLAIMS_KAFKA_BOOTSTRAP"],
            input_topic=env["CLAIMS_INPUT_TOPIC"],
            validated_topic=env["CLAIMS_VALIDATED_TOPIC"],
            rejected_topic=env["CLAIMS_REJECTED_TOPIC"],
            dlq_topic=env["CLAIMS_DLQ_TOPIC"],
            app_id=env["CLAIMS_APP_ID"],
            partitions=self.partitions,
        )

    def create_topics(self) -> None:
        create_topics(self.settings)

    def start_worker(self, web_port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
        port = web_port or free_port()
        with (self.workdir / f"worker-{len(self.workers)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "stream", "worker"],
                env=self.env(port),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.workers.append(process)
        return process, port

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.workdir.glob("worker-*.log"))
        )

    def wait_healthy(self, port: int, timeout: float = 90.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as reply:
                    health: dict[str, object] = json.loads(reply.read())
                    return health
            except urllib.error.HTTPError as error:
                last = error.read()
            except OSError as error:
                last = error
            time.sleep(0.5)
        raise AssertionError(f"worker on :{port} never healthy ({last!r})\n{self.logs()}")

    def committed(self) -> int:
        """Offsets committed by the stage's consumer group on the input topic, summed."""
        settings = self.settings
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": settings.app_id})
        try:
            parts = [TopicPartition(settings.input_topic, p) for p in range(self.partitions)]
            return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
        finally:
            consumer.close()

    def stop_all(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def scrape(port: int) -> dict[str, float]:
    """The worker's /metrics, over HTTP, as {series: value}."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return samples


def read_outputs(
    deployment: StageDeployment,
    expected: int,
    timeout: float = 120.0,
    until: Callable[[list[Record]], bool] | None = None,
) -> list[Record]:
    """Read the three output topics from the start until `expected` records have arrived,
    or `until` says so, and a little longer, so that extra records would show up too."""
    settings = deployment.settings
    consumer = Consumer(
        {
            "bootstrap.servers": deployment.bootstrap,
            "group.id": f"verify-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.validated_topic, settings.rejected_topic, settings.dlq_topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(str(error))
                records.append(
                    Record(
                        topic=message.topic() or "",
                        partition=message.partition() or 0,
                        offset=message.offset() or 0,
                        key=message.key(),
                        value=message.value() or b"",
                        headers=_headers(message),
                    )
                )
            done = until(records) if until is not None else len(records) >= expected
            if done and settle_until is None:
                settle_until = time.monotonic() + 2.0
            if settle_until is not None and time.monotonic() > settle_until:
                break
    finally:
        consumer.close()
    return records


@pytest.fixture
def deployment(kafka: str, tmp_path: Path) -> Iterator[StageDeployment]:
    stage = StageDeployment(bootstrap=kafka, workdir=tmp_path)
    yield stage
    stage.stop_all()


def _headers(message: Message) -> dict[str, bytes]:
    """A record's headers as a dict (librdkafka gives a list of pairs, values may be None)."""
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {
        name: value.encode() if isinstance(value, str) else value or b"" for name, value in pairs
    }
