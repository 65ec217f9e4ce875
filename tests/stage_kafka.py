"""Real Kafka for the tests and real worker processes (integration, ops tests).

The brokers are the project's own local cluster, started by the test run on free ports in
temporary folders; nothing here is skipped when it is missing: it is started. A single node
serves the session; a three-node cluster and a secured broker serve the modules that ask.
"""

from __future__ import annotations

import base64
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
from typing import TypeVar

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from stream.cli.batch import read_lines
from stream.kafka import clients
from stream.kafka.acls import grant, stage_grants
from stream.kafka.local.cluster import LocalBroker, LocalCluster
from stream.kafka.topics import create_topics, stage_topics
from stream.settings import Settings

T = TypeVar("T")

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


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def output_topics(settings: Settings) -> list[str]:
    return [name for name in stage_topics(settings) if name != settings.input_topic]


def settings_from(env: dict[str, str]) -> Settings:
    """Settings from `CLAIMS_*` variables given here, not from this process's environment."""
    fields = {
        name.removeprefix("CLAIMS_").lower(): value
        for name, value in env.items()
        if name.startswith("CLAIMS_")
    }
    return Settings.model_validate(fields)


LAG_INTERVAL = 1.0
"""Seconds between a test worker's lag measurements: the lag gauges the tests wait for."""
SUMMARY_INTERVAL = 1.0
"""Seconds between a test worker's summary lines in its log."""

QUICK_START = ("-XX:TieredStopAtLevel=1",)
"""JVM options of the test clusters: the first JIT tier only, which starts a node about a
third faster on two busy cores (the tests restart nodes; they measure no throughput)."""


def start_cluster(home: Path, nodes: int, secure: bool = False) -> LocalCluster:
    ports = free_ports(2 * nodes)
    cluster = LocalCluster(
        home,
        nodes=nodes,
        secure=secure,
        ports=ports[:nodes],
        controller_ports=ports[nodes:],
        jvm_options=QUICK_START,
    )
    started = time.perf_counter()
    cluster.start(timeout=240.0)
    kind = "secured " if secure else ""
    print(
        f"\n{kind}{nodes}-node cluster started in {time.perf_counter() - started:.1f} s "
        f"at {cluster.bootstrap}"
    )
    return cluster


