"""A local three-broker (or N-broker) Apache Kafka cluster on 127.0.0.1, from the same Maven
jars as the single development broker (:mod:`ila.kafka`).

Each node is a combined KRaft broker and controller; the controllers form one static quorum,
so the cluster survives the loss of any one node. Topics are replicated on every node
(``default.replication.factor`` = the number of nodes, at most 3) with
``min.insync.replicas=2``, so a producer with ``acks=all`` (``shared/bus/kafka.py``) has
each record on two nodes before it is acknowledged. The internal topics (consumer offsets,
transaction state) are replicated likewise.

Layout of the working directory: ``cluster.json`` (cluster id, ports, pids) and one
directory ``node-<id>/`` per node, laid out like a single broker's (``server.properties``,
``data/``, ``logs/``, ``broker.json``), so :func:`ila.kafka.running_broker` finds each node.
:func:`kill_node` (SIGKILL) and :func:`restart_node` (same ports, same data) are for fault
tests. The command line is ``ila up --brokers 3`` and ``ila kafka start --brokers 3``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from ila.detached import signal_group
from ila.kafka import (
    HOST,
    LOG4J_CONFIG,
    SERVER_PROPERTIES,
    STATE_FILE,
    STDOUT_LOG,
    KafkaBroker,
    _format_storage,
    _free_ports,
    _log_tail,
    _new_cluster_id,
    running_broker,
    stop_broker,
)
from ila.kafka_jars import DEFAULT_CACHE, fetch_jars, find_java
from ila.kafka_probe import run_blocking, wait_until_ready

CLUSTER_FILE = "cluster.json"


@dataclass
class KafkaCluster:
    workdir: Path
    cluster_id: str
    # node id -> (client port, controller port)
    ports: dict[int, tuple[int, int]]
    nodes: dict[int, KafkaBroker] = field(default_factory=dict)
    heap: str = "384m"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{port}" for port, _ in self.ports.values())

    @property
    def replication_factor(self) -> int:
        return min(3, len(self.ports))

    def node_dir(self, node_id: int) -> Path:
        return self.workdir / f"node-{node_id}"

    def alive(self, node_id: int) -> bool:
        node = self.nodes.get(node_id)
        if node is None:
            return False
        if node.process is not None:
            return node.process.poll() is None
        return running_broker(node.workdir) is not None


def _voters(ports: dict[int, tuple[int, int]]) -> str:
    return ",".join(f"{node}@{HOST}:{controller}" for node, (_, controller) in ports.items())


def node_properties(cluster: KafkaCluster, node_id: int) -> str:
    port, controller_port = cluster.ports[node_id]
    replicas = cluster.replication_factor
    min_isr = min(2, replicas)
    settings: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": _voters(cluster.ports),
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(cluster.node_dir(node_id) / "data"),
        "num.partitions": 6,
        "auto.create.topics.enable": "false",
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        # a replica that fell behind never becomes leader: acknowledged records are kept
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": 6,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 6,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": 0,
        # a killed node is noticed in seconds (tests kill nodes on purpose)
        "broker.session.timeout.ms": 6000,
        "broker.heartbeat.interval.ms": 1000,
    }
    lines = ["# Written by ila/kafka_cluster.py on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _java(java: str, libs: Path, workdir: Path, *args: str, heap: str = "256m") -> list[str]:
    return [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        # quicker start and a smaller footprint: several JVMs share a small machine
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={workdir / 'logs'}",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp",
        f"{libs}/*",
        *args,
    ]


def _format(java: str, libs: Path, cluster: KafkaCluster, node_id: int) -> None:
    _format_storage(java, libs, cluster.node_dir(node_id), cluster_id=cluster.cluster_id)


def _launch(java: str, libs: Path, cluster: KafkaCluster, node_id: int) -> KafkaBroker:
    workdir = cluster.node_dir(node_id)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / SERVER_PROPERTIES).write_text(node_properties(cluster, node_id))
    _format(java, libs, cluster, node_id)
    command = _java(
        java, libs, workdir, "kafka.Kafka", str(workdir / SERVER_PROPERTIES), heap=cluster.heap
    )
    with (workdir / "logs" / STDOUT_LOG).open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    port, controller_port = cluster.ports[node_id]
    node = KafkaBroker(
        workdir=workdir.resolve(), port=port, controller_port=controller_port, process=process
    )
    state = {
        "pid": process.pid,
        "bootstrap": node.bootstrap,
        "port": port,
        "controller_port": controller_port,
        "started_at": time.time(),
    }
    (workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    cluster.nodes[node_id] = node
    return node


def _save(cluster: KafkaCluster) -> None:
    state: dict[str, Any] = {
        "cluster_id": cluster.cluster_id,
        "bootstrap": cluster.bootstrap,
        "nodes": {
            str(node_id): {"port": port, "controller_port": controller}
            for node_id, (port, controller) in cluster.ports.items()
        },
    }
    (cluster.workdir / CLUSTER_FILE).write_text(json.dumps(state, indent=2) + "\n")


async def _all_registered(bootstrap: str, count: int, seconds: float) -> None:
    """Wait until the cluster's metadata lists ``count`` live brokers."""
    deadline = time.monotonic() + seconds
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            described: dict[str, Any] = await admin.describe_cluster()
            if len(described.get("brokers") or ()) >= count:
                return
        except (KafkaError, OSError, TimeoutError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Kafka cluster did not list {count} brokers in {seconds:.0f} s")
        await asyncio.sleep(0.5)


def _wait(cluster: KafkaCluster, timeout: float, node_ids: list[int]) -> None:
    """Each of ``node_ids`` answers clients, and the cluster lists every running node."""
    deadline = time.monotonic() + timeout

    async def ready() -> None:
        for n in node_ids:
            port = cluster.ports[n][0]
            await wait_until_ready(
                f"{HOST}:{port}",
                max(1.0, deadline - time.monotonic()),
                lambda n=n: cluster.alive(n),  # type: ignore[misc]
            )
        await _all_registered(
            f"{HOST}:{cluster.ports[node_ids[0]][0]}",
            sum(1 for n in cluster.ports if cluster.alive(n)),
            max(1.0, deadline - time.monotonic()),
        )

    try:
        run_blocking(ready)
    except (RuntimeError, TimeoutError) as exc:
        tails = "\n".join(_log_tail(cluster.node_dir(n)) for n in node_ids)
        raise RuntimeError(f"{exc}\n{tails}") from None


def start_cluster(
    workdir: Path,
    brokers: int = 3,
    *,
    cache: Path = DEFAULT_CACHE,
    base_port: int | None = None,
    heap: str = "384m",
    timeout: float = 120.0,
) -> KafkaCluster:
    """Start ``brokers`` nodes in ``workdir`` and return once clients can use the cluster.

    A workdir that already holds a cluster (``cluster.json``) is started again with its
    ports and data; ``base_port`` fixes the client ports (``base_port``, ``+1``...), else
    free ports are picked.
    """
    if brokers < 1:
        raise ValueError("a cluster needs at least one broker")
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = load_cluster(workdir)
    if cluster is None:
        if base_port is None:
            free = _free_ports(2 * brokers)
            ports = {n: (free[2 * n - 2], free[2 * n - 1]) for n in range(1, brokers + 1)}
        else:
            controllers = _free_ports(brokers)
            ports = {n: (base_port + n - 1, controllers[n - 1]) for n in range(1, brokers + 1)}
        cluster = KafkaCluster(workdir=workdir, cluster_id=_new_cluster_id(), ports=ports)
    cluster.heap = heap
    running = [n for n in cluster.ports if running_broker(cluster.node_dir(n)) is not None]
    if running:
        raise RuntimeError(f"nodes {running} of the Kafka cluster in {workdir} already run")
    _save(cluster)
    java = find_java()
    libs = fetch_jars(cache)
    for node_id in cluster.ports:
        _launch(java, libs, cluster, node_id)
    try:
        _wait(cluster, timeout, list(cluster.ports))
    except RuntimeError:
        stop_cluster(cluster)
        raise
    return cluster


def load_cluster(workdir: Path) -> KafkaCluster | None:
    """The cluster recorded in ``workdir/cluster.json`` (its nodes that still run attached)."""
    workdir = workdir.resolve()
    try:
        state = json.loads((workdir / CLUSTER_FILE).read_text())
        ports = {
            int(n): (int(v["port"]), int(v["controller_port"])) for n, v in state["nodes"].items()
        }
        cluster = KafkaCluster(workdir=workdir, cluster_id=str(state["cluster_id"]), ports=ports)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for node_id in ports:
        node = running_broker(cluster.node_dir(node_id))
        if node is not None:
            cluster.nodes[node_id] = node
    return cluster


def kill_node(cluster: KafkaCluster, node_id: int) -> None:
    """SIGKILL one node: no controlled shutdown, its leaderships move after the session
    timeout."""
    node = cluster.nodes.get(node_id)
    if node is None or node.pid is None:
        raise RuntimeError(f"node {node_id} is not running")
    signal_group(node.pid, signal.SIGKILL)
    if node.process is not None:
        node.process.wait(30)
    (node.workdir / STATE_FILE).unlink(missing_ok=True)
    del cluster.nodes[node_id]


def restart_node(
    cluster: KafkaCluster, node_id: int, *, cache: Path = DEFAULT_CACHE, timeout: float = 90.0
) -> KafkaBroker:
    """Start a stopped node again on its ports with its data; return once it answers."""
    if cluster.alive(node_id):
        raise RuntimeError(f"node {node_id} is running")
    node = _launch(find_java(), fetch_jars(cache), cluster, node_id)
    _wait(cluster, timeout, [node_id])
    return node


def stop_cluster(cluster: KafkaCluster, timeout: float = 30.0) -> None:
    """Stop every node (SIGTERM, a controlled shutdown; SIGKILL after ``timeout``)."""
    for node in list(cluster.nodes.values()):
        if node.process is not None and node.process.poll() is None:
            signal_group(node.process.pid, signal.SIGTERM)
    for node_id, node in list(cluster.nodes.items()):
        stop_broker(node, timeout)
        del cluster.nodes[node_id]


def stop_cluster_from_workdir(workdir: Path, timeout: float = 30.0) -> bool:
    """Stop the cluster recorded in ``workdir``; False when no node of it runs."""
    cluster = load_cluster(workdir)
    if cluster is None or not cluster.nodes:
        return False
    stop_cluster(cluster, timeout)
    return True
