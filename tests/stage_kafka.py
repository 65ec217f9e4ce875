"""Real Kafka for the tests and real worker processes (integration, ops tests).

The brokers are the project's own local cluster, started by the test run on free ports in
temporary folders; nothing here is skipped when it is missing: it is started. A single node
serves the session; a three-node cluster, a secured broker and a lone broker (whose tests
stop it) serve the modules that ask. All four are shared by the session's processes
(pytest-xdist's workers too) and start in the background as soon as the collected tests
show they are needed, while other tests run (`conftest.py`).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
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
from stream.kafka.send import key_of
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

BROKERS_ENV = "STAGE_TEST_BROKERS"
"""Where the session's first process leaves the plan of the shared brokers for the others
(pytest-xdist's workers, which inherit its environment)."""


@dataclass(frozen=True)
class SharedBroker:
    """A broker the processes of one test session share: its home and ports are chosen once,
    before any test runs, so whichever process needs it first starts it (a start is
    idempotent and locked per home) and the session's first process stops it at the end."""

    home: Path
    ports: tuple[int, ...]
    controller_ports: tuple[int, ...]
    secure: bool = False
    quick: bool = True

    def cluster(self) -> LocalCluster:
        return LocalCluster(
            self.home,
            nodes=len(self.ports),
            secure=self.secure,
            host=HOST,
            ports=self.ports,
            controller_ports=self.controller_ports,
            jvm_options=QUICK_START if self.quick else (),
        )

    def start(self, announce: bool = True) -> LocalCluster:
        cluster = self.cluster()
        started = time.perf_counter()
        link_classpath(cluster, self.home.parent / "classpath")
        cluster.start(timeout=240.0)
        if announce:
            kind = "secured " if self.secure else ""
            print(
                f"\n{kind}{len(self.ports)}-node broker at {cluster.bootstrap}: waited "
                f"{time.perf_counter() - started:.1f} s for it"
            )
        return cluster


SHARED_SHAPES: dict[str, tuple[int, bool, bool]] = {
    "kafka": (1, False, False),
    "lone_broker": (1, False, False),
    "cluster3": (3, False, True),
    "secure_kafka": (1, True, True),
}
"""Fixture name -> (nodes, secured, quick start). The session's single node and the lone
broker (whose own tests stop and restart it) keep the JIT's full tiers: tests push tens of
thousands of records through the single node."""


def plan_shared_brokers(root: Path) -> dict[str, SharedBroker]:
    ports = iter(free_ports(2 * sum(nodes for nodes, _, _ in SHARED_SHAPES.values())))
    plan = {}
    for name, (nodes, secure, quick) in SHARED_SHAPES.items():
        client = tuple(next(ports) for _ in range(nodes))
        controller = tuple(next(ports) for _ in range(nodes))
        plan[name] = SharedBroker(root / name, client, controller, secure, quick)
    return plan


def write_plan(plan: dict[str, SharedBroker]) -> str:
    return json.dumps(
        {
            name: [str(b.home), list(b.ports), list(b.controller_ports), b.secure, b.quick]
            for name, b in plan.items()
        }
    )


def shared_brokers() -> dict[str, SharedBroker]:
    """The session's plan, as its first process wrote it."""
    document = json.loads(os.environ[BROKERS_ENV])
    return {
        name: SharedBroker(Path(home), tuple(ports), tuple(controllers), secure, quick)
        for name, (home, ports, controllers, secure, quick) in document.items()
    }


def link_classpath(cluster: LocalCluster, store: Path) -> None:
    """The broker's jars, assembled by Maven once for the session and hard-linked into each
    home (a home's own assembly is a Maven run of several seconds)."""
    store.mkdir(parents=True, exist_ok=True)
    with (store / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assembled = LocalCluster(store).ensure_classpath()
        if not cluster.lib_dir.exists():
            cluster.home.mkdir(parents=True, exist_ok=True)
            shutil.copytree(assembled, cluster.lib_dir, copy_function=os.link)


def start_in_background(names: set[str]) -> None:
    """Start these shared brokers while other tests run; a fixture that needs one before it
    is ready waits for it (its own start waits on the home's lock)."""
    plan = shared_brokers()
    for name in sorted(names & set(plan)):
        threading.Thread(target=_start_quietly, args=(plan[name],), daemon=True).start()


def _start_quietly(broker: SharedBroker) -> None:
    # A failure shows in the fixture's own start, with the test that needed the broker.
    with contextlib.suppress(Exception):
        broker.start(announce=False)


def stop_shared_brokers(plan: dict[str, SharedBroker]) -> None:
    for broker in plan.values():
        if broker.home.exists():
            broker.cluster().stop()


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


@pytest.fixture(scope="session")
def cluster3() -> LocalCluster:
    """A three-node KRaft cluster (the tests that use it stop, kill and freeze nodes)."""
    return shared_brokers()["cluster3"].start()


@pytest.fixture(scope="session")
def secure_kafka() -> SecureKafka:
    """A secured single-node broker."""
    return SecureKafka(shared_brokers()["secure_kafka"].start())


@pytest.fixture(scope="session")
def kafka() -> str:
    """The bootstrap address of a real single-node broker, for the whole session."""
    return shared_brokers()["kafka"].start().bootstrap


@pytest.fixture(scope="session")
def lone_broker() -> LocalBroker:
    """A single-node broker of its own, for the tests that stop and restart it."""
    broker = shared_brokers()["lone_broker"]
    broker.start()
    (port,), (controller,) = broker.ports, broker.controller_ports
    return LocalBroker(broker.home, host=HOST, port=port, controller_port=controller)


@pytest.fixture
def held_lone_broker(lone_broker: LocalBroker) -> Iterator[LocalBroker]:
    """The lone broker for one test, held against the session's other test process: the
    tests that use it stop and restart it, and two of them at once would stop it under
    each other. Started first, whatever the test before left."""
    with (lone_broker.home / "held-by-a-test.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lone_broker.start(timeout=120)
        yield lone_broker


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
        # The transport under test: `CLAIMS_TRANSPORT=aiokafka make integration` runs the
        # workers on Faust's aiokafka consumer instead of the default librdkafka transport.
        transport = {k: v for k, v in os.environ.items() if k == "CLAIMS_TRANSPORT"}
        return {
            **inherited,
            **transport,
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
    # read_committed: what a downstream consumer of an exactly-once stage reads (outputs of
    # aborted transactions never; of open ones, once they commit).
    consumer = clients.consumer(
        settings,
        f"verify-{uuid.uuid4().hex[:8]}",
        **{"auto.offset.reset": "earliest", "isolation.level": "read_committed"},
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


RATE = 100.0
"""Input records per second while a fault is injected: a stream always in flight, and few
enough that three brokers and the worker leave the two cores some room."""


@dataclass
class Feeder:
    """Sends records at a steady rate from a thread, as producers do during an incident."""

    settings: Settings
    rate: float = RATE
    records: list[bytes] = field(default_factory=lambda: bulk_records(100_000)[0])
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        producer = clients.producer(self.settings)

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                self.failures.append(error.str())

        started = time.perf_counter()
        while not self._stop.is_set() and self.sent < len(self.records):
            ahead = started + self.sent / self.rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            line = self.records[self.sent]
            producer.produce(
                self.settings.input_topic, value=line, key=key_of(line), on_delivery=delivered
            )
            producer.poll(0)
            self.sent += 1
        remaining = producer.flush(120)
        if remaining:
            self.failures.append(f"{remaining} records not delivered in 120 s")

    def stop(self) -> set[bytes]:
        """Stop sending; the identities of everything sent."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=180)
        assert not self.failures, self.failures[:5]
        return {_line_identity(line) for line in self.records[: self.sent]}


def _line_identity(line: bytes) -> bytes:
    try:
        return str(json.loads(line)["event_id"]).encode()
    except (ValueError, KeyError, TypeError):
        return line
