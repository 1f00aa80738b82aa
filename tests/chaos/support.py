"""What the chaos run is made of: its own PostgreSQL server (stopped in ``immediate`` mode
and started again), the four services as processes on the three-broker cluster, and an HTTP
caller that retries an operation with its Idempotency-Key until the system answers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ila.postgres import embedded_postgres_url, pg_ctl
from tests.e2e.support import Cluster


class ChaosPostgres:
    """An embedded PostgreSQL server of the chaos run alone (the session's is shared)."""

    def __init__(self) -> None:
        self.root = Path(
            tempfile.mkdtemp(prefix="ila-chaos-pg-", dir=os.environ.get("ILA_TEST_TMP"))
        )
        self.url = embedded_postgres_url(self.root)
        from embedded_postgres.postgres_server import get_server

        self.server: Any = get_server((self.root / "postgres").resolve())

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every backend is cut off, no checkpoint is written;
        the next start recovers from the WAL."""
        pg_ctl(["-w", "stop", "-m", "immediate"], self.server.pgdata, self.server.system_user)

    def start(self) -> None:
        self.server._postmaster_info = None
        self.server.ensure_postgres_running()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort at the end of a run
            pg_ctl(["-w", "stop", "-m", "fast"], self.server.pgdata, self.server.system_user)
        shutil.rmtree(self.root, ignore_errors=True)


class Retry(Exception):
    """The answer means "not yet" (an event still on its way): ask again."""


@dataclass
class Caller:
    """Sends one operation until it is answered: a lost connection, a 5xx or a "not yet"
    answer is retried with the same Idempotency-Key, so an operation is applied once however
    often it is sent."""

    client: httpx.AsyncClient
    deadline: float = 180.0
    retries: Counter[str] = field(default_factory=Counter)

    async def send(
        self,
        what: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        ok: tuple[int, ...] = (200, 201, 202),
        not_yet: tuple[int, ...] = (),
        not_yet_codes: tuple[str, ...] = (),
    ) -> httpx.Response:
        key = str(uuid.uuid4())
        started = time.monotonic()
        pause = 0.1
        while True:
            try:
                r = await self.client.request(
                    method, url, headers={**headers, "Idempotency-Key": key}, json=json
                )
                if r.status_code in ok:
                    return r
                code = _code(r)
                if (
                    r.status_code >= 500
                    or r.status_code in (*not_yet, 429)
                    or code in not_yet_codes
                ):
                    raise Retry(f"{r.status_code} {code}")
                raise AssertionError(f"{what}: {method} {url} answered {r.status_code}: {r.text}")
            except (httpx.HTTPError, Retry) as exc:
                self.retries[what] += 1
                if time.monotonic() - started > self.deadline:
                    raise AssertionError(
                        f"{what} still unanswered after {self.deadline} s: {exc}"
                    ) from None
                await asyncio.sleep(pause)
                pause = min(pause * 1.5, 2.0)

    async def poll(
        self, url: str, headers: dict[str, str], done: Any, within: float = 180.0
    ) -> dict[str, Any]:
        started = time.monotonic()
        last: Any = None
        while time.monotonic() - started < within:
            try:
                r = await self.client.get(url, headers=headers)
                if r.status_code == 200:
                    last = r.json()
                    if done(last):
                        return last  # type: ignore[no-any-return]
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.25)
        raise AssertionError(f"{url} never reached the expected state: {last}")


def _code(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def sepa_total(xml: str) -> int:
    """The sum of a pain.001 file's instructed amounts, in cents."""
    amounts = re.findall(r"<InstdAmt[^>]*>([0-9.]+)</InstdAmt>", xml)
    return sum(round(float(a) * 100) for a in amounts)


def chaos_cluster(db_url: str, bootstrap: str, logs: Path, replicas: int) -> Cluster:
    cluster = Cluster(db_url, bootstrap, logs)
    cluster.env.update(
        {
            "ILA_KAFKA_REPLICATION_FACTOR": str(replicas),
            "ILA_PAYMENTS_VELOCITY_PER_HOUR": "1000000",
            "ILA_PAYMENTS_PAYEE_COOLING_OFF_DAYS": "0",
            "ILA_PAYMENTS_ATTESTATION_DAYS": "0",
            # the sweep that lapses attestation windows (claims payable at once)
            "ILA_PAYMENTS_SWEEP_INTERVAL_SECONDS": "1",
            "ILA_LEDGER_CHECKPOINT_EVERY_SECONDS": "5",
            "ILA_LEDGER_CHECKPOINT_EVERY_EVENTS": "500",
            "ILA_DB_POOL_SIZE": "8",
        }
    )
    return cluster
