"""The walking skeleton with four separate service processes over the real Kafka broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.registry import all_definitions
from shared.settings import SERVICES
from tests.integration.accounts.test_smoke import BODY
from tests.support import bearer, eventually, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.e2e]
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def services(db_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        "ILA_ENV": "test",
        "ILA_DATABASE_URL": db_url,
        "ILA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ILA_LOG_LEVEL": "WARNING",
        "ILA_RELAY_IDLE_INTERVAL": "0.2",
    }
    procs = []
    for name in SERVICES:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(
            (
                subprocess.Popen(
                    [sys.executable, "-m", "shared.cli", "serve", name, "--port", str(ports[name])],
                    env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    try:
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, log in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        for name in SERVICES:
            text = (tmp_path / f"{name}.log").read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- {name} log ---\n{text[-4000:]}")


async def test_walking_skeleton_over_kafka(services: dict[str, str], db_url: str) -> None:
    assert len(all_definitions()) == 4
    settings = settings_for(db_url)
    agency = bearer(settings, "agency", agency_id="pes-fr")
    async with httpx.AsyncClient(timeout=10) as client:
        for name, base in services.items():
            await eventually(
                lambda base=base: _ready(client, base), timeout=90, interval=0.5
            )
        r = await client.post(f"{services['accounts']}/v1/accounts", json=BODY, headers=agency)
        assert r.status_code == 201, r.text
        account_id = r.json()["account_id"]
        learner = bearer(settings, "learner", sub=account_id)
        balance = await eventually(
            lambda: client.get(
                f"{services['ledger']}/v1/ledger/accounts/{account_id}/balance", headers=learner
            ),
            lambda resp: resp.status_code == 200,
            timeout=60,
            interval=0.2,
        )
        assert balance.json()["available"] == 0
        assert balance.json()["status"] == "open"


async def _ready(client: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await client.get(f"{base}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False
