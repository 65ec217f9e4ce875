"""The stage's local Apache Kafka: one node or a cluster of three, KRaft combined mode (broker
and controller in each JVM), assembled from Maven Central, optionally secured (SASL_SSL).

When no broker is configured the stage starts one node itself ("embedded default"), and the
integration tests and CI use these too. Nothing here imports a Kafka client: the nodes are
driven with `java`, `mvn`, `keytool` and a TCP probe, so this module stays stdlib-only.

State lives under one folder, `home` (the project uses `<repo>/var/kafka`, ignored by git):

    lib/               the broker's classpath, copied from ~/.m2 by Maven (assembled once)
    pom.xml            a copy of the packaged Maven project that names the broker's jars
    cluster.id         the cluster id every node's storage was formatted with
    cluster.json       the cluster's shape: nodes, secured or not, ports
    node-<n>/          one folder per node of a cluster of more than one node, holding:
      data/              log.dirs: topics and the KRaft metadata log
      server.properties  rendered from the packaged templates
      broker.log         the JVM's stdout and stderr (the previous run's is kept as broker.log.1)
      broker.pid         the JVM's pid while it runs
    (a single node keeps data/, server.properties, broker.log and broker.pid in home itself)
    tls/, credentials.json, <user>.env, <user>.properties   when secured: see security.py

Usage::

    cluster = LocalCluster(default_home(), nodes=3)
    bootstrap = cluster.start()     # "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    cluster.start()                 # restarts any node that is down; at once if none is
    cluster.stop()                  # SIGTERM; the data survives for the next start

    broker = LocalBroker(default_home())   # one node, as before: start() -> "127.0.0.1:9092"
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from stream.kafka.local import security
from stream.kafka.local.jvmtools import run_together
from stream.kafka.local.security import ClientFiles, Credentials, TlsFiles
from stream.kafka.replication import default_replication

__all__ = [
    "BrokerError",
    "BrokerStatus",
    "ClusterShape",
    "LocalBroker",
    "LocalCluster",
    "default_home",
    "default_pom",
    "read_shape",
]

# KafkaRaftServer logs this at INFO once broker and controller are up (3.x and 4.1 alike); the
# broker part is up once it is registered with the quorum and unfenced.
READY_LINE = "Kafka Server started"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
HEAP_OPTS = ("-Xms256m", "-Xmx512m", "-XX:+UseSerialGC")
LOG_TAIL_LINES = 40
MAVEN_TIMEOUT = 900.0  # the first assembly downloads ~45 MB of jars
FORMAT_TIMEOUT = 120.0

DEFAULT_PORT = 9092
PORT_STEP = 2
"""Client ports of a cluster's nodes: 9092, 9094, 9096 (odd ports are left to others)."""
CONTROLLER_OFFSET = 101
"""A node's controller port is its client port + 101: 9193 for 9092 (not 9093: that is
Alertmanager's port), 9195, 9197."""
CLIENT_LISTENER = "CLIENT"

# Starts the JVM in the background and prints its pid. The shell is an intermediate that exits at
# once, so the JVM is not our child: it outlives this process, never becomes our zombie, and
# subprocess never warns about a child still running.
_LAUNCH = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'

_REPO_ROOT = Path(__file__).resolve().parents[3]
BROKER_FILES = Path(__file__).resolve().parent / "broker"
"""The broker's Maven project, logging and configuration templates: package data, so an
installed `claims-stage` can start the broker as a checkout does."""


class BrokerError(RuntimeError):
    """The local broker could not be assembled, started or stopped."""


@dataclass(frozen=True)
class BrokerStatus:
    """One node of the local cluster, as `broker status` reports it."""

    running: bool  # our JVM is alive and accepts connections on the client port
    pid: int | None  # the JVM's pid, if the pid file names a live broker process
    bootstrap: str  # "host:port" of the client listener
    log_path: Path
    detail: str  # one line for humans
    node: int = 1
    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_PORT + CONTROLLER_OFFSET


