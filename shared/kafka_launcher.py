"""A local Apache Kafka broker for development and tests, run from Maven Central jars.

This module owns the whole life of that broker: fetching its jars into a cache
(``deploy/kafka/pom.xml``), writing ``server.properties`` for a single combined KRaft node,
formatting its storage, starting and stopping the JVM, waiting until a client can use it,
and creating the topics the services need. Nothing else in the project starts Java.

A broker's working directory holds ``server.properties``, ``data/`` (Kafka's log dirs),
``logs/`` (log4j output and the JVM's stdout/stderr) and ``broker.json`` (pid and
bootstrap address) so another process, e.g. ``make down``, can find and stop it.

Command line: ``python -m shared.kafka_launcher fetch | start --workdir DIR | stop --workdir DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
DEFAULT_CACHE: Path = REPO_ROOT / ".cache" / "kafka"
POM: Path = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J_CONFIG: Path = REPO_ROOT / "deploy" / "kafka" / "log4j2.properties"

HOST = "127.0.0.1"
NODE_ID = 1
STATE_FILE = "broker.json"
SERVER_PROPERTIES = "server.properties"
STDOUT_LOG = "broker.out"
SERVER_LOG = "server.log"
# Maven resolves a plugin by version; pinned here as in the pom so a fetch is reproducible.
COPY_DEPENDENCIES = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"


# --------------------------------------------------------------------------- jars


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _java() -> str:
    # JAVA_HOME wins over PATH, as with Kafka's own scripts.
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            "java not found: the Kafka broker needs a Java 17+ runtime on PATH or in JAVA_HOME"
        )
    return java


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    # Parallel test workers or two `make` targets may fetch at once; one copy at a time.
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_jars(cache: Path = DEFAULT_CACHE) -> Path:
    """Copy the broker's runtime classpath into ``cache/libs`` unless it is already current.

    The copy is redone when the pom changed since the last fetch (its sha256 is kept in
    ``cache/libs.sha256``). Returns the libs directory.
    """
    libs = cache / "libs"
    stamp = cache / "libs.sha256"
    pom_hash = _sha256(POM)
    with _locked(cache / ".fetch.lock"):
        if libs.is_dir() and stamp.is_file() and stamp.read_text().strip() == pom_hash:
            return libs
        _java()  # Maven itself runs on Java; fail with the clearer message first.
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError(
                "mvn not found: Apache Maven is needed once to fetch the Kafka jars "
                f"into {libs} (apt-get install maven)"
            )
        # A fresh directory, swapped in at the end: jars left over from an older pom would
        # otherwise sit on the classpath next to their replacements.
        staging = cache / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(POM),
                COPY_DEPENDENCIES,
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not any(staging.glob("kafka_*.jar")):
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise RuntimeError(f"fetching the Kafka jars with Maven failed:\n{output}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        stamp.write_text(pom_hash + "\n")
        return libs


# --------------------------------------------------------------------------- broker


@dataclass
class KafkaBroker:
    """A broker started by this module; ``process`` is None when found via ``broker.json``."""

    workdir: Path
    port: int
    controller_port: int
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None

    def __post_init__(self) -> None:
        if self.pid is None and self.process is not None:
            self.pid = self.process.pid

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

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


def _server_properties(workdir: Path, port: int, controller_port: int) -> str:
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
    lines = ["# Written by shared/kafka_launcher.py on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _new_cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding (22 chars).
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


def _format_storage(java: str, libs: Path, workdir: Path) -> None:
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
            "-t",
            _new_cluster_id(),
            "-c",
            str(workdir / SERVER_PROPERTIES),
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
    # broker.json may outlive its broker and the pid be reused by an unrelated process;
    # the command line tells whether it is still our JVM.
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        # PermissionError: alive but another user's, so not a broker this user started.
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True  # No procfs (macOS): a live pid is the best evidence there is.
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    properties = str(workdir.resolve() / SERVER_PROPERTIES).encode()
    return b"kafka.Kafka" in args and properties in args


def _read_state(workdir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((workdir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def running_broker(workdir: Path) -> KafkaBroker | None:
    """The broker recorded in ``workdir/broker.json`` if it is still running, else None."""
    workdir = workdir.resolve()
    state = _read_state(workdir)
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
    return KafkaBroker(workdir=workdir, port=port, controller_port=controller_port, pid=pid)


async def _probe(bootstrap: str, seconds: float) -> bool:
    """One attempt: can a client bootstrap and see a broker and a controller?"""
    host, _, port = bootstrap.rpartition(":")
    # A plain TCP connect first: aiokafka logs an ERROR for every refused bootstrap.
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), seconds)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(seconds * 1000))
    )
    try:
        await asyncio.wait_for(admin.start(), seconds)
        cluster: dict[str, Any] = await asyncio.wait_for(admin.describe_cluster(), seconds)
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    # KRaft reports a live broker as "controller"; -1 means metadata is not published yet,
    # and admin requests routed to the controller would fail.
    return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) != -1


async def _wait_ready(bootstrap: str, seconds: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if not alive():
            raise RuntimeError(f"the Kafka broker at {bootstrap} exited while starting")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the Kafka broker at {bootstrap} was not ready in {seconds:.0f} s")
        if await _probe(bootstrap, min(5.0, max(remaining, 0.5))):
            return
        await asyncio.sleep(min(0.25, max(deadline - time.monotonic(), 0)))


# `timeout` rather than asyncio.timeout(): the same knob as start_broker's, and the wait is
# a polling loop that needs to know its deadline anyway.
async def wait_ready(bootstrap: str, timeout: float) -> None:  # noqa: ASYNC109
    """Wait until an aiokafka client can bootstrap from ``bootstrap``; TimeoutError if not."""
    await _wait_ready(bootstrap, timeout, lambda: True)


def _run_sync(make: Callable[[], Any]) -> None:
    # start_broker is sync but may be called from a thread that already runs an event loop
    # (an async test fixture); asyncio.run refuses that, so the wait moves to a thread.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make())
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="kafka-wait-ready")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def start_broker(
    workdir: Path,
    *,
    cache: Path = DEFAULT_CACHE,
    port: int | None = None,
    heap: str = "512m",
    timeout: float = 90.0,
) -> KafkaBroker:
    """Start a single-node KRaft broker in ``workdir`` and return once clients can use it.

    Free ports on 127.0.0.1 are picked unless ``port`` is given. Raises RuntimeError (with
    the tail of the broker's log) if the broker dies, is not ready within ``timeout``
    seconds, or a broker from this workdir is already running.
    """
    workdir = workdir.resolve()
    existing = running_broker(workdir)
    if existing is not None:
        raise RuntimeError(
            f"a Kafka broker from {workdir} is already running (pid {existing.pid}, "
            f"{existing.bootstrap}); stop it first"
        )
    java = _java()
    libs = fetch_jars(cache)

    if port is None:
        port, controller_port = _free_ports(2)
    else:
        if not _port_is_free(port):
            raise RuntimeError(f"port {port} on {HOST} is already in use")
        controller_port = next(p for p in _free_ports(2) if p != port)

    (workdir / "data").mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / SERVER_PROPERTIES).write_text(_server_properties(workdir, port, controller_port))
    _format_storage(java, libs, workdir)

    command = [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
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
        workdir=workdir, port=port, controller_port=controller_port, process=process
    )
    try:
        _run_sync(lambda: _wait_ready(broker.bootstrap, timeout, lambda: process.poll() is None))
    except (RuntimeError, TimeoutError) as exc:
        stop_broker(broker, timeout=10.0)
        raise RuntimeError(f"{exc}\n{_log_tail(workdir)}") from None
    state = {
        "pid": process.pid,
        "bootstrap": broker.bootstrap,
        "port": port,
        "controller_port": controller_port,
        "started_at": time.time(),
    }
    (workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return broker


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The broker leads its own process group (start_new_session); signalling the group
    # also reaches anything it may have forked.
    with contextlib.suppress(ProcessLookupError):
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
                return
        except ProcessLookupError:
            return
        os.kill(pid, sig)


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
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
    elif broker.pid is not None and _pid_is_broker(broker.pid, broker.workdir):
        # Not our child (started by another launcher): no wait(), so poll until it is gone.
        _signal_group(broker.pid, signal.SIGTERM)
        if not _wait_pid_gone(broker.pid, broker.workdir, timeout):
            _signal_group(broker.pid, signal.SIGKILL)
            _wait_pid_gone(broker.pid, broker.workdir, 10.0)
    state = _read_state(broker.workdir)
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


# --------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 6
    config: dict[str, str] = field(default_factory=dict)


async def ensure_topics(bootstrap: str, topics: Sequence[TopicSpec], within: float = 30.0) -> None:
    """Create the topics that do not exist yet (replication factor 1); leave others alone.

    ``within`` bounds each admin request and the wait for leaders, in seconds. Returns once
    every topic has a leader for each partition, so producing right after does not race the
    metadata propagation from the controller to the broker.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(within * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        if missing:
            new_topics = [
                NewTopic(
                    name=topic.name,
                    num_partitions=topic.partitions,
                    replication_factor=1,
                    topic_configs=dict(topic.config),
                )
                for topic in missing
            ]
            try:
                response = await admin.create_topics(new_topics, timeout_ms=int(within * 1000))
            except TopicAlreadyExistsError:
                response = None  # created concurrently by another service: fine
            # aiokafka returns per-topic error codes instead of raising them.
            for entry in getattr(response, "topic_errors", ()):
                name, code = str(entry[0]), int(entry[1])
                message = str(entry[2]) if len(entry) > 2 and entry[2] else ""
                if code == 0 or for_code(code) is TopicAlreadyExistsError:
                    continue
                error = for_code(code)
                raise RuntimeError(
                    f"creating Kafka topic {name!r} failed: {error.__name__} {message}"
                )
        await _wait_for_leaders(admin, [topic.name for topic in topics], within)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: Any, names: list[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        described: list[dict[str, Any]] = await admin.describe_topics(names)
        pending = [
            str(topic["topic"])
            for topic in described
            if topic["error_code"] != 0
            or not topic["partitions"]
            or any(partition["leader"] < 0 for partition in topic["partitions"])
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kafka topics without a leader after {seconds:.0f} s: {pending}")
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- CLI


def _run_foreground(broker: KafkaBroker) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert broker.process is not None
        while not stop.wait(0.5):
            if broker.process.poll() is not None:
                print(
                    f"Kafka broker exited unexpectedly (code {broker.process.returncode})\n"
                    f"{_log_tail(broker.workdir)}",
                    file=sys.stderr,
                )
                stop_broker(broker)
                return 1
        stop_broker(broker)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.kafka_launcher", description="Run a local Kafka broker."
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="jar cache directory")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download the broker's jars into the cache")
    start = commands.add_parser("start", help="start a broker (detached unless --foreground)")
    start.add_argument("--workdir", type=Path, required=True)
    start.add_argument("--port", type=int, default=None)
    start.add_argument("--heap", default="512m")
    start.add_argument("--timeout", type=float, default=90.0)
    start.add_argument(
        "--foreground", action="store_true", help="run until SIGINT/SIGTERM, then stop"
    )
    stop = commands.add_parser("stop", help="stop the broker started from a workdir")
    stop.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            print(fetch_jars(args.cache))
            return 0
        if args.command == "start":
            running = running_broker(args.workdir)
            if running is not None and not args.foreground:
                # `make up` twice is not an error: report the broker that is already there.
                print(running.bootstrap)
                return 0
            broker = start_broker(
                args.workdir,
                cache=args.cache,
                port=args.port,
                heap=args.heap,
                timeout=args.timeout,
            )
            print(broker.bootstrap, flush=True)
            return _run_foreground(broker) if args.foreground else 0
        if args.command == "stop":
            stopped = stop_from_workdir(args.workdir)
            print("stopped" if stopped else "no Kafka broker running")
            return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")


if __name__ == "__main__":
    raise SystemExit(main())
