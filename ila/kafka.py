"""A local Apache Kafka broker for development and tests, run from Maven Central jars.

This module owns the life of that broker: writing ``server.properties`` for a single
combined KRaft node, formatting its storage, starting and stopping the JVM and waiting until
a client can use it (its jars come from :mod:`ila.kafka_jars`; the services' topics are
created by :func:`shared.bus.topics.ensure_topics`). Nothing else in the project starts Java.

A broker's working directory holds ``server.properties``, ``data/`` (Kafka's log dirs),
``logs/`` (log4j output and the JVM's stdout/stderr) and ``broker.json`` (pid and
bootstrap address) so another process, e.g. ``make down``, can find and stop it.
The command line is ``ila kafka fetch | start | stop``.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ila import kafka_secure
from ila.detached import pid_runs, read_state, signal_group
from ila.kafka_jars import DEFAULT_CACHE, REPO_ROOT, fetch_jars, find_java
from ila.kafka_probe import run_blocking, wait_until_ready
from ila.kafka_secure import SecureBroker
from shared.bus.security import PLAINTEXT, KafkaSecurity

LOG4J_CONFIG: Path = REPO_ROOT / "deploy" / "kafka" / "log4j2.properties"

HOST = "127.0.0.1"
NODE_ID = 1
STATE_FILE = "broker.json"
SERVER_PROPERTIES = "server.properties"
STDOUT_LOG = "broker.out"
SERVER_LOG = "server.log"
JVM_OPTIONS_ENV = "ILA_KAFKA_JVM_OPTS"
JVM_OPTIONS = ("-XX:+UseG1GC", "-XX:TieredStopAtLevel=1")
"""The JVM flags of a development broker, unless ``ILA_KAFKA_JVM_OPTS`` gives others.

The broker runs with the client compiler (C1) only. A broker started for a test run or a
bench is young: with the default tiered compilation, its optimising compiler (C2) was still
taking 0.13 of a core during the bench's phase at 100 enrolments a second, after its
warm-up, beside the 0.17 its request threads took, on a machine that the services and
PostgreSQL share. C1's code is slower than C2's, but it is compiled once and early: the
broker then took 0.28-0.30 of a core at that rate instead of 0.39-0.41, and it starts about
half a second sooner. A broker that runs for weeks (``deploy/``) keeps the JVM's default
compilers.
"""


@dataclass
class KafkaBroker:
    """A broker started by this module; ``process`` is None when found via ``broker.json``."""

    workdir: Path
    port: int
    controller_port: int
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    # SASL_SSL only (ila/kafka_secure.py): the CA to trust and the principals' passwords
    secure: SecureBroker | None = None

    def __post_init__(self) -> None:
        if self.pid is None and self.process is not None:
            self.pid = self.process.pid

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def admin_security(self) -> KafkaSecurity:
        """How an operator's client reaches this broker (the super user when secure)."""
        return self.secure.client() if self.secure is not None else PLAINTEXT

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"


def _free_ports(count: int) -> list[int]:
    # All sockets stay open until every port is known, so the ports differ from each other.
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def jvm_options() -> list[str]:
    """The JVM's tuning flags: ``JVM_OPTIONS``, or the words of ``ILA_KAFKA_JVM_OPTS`` when
    it is set (empty: the JVM's own defaults)."""
    configured = os.environ.get(JVM_OPTIONS_ENV)
    return shlex.split(configured) if configured is not None else list(JVM_OPTIONS)


