"""The stage's local Apache Kafka broker: one JVM, KRaft combined mode, assembled from Maven Central.

When no broker is configured the stage starts this one itself ("embedded default"), and the
integration tests and CI use it too. Nothing here imports a Kafka client: the broker is driven
with `java`, `mvn` and a TCP probe, so this module stays stdlib-only.

State lives under one folder, `home` (the project uses `<repo>/var/kafka`, ignored by git):

    lib/               the broker's classpath, copied from ~/.m2 by Maven (assembled once)
    data/              log.dirs: topics and the KRaft metadata log
    pom.xml            a copy of the packaged Maven project that names the broker's jars
    server.properties  rendered from the packaged server.properties.template
    cluster.id         the cluster id the storage was formatted with
    broker.log         the JVM's stdout and stderr (the previous run's is kept as broker.log.1)
    broker.pid         the JVM's pid while it runs

Usage::

    broker = LocalBroker(default_home())
    bootstrap = broker.start()      # "127.0.0.1:9092"; returns at once if already running
    broker.stop()                   # SIGTERM; the data survives for the next start
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import string
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BrokerError", "BrokerStatus", "LocalBroker", "default_home", "default_pom"]

# KafkaRaftServer logs this at INFO once broker and controller are up (3.x and 4.1 alike).
READY_LINE = "Kafka Server started"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
HEAP_OPTS = ("-Xms256m", "-Xmx512m", "-XX:+UseSerialGC")
LOG_TAIL_LINES = 40
MAVEN_TIMEOUT = 900.0  # the first assembly downloads ~45 MB of jars

# Starts the JVM in the background and prints its pid. The shell is an intermediate that exits at
# once, so the JVM is not our child: it outlives this process, never becomes our zombie, and
# subprocess never warns about a child still running.
_LAUNCH = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'

_REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER_FILES = Path(__file__).resolve().parent / "broker"
"""The broker's Maven project, logging and configuration template: package data, so an
installed `claims-stage` can start the broker as a checkout does."""


class BrokerError(RuntimeError):
    """The local broker could not be assembled, started or stopped."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool  # our JVM is alive and accepts connections on the bootstrap port
    pid: int | None  # the JVM's pid, if the pid file names a live broker process
    bootstrap: str  # "host:port"
    log_path: Path
    detail: str  # one line for humans


def _repo_root() -> Path | None:
    """The checkout this module lives in (not an installed wheel)."""
    return _REPO_ROOT if (_REPO_ROOT / "pyproject.toml").is_file() else None


def default_home() -> Path:
    """`<repo>/var/kafka` when running from a checkout, else `./var/kafka`."""
    root = _repo_root()
    return (root if root is not None else Path.cwd()) / "var" / "kafka"


def default_pom() -> Path:
    """The packaged Maven project that names the broker (`stream/kafka/broker/pom.xml`)."""
    return BROKER_FILES / "pom.xml"


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


def _port_free(host: str, port: int) -> bool:
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


