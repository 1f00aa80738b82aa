"""Service processes for end-to-end tests: started, killed and restarted at will."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import IO

import httpx

from ila.kafka_acls import all_acls, grant
from ila.kafka_secure import SecureBroker
from shared.settings import SERVICES
from tests.support import eventually, free_port

REPO = Path(__file__).resolve().parents[2]


class Cluster:
    """One process per service over Kafka, on this test's own topics. With ``secure`` (a
    broker from ``start_broker(secure=True)``) each service logs in as its own principal
    over SASL_SSL and may touch only what its ACLs allow (:meth:`authorize` grants them)."""

    def __init__(
        self, db_url: str, kafka_bootstrap: str, logs: Path, *, secure: SecureBroker | None = None
    ) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:8]}."
        self.kafka_bootstrap = kafka_bootstrap
        self.secure = secure
        self.ports = {name: free_port() for name in SERVICES}
        self.logs = logs
        self.env = {
            **os.environ,
            "ILA_ENV": "test",
            "ILA_DATABASE_URL": db_url,
            "ILA_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "ILA_LOG_LEVEL": "WARNING",
            "ILA_RELAY_IDLE_INTERVAL": "0.2",
            "ILA_KAFKA_TOPIC_PREFIX": self.prefix,
        }
        self.procs: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def kafka_env(self, user: str) -> dict[str, str]:
        """The ``ILA_KAFKA_*`` login of ``user`` (a service or ``audit``); none when open."""
        return self.secure.environment(user) if self.secure is not None else {}

    async def authorize(self) -> None:
        """Grant every principal its ACLs on this cluster's topics (secure broker only)."""
        if self.secure is not None:
            await grant(self.kafka_bootstrap, self.secure.client(), all_acls(self.prefix))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, *names: str) -> None:
        """Start each service named (all by default); ``payments-2`` is a second replica of
        payments, on a port of its own, in the same consumer group."""
        for name in names or SERVICES:
            service = name.partition("-")[0]
            if name not in self.ports:
                self.ports[name] = free_port()
            port = self.ports[name]
            log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ila.cli",
                    "serve",
                    service,
                    "--port",
                    str(port),
                ],
                env={**self.env, **self.kafka_env(service)},
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.procs[name] = (proc, log)

    async def ready(self, *names: str) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            for name in names or tuple(self.procs):

                async def probe(name: str = name) -> bool:
                    try:
                        return (await client.get(f"{self.url(name)}/readyz")).status_code == 200
                    except httpx.HTTPError:
                        return False

                await eventually(probe, timeout=90, interval=0.3)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hook runs, whatever was in flight is cut off."""
        proc, log = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        log.close()

    def terminate(self, name: str) -> None:
        """SIGTERM: the service stops as a deploy stops it (its consumers leave their groups)."""
        proc, log = self.procs.pop(name)
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    def stop(self) -> None:
        for proc, _ in self.procs.values():
            proc.terminate()
        for proc, log in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        self.procs.clear()
        for path in self.logs.glob("*.log"):
            text = path.read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- {path.name} ---\n{text[-4000:]}")


async def approved(
    client: httpx.AsyncClient, base: str, proposed: httpx.Response, finance: dict[str, str]
) -> dict[str, object]:
    """A second person (finance) approves what ``proposed`` asked for; the approval."""
    assert proposed.status_code == 202, proposed.text
    r = await client.post(f"{base}{proposed.headers['location']}/approve", headers=finance)
    assert r.status_code == 200, r.text
    decision: dict[str, object] = r.json()
    assert decision["status"] == "approved", decision
    return decision


async def allocate(
    client: httpx.AsyncClient,
    ledger: str,
    year: int,
    admin: dict[str, str],
    finance: dict[str, str],
    policy: dict[str, object] | None = None,
) -> str:
    """The year's policy and allocation, each proposed by an admin and approved by finance;
    the URL of the allocation run."""
    r = await client.put(f"{ledger}/v1/ledger/policies/{year}", json=policy or {}, headers=admin)
    await approved(client, ledger, r, finance)
    r = await client.post(f"{ledger}/v1/ledger/allocations", json={"year": year}, headers=admin)
    decision = await approved(client, ledger, r, finance)
    result = decision["result"]
    assert isinstance(result, dict)
    return f"{ledger}/v1/ledger/allocations/{result['allocation_id']}"