def _server_properties(
    workdir: Path, port: int, controller_port: int, secure: SecureBroker | None = None
) -> str:
    settings: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(workdir / "data"),
        "num.partitions": 6,
        # Topics exist because ensure_topics created them with their config, never by accident
        # of a typo in a producer.
        "auto.create.topics.enable": "false",
        # One node: the internal topics' defaults (3 replicas) could never be satisfied.
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        # 50 partitions each by default: on one dev node that only slows the first consumer
        # group and the first transaction (their topics are created on first use) and litters
        # data/ with directories.
        "offsets.topic.num.partitions": 6,
        "transaction.state.log.num.partitions": 6,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        # Without this the first consumer of each group waits 3 s for others to join.
        "group.initial.rebalance.delay.ms": 0,
    }
    if secure is not None:
        settings.update(kafka_secure.server_properties(secure, port, controller_port, HOST))
    lines = ["# Written by ila/kafka.py on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _new_cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding (22 chars).
    # Like Kafka's own Uuid.randomUuid, never one that starts with "-": the storage tool's
    # argument parser would read it as an option.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def _format_storage(
    java: str,
    libs: Path,
    workdir: Path,
    extra: list[str] | None = None,
    *,
    cluster_id: str | None = None,
) -> None:
    """Format a node's storage once (a new cluster id unless the node joins ``cluster_id``)."""
    if (workdir / "data" / "meta.properties").is_file():
        # Already formatted: the store (topics, offsets, cluster id) is kept across restarts.
        return
    result = subprocess.run(
        [
            java,
            "-Xmx256m",
            f"-Dkafka.logs.dir={workdir / 'logs'}",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            f"{libs}/*",
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id or _new_cluster_id()}",
            "-c",
            str(workdir / SERVER_PROPERTIES),
            *(extra or []),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise RuntimeError(f"formatting Kafka storage in {workdir / 'data'} failed:\n{output}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _log_tail(workdir: Path) -> str:
    parts = []
    for name in (SERVER_LOG, STDOUT_LOG):
        tail = _tail(workdir / "logs" / name)
        if tail:
            parts.append(f"--- {workdir / 'logs' / name} (tail) ---\n{tail}")
    return "\n".join(parts) or "(the broker wrote no log)"


def _pid_is_broker(pid: int, workdir: Path) -> bool:
    properties = str(workdir.resolve() / SERVER_PROPERTIES).encode()
    return pid_runs(pid, b"kafka.Kafka", properties)


def running_broker(workdir: Path) -> KafkaBroker | None:
    """The broker recorded in ``workdir/broker.json`` if it is still running, else None."""
    workdir = workdir.resolve()
    state = read_state(workdir / STATE_FILE)
    if state is None:
        return None
    try:
        pid, port, controller_port = (
            int(state["pid"]),
            int(state["port"]),
            int(state["controller_port"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    if not _pid_is_broker(pid, workdir):
        return None
    secure = kafka_secure.prepare(workdir) if state.get("secure") else None
    return KafkaBroker(
        workdir=workdir, port=port, controller_port=controller_port, pid=pid, secure=secure
    )


def start_broker(
    workdir: Path,
    *,
    cache: Path = DEFAULT_CACHE,
    port: int | None = None,
    heap: str = "512m",
    timeout: float = 90.0,
    secure: bool = False,
) -> KafkaBroker:
    """Start a single-node KRaft broker in ``workdir`` and return once clients can use it.

    Free ports on 127.0.0.1 are picked unless ``port`` is given. With ``secure`` the only
    client listener is SASL_SSL with SCRAM logins and ACLs (:mod:`ila.kafka_secure`; the
    broker's ``secure`` tells the CA and passwords). Raises RuntimeError (with the tail of
    the broker's log) if the broker dies, is not ready within ``timeout`` seconds, or a
    broker from this workdir is already running.
    """
    workdir = workdir.resolve()
    existing = running_broker(workdir)
    if existing is not None:
        raise RuntimeError(
            f"a Kafka broker from {workdir} is already running (pid {existing.pid}, "
            f"{existing.bootstrap}); stop it first"
        )
    java = find_java()
    libs = fetch_jars(cache)

    if port is None:
        port, controller_port = _free_ports(2)
    else:
        if not _port_is_free(port):
            raise RuntimeError(f"port {port} on {HOST} is already in use")
        controller_port = next(p for p in _free_ports(2) if p != port)

    (workdir / "data").mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    tls = kafka_secure.prepare(workdir) if secure else None
    (workdir / SERVER_PROPERTIES).write_text(
        _server_properties(workdir, port, controller_port, tls)
    )
    _format_storage(java, libs, workdir, kafka_secure.format_arguments(tls) if tls else None)

    command = [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        *jvm_options(),
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={workdir / 'logs'}",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(workdir / SERVER_PROPERTIES),
    ]
    with (workdir / "logs" / STDOUT_LOG).open("ab") as out:
        # Own session: Ctrl-C in the terminal reaches only the launcher, which then stops the
        # broker cleanly, and a detached broker survives the launcher's exit.
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    broker = KafkaBroker(
        workdir=workdir, port=port, controller_port=controller_port, process=process, secure=tls
    )
    try:
        run_blocking(
            lambda: wait_until_ready(
                broker.bootstrap,
                timeout,
                lambda: process.poll() is None,
                security=broker.admin_security,
            )
        )
    except (RuntimeError, TimeoutError) as exc:
        stop_broker(broker, timeout=10.0)
        raise RuntimeError(f"{exc}\n{_log_tail(workdir)}") from None
    state = {
        "pid": process.pid,
        "bootstrap": broker.bootstrap,
        "port": port,
        "controller_port": controller_port,
        "secure": tls is not None,
        "started_at": time.time(),
    }
    (workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return broker


def _wait_pid_gone(pid: int, workdir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_is_broker(pid, workdir):
            return True
        time.sleep(0.1)
    return not _pid_is_broker(pid, workdir)


def stop_broker(broker: KafkaBroker, timeout: float = 30.0) -> None:
    """SIGTERM the broker (a clean controlled shutdown), SIGKILL it after ``timeout`` seconds."""
    process = broker.process
    if process is not None:
        if process.poll() is None:
            signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
    elif broker.pid is not None and _pid_is_broker(broker.pid, broker.workdir):
        # Not our child (started by another launcher): no wait(), so poll until it is gone.
        signal_group(broker.pid, signal.SIGTERM)
        if not _wait_pid_gone(broker.pid, broker.workdir, timeout):
            signal_group(broker.pid, signal.SIGKILL)
            _wait_pid_gone(broker.pid, broker.workdir, 10.0)
    state = read_state(broker.workdir / STATE_FILE)
    if state is not None and state.get("pid") == broker.pid:
        (broker.workdir / STATE_FILE).unlink(missing_ok=True)


def stop_from_workdir(workdir: Path, timeout: float = 30.0) -> bool:
    """Stop the broker recorded in ``workdir/broker.json``; False when none is running."""
    broker = running_broker(workdir)
    if broker is None:
        (workdir / STATE_FILE).unlink(missing_ok=True)  # stale record of a dead broker
        return False
    stop_broker(broker, timeout)
    return True