class LocalBroker:
    """A single-node Kafka broker (KRaft, broker and controller in one JVM) under `home`."""

    def __init__(
        self,
        home: Path,
        host: str = "127.0.0.1",
        port: int = 9092,
        controller_port: int = 9193,  # not 9093: that is Alertmanager's port
        pom: Path | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.pom = (pom if pom is not None else default_pom()).resolve()
        # log4j2.xml and the template sit beside the pom.
        self.log4j_config = self.pom.parent / "log4j2.xml"
        self.template = self.pom.parent / "server.properties.template"

        self.lib_dir = self.home / "lib"
        self.data_dir = self.home / "data"
        self.config_path = self.home / "server.properties"
        self.log_path = self.home / "broker.log"
        self.pid_path = self.home / "broker.pid"
        self.cluster_id_path = self.home / "cluster.id"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    # ---------------------------------------------------------------- public API

    def start(self, timeout: float = 120.0) -> str:
        """Start the broker if it is not running; return the bootstrap address `host:port`.

        Idempotent: a live broker of this home that answers on its port is returned at once.
        The Maven assembly of `lib/` on a first run is not counted in `timeout`, which bounds
        the wait for the JVM to become ready. On failure nothing is left running and
        BrokerError carries the tail of the broker log.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock():
            pid = self._our_pid()
            if pid is not None:
                if _port_accepts(self.host, self.port):
                    return self.bootstrap
                # Alive but not answering yet: another caller is starting it. Wait for it.
                self._wait_ready(pid, time.monotonic() + timeout)
                return self.bootstrap
            self.pid_path.unlink(missing_ok=True)  # stale, if any

            for port in (self.port, self.controller_port):
                if not _port_free(self.host, port):
                    raise BrokerError(
                        f"port {self.host}:{port} is already in use by another process, "
                        f"not by the local broker of {self.home}; stop it or choose other ports"
                    )

            java = self._java()
            self.ensure_classpath()
            self._render_config()
            self._format_storage(java)

            # Keep one previous log for post-mortems; the readiness check reads only this run's.
            if self.log_path.exists():
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
            self.log_path.touch()
            cmd = [
                java,
                *HEAP_OPTS,
                f"-Dlog4j2.configurationFile={self.log4j_config}",
                "-cp",
                str(self.lib_dir / "*"),
                MAIN_CLASS,
                str(self.config_path),
            ]
            pid = self._launch(cmd)
            self.pid_path.write_text(f"{pid}\n")
            try:
                self._wait_ready(pid, time.monotonic() + timeout)
            except BrokerError:
                self._terminate(pid, 10.0)
                self.pid_path.unlink(missing_ok=True)
                raise
            return self.bootstrap

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker with SIGTERM (SIGKILL after `timeout`). Return whether one was running."""
        if not self.home.exists():
            return False
        with self._lock():
            pid = self._our_pid()
            if pid is not None:
                self._terminate(pid, timeout)
            self.pid_path.unlink(missing_ok=True)
            return pid is not None

    def status(self) -> BrokerStatus:
        pid = self._our_pid()
        if pid is None:
            stale = self._read_pid()
            detail = "not running" + (f" (stale pid file: {stale})" if stale is not None else "")
            return BrokerStatus(False, None, self.bootstrap, self.log_path, detail)
        if _port_accepts(self.host, self.port):
            detail = f"running, pid {pid}, answering on {self.bootstrap}"
            return BrokerStatus(True, pid, self.bootstrap, self.log_path, detail)
        detail = f"pid {pid} alive but {self.bootstrap} not answering (starting or stuck)"
        return BrokerStatus(False, pid, self.bootstrap, self.log_path, detail)

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

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").is_file():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is not on PATH (and JAVA_HOME is unset): a JDK 17+ is needed")
        return java

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _our_pid(self) -> int | None:
        """The pid from the pid file if that process is alive and is this home's broker."""
        pid = self._read_pid()
        if pid is None or not _alive(pid):
            return None
        cmdline = _cmdline(pid)
        # Guard against pid reuse: the process must be kafka.Kafka with our config file.
        if cmdline is not None and (
            MAIN_CLASS not in cmdline or str(self.config_path) not in cmdline
        ):
            return None
        return pid

    def _render_config(self) -> None:
        template = string.Template(self.template.read_text())
        text = template.substitute(
            host=self.host,
            port=self.port,
            controller_port=self.controller_port,
            log_dirs=self.data_dir,
        )
        self.config_path.write_text(text)

    def _cluster_id(self) -> str:
        with contextlib.suppress(OSError):
            cid = self.cluster_id_path.read_text().strip()
            if cid:
                return cid
        cid = _new_cluster_id()
        self.cluster_id_path.write_text(cid + "\n")
        return cid

    def _format_storage(self, java: str) -> None:
        # Formatting writes meta.properties and the bootstrap checkpoint; once done it is skipped
        # (and --ignore-formatted makes a repeat harmless anyway).
        if (self.data_dir / "meta.properties").is_file():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            java,
            "-Xmx256m",
            f"-Dlog4j2.configurationFile={self.log4j_config}",
            "-cp",
            str(self.lib_dir / "*"),
            STORAGE_TOOL,
            "format",
            "-t",
            self._cluster_id(),
            "-c",
            str(self.config_path),
            "--ignore-formatted",
        ]
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise BrokerError(
                f"formatting {self.data_dir} failed (exit {done.returncode}):\n"
                + (done.stdout + done.stderr)[-4000:]
            )

    def _launch(self, cmd: list[str]) -> int:
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
            return int(done.stdout.strip())
        except ValueError:
            raise BrokerError(f"could not launch the broker: {done.stderr.strip()}") from None

    def _wait_ready(self, pid: int, deadline: float) -> None:
        """Wait until the port accepts and the log says the server started."""
        while True:
            if not _alive(pid):
                raise BrokerError(
                    f"the broker (pid {pid}) exited during startup; last lines of {self.log_path}:\n"
                    + _tail(self.log_path)
                )
            if _port_accepts(self.host, self.port) and READY_LINE in self._log_text():
                return
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"the broker (pid {pid}) was not ready on {self.bootstrap} in time; "
                    f"last lines of {self.log_path}:\n" + _tail(self.log_path)
                )
            time.sleep(0.2)

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _terminate(self, pid: int, timeout: float) -> None:
        """SIGTERM (a clean shutdown flushes the logs and closes the metadata log), then SIGKILL."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(0.1)
        raise BrokerError(f"the broker (pid {pid}) survived SIGKILL")