@dataclass(frozen=True)
class ClusterShape:
    """What the storage was formatted for: changing it needs a reset."""

    nodes: int
    secure: bool
    host: str
    ports: tuple[int, ...]
    controller_ports: tuple[int, ...]


def _repo_root() -> Path | None:
    """The checkout this module lives in (not an installed wheel)."""
    return _REPO_ROOT if (_REPO_ROOT / "pyproject.toml").is_file() else None


def default_home() -> Path:
    """`<repo>/var/kafka` when running from a checkout, else `./var/kafka`."""
    root = _repo_root()
    return (root if root is not None else Path.cwd()) / "var" / "kafka"


def default_pom() -> Path:
    """The packaged Maven project that names the broker (`stream/kafka/local/broker/pom.xml`)."""
    return BROKER_FILES / "pom.xml"


def default_ports(first: int, nodes: int) -> list[int]:
    """Client ports of `nodes` nodes from the first: 9092 -> 9092, 9094, 9096."""
    return [first + PORT_STEP * n for n in range(nodes)]


def read_shape(home: Path, host: str = "127.0.0.1") -> ClusterShape | None:
    """What the cluster in `home` was formatted for, or None for a new home."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        document = json.loads((Path(home) / "cluster.json").read_text())
        return ClusterShape(
            int(document["nodes"]),
            bool(document["secure"]),
            str(document["host"]),
            tuple(int(p) for p in document["ports"]),
            tuple(int(p) for p in document["controller_ports"]),
        )
    if (Path(home) / "data" / "meta.properties").is_file():
        # A home from before clusters: one plaintext node on the default ports.
        return ClusterShape(1, False, host, (DEFAULT_PORT,), (DEFAULT_PORT + CONTROLLER_OFFSET,))
    return None


def _new_cluster_id() -> str:
    # Same format as Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding,
    # never starting with "-" (it would read as a command-line option). Saves a JVM launch.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


def _port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    # SO_REUSEADDR as the JVM sets it, so a port in TIME_WAIT after our own stop counts as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    # A zombie still answers kill(0); on Linux read its state (third field after "(comm)").
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _cmdline(pid: int) -> str | None:
    """The process's command line, or None if it cannot be read."""
    with contextlib.suppress(OSError):
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    # No /proc (macOS): ask ps.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["ps", "-p", str(pid), "-o", "command="],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or None
    return None


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _tool(name: str) -> str:
    """A JDK program (`java`, `keytool`): from JAVA_HOME if set, else from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / name).is_file():
        return str(Path(java_home) / "bin" / name)
    found = shutil.which(name)
    if found is None:
        raise BrokerError(f"{name} is not on PATH (and JAVA_HOME is unset): a JDK 17+ is needed")
    return found


@dataclass(frozen=True)
class _Node:
    """One JVM of the cluster: its ports and files."""

    id: int
    host: str
    port: int
    controller_port: int
    home: Path

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.home / "broker.pid"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def our_pid(self) -> int | None:
        """The pid from the pid file if that process is alive and is this node's broker."""
        pid = self.read_pid()
        if pid is None or not _alive(pid):
            return None
        cmdline = _cmdline(pid)
        # Guard against pid reuse: the process must be kafka.Kafka with our config file.
        if cmdline is not None and (
            MAIN_CLASS not in cmdline or str(self.config_path) not in cmdline
        ):
            return None
        return pid

    def status(self) -> BrokerStatus:
        def report(running: bool, pid: int | None, detail: str) -> BrokerStatus:
            return BrokerStatus(
                running,
                pid,
                self.bootstrap,
                self.log_path,
                detail,
                self.id,
                self.port,
                self.controller_port,
            )

        pid = self.our_pid()
        if pid is None:
            stale = self.read_pid()
            detail = "not running" + (f" (stale pid file: {stale})" if stale is not None else "")
            return report(False, None, detail)
        if _port_accepts(self.host, self.port):
            return report(True, pid, f"running, pid {pid}, answering on {self.bootstrap}")
        detail = f"pid {pid} alive but {self.bootstrap} not answering (starting or stuck)"
        return report(False, pid, detail)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, pid: int, deadline: float) -> None:
        """Wait until the port accepts and the log says the server started."""
        while True:
            if not _alive(pid):
                raise BrokerError(
                    f"node {self.id} (pid {pid}) exited during startup; last lines of "
                    f"{self.log_path}:\n" + _tail(self.log_path)
                )
            if _port_accepts(self.host, self.port) and READY_LINE in self.log_text():
                return
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"node {self.id} (pid {pid}) was not ready on {self.bootstrap} in time; "
                    f"last lines of {self.log_path}:\n" + _tail(self.log_path)
                )
            time.sleep(0.2)

    def launch(self, cmd: list[str]) -> int:
        # Keep one previous log for post-mortems; the readiness check reads only this run's.
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
        self.log_path.touch()
        done = subprocess.run(
            ["/bin/sh", "-c", _LAUNCH, "sh", str(self.log_path), *cmd],
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            start_new_session=True,  # the JVM gets its own session: no terminal signals reach it
        )
        try:
            pid = int(done.stdout.strip())
        except ValueError:
            raise BrokerError(f"could not launch node {self.id}: {done.stderr.strip()}") from None
        self.pid_path.write_text(f"{pid}\n")
        return pid