@dataclass
class SecureKafka:
    """A secured broker (SASL_SSL, SCRAM users stage, producer and admin, ACLs)."""

    cluster: LocalCluster

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap

    def env(self, user: str) -> dict[str, str]:
        """The user's `CLAIMS_*` security settings, as `var/kafka/<user>.env` has them."""
        return self.cluster.client_environment(user)

    def settings(self, user: str) -> Settings:
        return settings_from(self.env(user))


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A three-node KRaft cluster for one test module."""
    cluster = start_cluster(tmp_path_factory.mktemp("cluster3"), nodes=3)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """A secured single-node broker for one test module."""
    cluster = start_cluster(tmp_path_factory.mktemp("secure"), nodes=1, secure=True)
    yield SecureKafka(cluster)
    cluster.stop()


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

    @property
    def source(self) -> dict[str, int]:
        """The input record an output answers: its partition and offset."""
        source = self.document["source"]
        assert isinstance(source, dict)
        return {"partition": int(source["partition"]), "offset": int(source["offset"])}


@dataclass
class StageDeployment:
    """One test's topics, consumer group and web port, and its worker processes.

    `worker_env` adds to the workers' settings (a user's credentials, a shorter session
    timeout); `admin_env` is what the test's own clients use (create topics, read outputs).
    """

    bootstrap: str
    workdir: Path
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    partitions: int = 6
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)
    admin_env: dict[str, str] = field(default_factory=dict)

    def stage_env(self) -> dict[str, str]:
        """The deployment's own topics and group."""
        return {
            "CLAIMS_KAFKA_BOOTSTRAP": self.bootstrap,
            "CLAIMS_INPUT_TOPIC": f"encounters-{self.name}",
            "CLAIMS_VALIDATED_TOPIC": f"claims.validated-{self.name}",
            "CLAIMS_REVIEW_TOPIC": f"claims.review-{self.name}",
            "CLAIMS_REJECTED_TOPIC": f"claims.rejected-{self.name}",
            "CLAIMS_DLQ_TOPIC": f"encounters.dlq-{self.name}",
            "CLAIMS_APP_ID": f"claims-stage-{self.name}",
            "CLAIMS_PARTITIONS": str(self.partitions),
        }

    def env(self, web_port: int, **overrides: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
        return {
            **inherited,
            **self.stage_env(),
            "CLAIMS_WEB_PORT": str(web_port),
            "CLAIMS_LOG_LEVEL": "INFO",
            # What the tests wait for, sooner than in production (5 s and 10 s).
            "CLAIMS_LAG_INTERVAL": str(LAG_INTERVAL),
            "CLAIMS_SUMMARY_INTERVAL": str(SUMMARY_INTERVAL),
            **self.worker_env,
            **overrides,
        }

    @property
    def settings(self) -> Settings:
        return settings_from({**self.stage_env(), **self.admin_env})

    def create_topics(self) -> None:
        create_topics(self.settings)

    def grant_acls(self) -> None:
        """On a secured cluster: the stage's and the producer's ACLs for these topics."""
        grant(self.settings, stage_grants(self.settings))

    def start_worker(
        self, web_port: int | None = None, **overrides: str
    ) -> tuple[subprocess.Popen[bytes], int]:
        port = web_port or free_port()
        with (self.workdir / f"worker-{len(self.workers)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "stream", "worker"],
                env=self.env(port, **overrides),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.workers.append(process)
        return process, port

    def log_of(self, index: int) -> str:
        return (self.workdir / f"worker-{index}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.workdir.glob("worker-*.log"))
        )

    def wait_healthy(self, port: int, timeout: float = 90.0) -> dict[str, object]:
        def health() -> dict[str, object]:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as reply:
                    answer: dict[str, object] = json.loads(reply.read())
                    return answer
            except urllib.error.HTTPError as error:  # 503: up, not healthy yet; say why
                raise ValueError(error.read().decode(errors="replace")) from error

        return wait_for(health, timeout, f"the worker on :{port} to be healthy", self.logs)

    def committed(self) -> int:
        """Offsets committed by the stage's consumer group on the input topic, summed."""
        return sum(self.committed_offsets().values())

    def committed_offsets(self) -> dict[int, int]:
        """Offsets committed by the stage's consumer group, per input partition."""
        settings = self.settings
        consumer = clients.consumer(settings, settings.app_id)
        try:
            parts = [TopicPartition(settings.input_topic, p) for p in range(self.partitions)]
            return {tp.partition: max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10)}
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
    """Read the output topics from the start until `expected` records have arrived,
    or `until` says so, and a little longer, so that extra records would show up too."""
    settings = deployment.settings
    consumer = clients.consumer(
        settings, f"verify-{uuid.uuid4().hex[:8]}", **{"auto.offset.reset": "earliest"}
    )
    consumer.subscribe(output_topics(settings))
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


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy, and return that; fail after
    `timeout` seconds, naming `what` was awaited, the last transient error and `detail()`
    (a log, say). OSError, ValueError and KeyError count as "not there yet"."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (OSError, ValueError, KeyError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            extra = detail() if detail is not None else ""
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}"
                f"{f' (last error: {last_error!r})' if last_error else ''}\n{extra}"
            )
        time.sleep(0.25)


def bulk_records(count: int, bad_every: int = 100) -> tuple[list[bytes], set[bytes]]:
    """`count` records: example events with unique ids, and a malformed line every so often."""
    events = []
    for line in example_lines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "event_id" in document and "claim_id" in document:
            events.append(document)
    records: list[bytes] = []
    identities: set[bytes] = set()
    for n in range(count):
        if n % bad_every == 0:
            line = f"malformed record {n}".encode()
            identities.add(line)
        else:
            document = dict(events[n % len(events)], event_id=f"bulk-{n}", claim_id=f"CLM-B-{n}")
            line = json.dumps(document).encode()
            identities.add(f"bulk-{n}".encode())
        records.append(line)
    return records, identities


def identity(record: Record) -> bytes:
    document = record.document
    if "error" in document:
        raw = str(document["raw_value"])
        if document["raw_value_encoding"] == "utf-8":
            try:
                return str(json.loads(raw)["event_id"]).encode()
            except (ValueError, KeyError, TypeError):
                return raw.encode()
        return base64.b64decode(raw)
    return str(document["event_id"]).encode()


def decided(port: int) -> float:
    try:
        metrics = scrape(port)
    except OSError:
        return 0.0
    return sum(
        v
        for k, v in metrics.items()
        if k.startswith(("claims_decisions_total{", "claims_dead_letters_total{"))
    )


def covers(identities: set[bytes]) -> Callable[[list[Record]], bool]:
    """A stop condition for `read_outputs`: every identity has come out at least once."""
    seen: set[bytes] = set()
    read = [0]

    def covered(records: list[Record]) -> bool:
        seen.update(identity(r) for r in records[read[0] :])
        read[0] = len(records)
        return identities <= seen

    return covered