def _signal_and_wait(pids: Sequence[int], timeout: float) -> None:
    """SIGTERM (a clean shutdown flushes the logs and closes the metadata log), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not any(_alive(pid) for pid in pids):
                return
            time.sleep(0.1)
    alive = [pid for pid in pids if _alive(pid)]
    if alive:
        raise BrokerError(f"broker process(es) {alive} survived SIGKILL")


class LocalCluster:
    """A KRaft cluster of `nodes` combined broker/controller JVMs on one host, under `home`.

    `nodes` and `secure` default to what the home was formatted for (one plaintext node for a
    new home); `ports` to 9092, 9094, ... and `controller_ports` to each port + 101.
    """

    def __init__(
        self,
        home: Path,
        nodes: int | None = None,
        secure: bool | None = None,
        host: str = "127.0.0.1",
        ports: Sequence[int] | None = None,
        controller_ports: Sequence[int] | None = None,
        pom: Path | None = None,
        jvm_options: Sequence[str] = (),
    ) -> None:
        self.home = Path(home).resolve()
        self.host = host
        self.jvm_options = tuple(jvm_options)  # e.g. faster start-up for tests
        self.pom = (pom if pom is not None else default_pom()).resolve()
        # log4j2.xml and the templates sit beside the pom.
        self.log4j_config = self.pom.parent / "log4j2.xml"
        self.template = self.pom.parent / "server.properties.template"
        self.secure_template = self.pom.parent / "secure.properties.template"
        self.lib_dir = self.home / "lib"
        self.cluster_id_path = self.home / "cluster.id"
        self.shape_path = self.home / "cluster.json"
        self.credentials_path = self.home / "credentials.json"
        self.tls_dir = self.home / "tls"

        recorded = read_shape(self.home, host)
        count = nodes or (recorded.nodes if recorded else 1)
        if count < 1:
            raise BrokerError(f"a cluster needs at least one node, not {count}")
        self.secure = secure if secure is not None else bool(recorded and recorded.secure)
        if ports is None:
            if recorded and len(recorded.ports) == count:
                ports = recorded.ports
            else:
                ports = default_ports(DEFAULT_PORT, count)
        if controller_ports is None:
            if recorded and tuple(recorded.ports) == tuple(ports):
                controller_ports = recorded.controller_ports
            else:
                controller_ports = [port + CONTROLLER_OFFSET for port in ports]
        if len(ports) != count or len(controller_ports) != count:
            raise BrokerError(f"{count} nodes need {count} client and controller ports")
        self.nodes = [
            _Node(
                n + 1,
                host,
                port,
                controller,
                self.home if count == 1 else self.home / f"node-{n + 1}",
            )
            for n, (port, controller) in enumerate(zip(ports, controller_ports, strict=True))
        ]

    # ---------------------------------------------------------------- what it is

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def shape(self) -> ClusterShape:
        return ClusterShape(
            len(self.nodes),
            self.secure,
            self.host,
            tuple(n.port for n in self.nodes),
            tuple(n.controller_port for n in self.nodes),
        )

    def recorded_shape(self) -> ClusterShape | None:
        """What the home was formatted for, or None for a new home."""
        return read_shape(self.home, self.host)

    def node(self, node_id: int) -> _Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise BrokerError(f"no node {node_id}: the cluster has nodes 1 to {len(self.nodes)}")

    def status(self) -> list[BrokerStatus]:
        return [node.status() for node in self.nodes]

    @property
    def ca_pem(self) -> Path:
        return self.tls_dir / "ca.pem"

    def client_files(self) -> list[ClientFiles]:
        """The settings files of the secured cluster's users (written by `start`)."""
        return [
            ClientFiles(user, self.home / f"{user}.env", self.home / f"{user}.properties")
            for user in security.CLIENT_USERS
        ]

    def client_environment(self, user: str) -> dict[str, str]:
        """The `CLAIMS_*` variables of one user's `.env` file."""
        path = self.home / f"{user}.env"
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            raise BrokerError(
                f"no settings for {user!r} at {path}: is the cluster secured?"
            ) from error
        pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
        return {name.strip(): value.strip() for name, value in pairs}

    # ---------------------------------------------------------------- start and stop

    def start(self, timeout: float = 120.0) -> str:
        """Start every node that is not running; return the bootstrap servers.

        Idempotent: with every node up it returns at once. The Maven assembly of `lib/` and
        the certificates of a first secured start are not counted in `timeout`, which bounds
        the wait for the JVMs to become ready. On failure the nodes launched by this call are
        stopped and BrokerError carries the tail of the failing node's log.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock():
            deadline = time.monotonic() + timeout
            down = []
            for node in self.nodes:
                pid = node.our_pid()
                if pid is None:
                    node.pid_path.unlink(missing_ok=True)  # stale, if any
                    down.append(node)
                elif not _port_accepts(node.host, node.port):
                    # Alive but not answering yet: another caller is starting it.
                    node.wait_ready(pid, deadline)
            if down:
                self._start_nodes(down, deadline)
            if self.secure:
                self._write_client_files()
            return self.bootstrap

    def stop(self, timeout: float = 30.0, node: int | None = None) -> bool:
        """Stop every node (or one) with SIGTERM, SIGKILL after `timeout`. Return whether
        any was running."""
        if not self.home.exists():
            return False
        with self._lock():
            targets = [self.node(node)] if node is not None else self.nodes
            pids = [pid for n in targets if (pid := n.our_pid()) is not None]
            _signal_and_wait(pids, timeout)
            for n in targets:
                n.pid_path.unlink(missing_ok=True)
            return bool(pids)

    def reset(self) -> list[Path]:
        """Stop the cluster and delete its data, configuration and credentials (not `lib/`),
        so the next start formats a new cluster of any shape. Returns what was deleted."""
        self.stop()
        doomed = [
            self.home / "data",
            *sorted(self.home.glob("node-*")),
            self.tls_dir,
            self.cluster_id_path,
            self.shape_path,
            self.credentials_path,
            self.home / "server.properties",
            self.home / "broker.pid",
            *(path for files in self.client_files() for path in (files.env, files.properties)),
        ]
        deleted = []
        for path in doomed:
            if path.is_dir():
                shutil.rmtree(path)
                deleted.append(path)
            elif path.exists():
                path.unlink()
                deleted.append(path)
        return deleted

    def ensure_classpath(self) -> Path:
        """Copy the broker's jars into `lib/` with Maven unless a complete copy for this pom exists.

        The marker `lib/.complete` records the pom's hash and the jar names, so a changed pom or
        a deleted jar triggers a new copy. Maven caches the jars in ~/.m2: only the first run
        downloads.
        """
        pom_hash = hashlib.sha256(self.pom.read_bytes()).hexdigest()
        marker = self.lib_dir / ".complete"
        with contextlib.suppress(OSError):
            recorded_hash, *jars = marker.read_text().split()
            if (
                recorded_hash == pom_hash
                and jars
                and all((self.lib_dir / j).is_file() for j in jars)
            ):
                return self.lib_dir

        # Maven runs on a copy in the home folder: the packaged pom may sit in a read-only
        # site-packages, and Maven writes beside the pom it is given.
        pom_copy = self.home / "pom.xml"
        shutil.copyfile(self.pom, pom_copy)
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven (mvn) is not on PATH: it is needed once to assemble the broker"
            )
        # Copy into a scratch folder and swap it in, so an interrupted copy is never taken as lib/.
        scratch = self.home / "lib.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(pom_copy),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={scratch}",
        ]
        try:
            done = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=MAVEN_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"Maven did not finish in {MAVEN_TIMEOUT:.0f} s: {cmd}") from exc
        jars = sorted(p.name for p in scratch.glob("*.jar")) if scratch.is_dir() else []
        if done.returncode != 0 or not jars:
            output = "\n".join((done.stdout + done.stderr).splitlines()[-LOG_TAIL_LINES:])
            raise BrokerError(
                f"Maven failed to assemble the broker (exit {done.returncode}):\n{output}"
            )
        (scratch / ".complete").write_text("\n".join([pom_hash, *jars]) + "\n")
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        scratch.rename(self.lib_dir)
        return self.lib_dir

    # ---------------------------------------------------------------- configuration

    def render_config(
        self, node: _Node, tls: TlsFiles | None, credentials: Credentials | None
    ) -> str:
        """A node's server.properties: the template, and the security block when secured."""
        replication, min_insync = default_replication(len(self.nodes))
        protocol = "SASL_SSL" if self.secure else "PLAINTEXT"
        controller_protocol = "SSL" if self.secure else "PLAINTEXT"
        text = string.Template(self.template.read_text()).substitute(
            node_id=node.id,
            voters=",".join(f"{n.id}@{n.host}:{n.controller_port}" for n in self.nodes),
            client_listener=CLIENT_LISTENER,
            host=node.host,
            port=node.port,
            controller_port=node.controller_port,
            protocol_map=f"CONTROLLER:{controller_protocol},{CLIENT_LISTENER}:{protocol}",
            log_dirs=node.data_dir,
            replication_factor=replication,
            min_insync_replicas=min_insync,
        )
        if not self.secure or tls is None or credentials is None:
            return text
        super_users = [
            f"User:CN={security.BROKER_CN}",
            f"User:{security.BROKER_USER}",
            "User:admin",
        ]
        return text + string.Template(self.secure_template.read_text()).substitute(
            client_listener_lower=CLIENT_LISTENER.lower(),
            broker_user=security.BROKER_USER,
            broker_password=credentials.passwords[security.BROKER_USER],
            keystore=tls.keystore,
            ca_pem=tls.ca_pem,
            keystore_password=credentials.store_password,
            super_users=";".join(super_users),
        )

    # ---------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # One start or stop at a time per home, across processes (e.g. two test sessions).
        with (self.home / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _check_shape(self) -> None:
        recorded = self.recorded_shape()
        formatted = any(node.formatted for node in self.nodes) or (
            recorded is not None and recorded.nodes != len(self.nodes)
        )
        if recorded is None or not formatted:
            return
        if (recorded.nodes, recorded.secure) != (len(self.nodes), self.secure):

            def describe(nodes: int, secure: bool) -> str:
                return f"{nodes}-node {'secured' if secure else 'plaintext'}"

            raise BrokerError(
                f"{self.home} holds a {describe(recorded.nodes, recorded.secure)} cluster, "
                f"not a {describe(len(self.nodes), self.secure)} one. Keep its shape "
                "(`claims-stage broker start` with no --nodes/--secure), or delete its data "
                "with `claims-stage broker reset` (or use another CLAIMS_LOCAL_BROKER_HOME)."
            )

    def _start_nodes(self, down: list[_Node], deadline: float) -> None:
        for node in down:
            for port in (node.port, node.controller_port):
                if not port_free(node.host, port):
                    raise BrokerError(
                        f"port {node.host}:{port} is already in use by another process, "
                        f"not by node {node.id} of the local cluster in {self.home}; stop it "
                        "or choose other ports"
                    )
        self._check_shape()
        java = _tool("java")
        self.ensure_classpath()
        tls, credentials = self._security()
        for node in self.nodes:
            node.home.mkdir(parents=True, exist_ok=True)
            node.config_path.write_text(self.render_config(node, tls, credentials))
        self.shape_path.write_text(json.dumps(asdict(self.shape), indent=2) + "\n")
        self._format([n for n in down if not n.formatted], java, credentials)

        cmd = [java, *HEAP_OPTS, *self.jvm_options]
        cmd += [f"-Dlog4j2.configurationFile={self.log4j_config}"]
        cmd += ["-cp", str(self.lib_dir / "*"), MAIN_CLASS]
        # Launch every node before waiting for any: a node is ready only once a majority of
        # the controller quorum is up.
        launched = [(node, node.launch([*cmd, str(node.config_path)])) for node in down]
        try:
            for node, pid in launched:
                node.wait_ready(pid, deadline)
        except BrokerError:
            _signal_and_wait([pid for _, pid in launched], 10.0)
            for node, _ in launched:
                node.pid_path.unlink(missing_ok=True)
            raise

    def _security(self) -> tuple[TlsFiles | None, Credentials | None]:
        if not self.secure:
            return None, None
        credentials = Credentials.load_or_create(self.credentials_path)
        try:
            tls = security.ensure_tls(
                self.tls_dir, self.host, _tool("keytool"), credentials.store_password
            )
        except security.SecurityError as error:
            raise BrokerError(str(error)) from error
        return tls, credentials

    def _cluster_id(self) -> str:
        with contextlib.suppress(OSError):
            cid = self.cluster_id_path.read_text().strip()
            if cid:
                return cid
        cid = _new_cluster_id()
        self.cluster_id_path.write_text(cid + "\n")
        return cid

    def _format(self, nodes: list[_Node], java: str, credentials: Credentials | None) -> None:
        """Format each node's storage with the one cluster id (and, when secured, the SCRAM
        users), all at once: each format is a JVM start."""
        if not nodes:
            return
        scram: list[str] = []
        if credentials is not None:
            for user, password in sorted(credentials.passwords.items()):
                scram += ["--add-scram", security.scram_credential(user, password)]
        cluster_id = self._cluster_id()
        runs = []
        for node in nodes:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            runs.append(
                (
                    f"formatting {node.data_dir}",
                    [
                        java,
                        "-Xmx256m",
                        f"-Dlog4j2.configurationFile={self.log4j_config}",
                        "-cp",
                        str(self.lib_dir / "*"),
                        STORAGE_TOOL,
                        "format",
                        "-t",
                        cluster_id,
                        "-c",
                        str(node.config_path),
                        "--ignore-formatted",
                        *scram,
                    ],
                )
            )
        failures = run_together(runs, FORMAT_TIMEOUT)
        if failures:
            raise BrokerError("\n".join(failures))

    def _write_client_files(self) -> None:
        credentials = Credentials.load_or_create(self.credentials_path)
        security.write_client_files(self.home, credentials, self.bootstrap, self.ca_pem)


class LocalBroker:
    """A single-node local broker: the one-node LocalCluster, by its one node's ports."""

    def __init__(
        self,
        home: Path,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        controller_port: int = DEFAULT_PORT + CONTROLLER_OFFSET,
        pom: Path | None = None,
    ) -> None:
        self.cluster = LocalCluster(
            home, nodes=1, host=host, ports=[port], controller_ports=[controller_port], pom=pom
        )
        self.home = self.cluster.home
        self.host = host
        self.port = port
        self.controller_port = controller_port

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap

    def start(self, timeout: float = 120.0) -> str:
        return self.cluster.start(timeout)

    def stop(self, timeout: float = 30.0) -> bool:
        return self.cluster.stop(timeout)

    def status(self) -> BrokerStatus:
        return self.cluster.status()[0]

    def ensure_classpath(self) -> Path:
        return self.cluster.ensure_classpath()
