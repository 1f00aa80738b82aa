"""The peer: the general-purpose ``eventsourcing`` library on the same PostgreSQL.

One operation is what the ledger's consumers do per command: load an aggregate (a wallet
whose history holds a few events), decide, append one event. The library is synchronous
(psycopg 3 with a connection pool), so the callers are threads, as many as the ledger has
concurrent callers in the same run. Its appends serialise on a table lock (its way of
keeping notification ids gap-free), which is what the specialised ledger must leave behind.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Wallet(Aggregate):
    """A wallet as the peer would model it: a balance and its events."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.balance = 0

    @event("Credited")
    def credit(self, amount: int) -> None:
        self.balance += amount


class Wallets(Application[uuid.UUID]):
    pass


def peer_env(url: str, clients: int) -> dict[str, str]:
    """The library's settings for the database behind an asyncpg URL of ``ila.postgres``."""
    parsed = urlparse(url.replace("postgresql+asyncpg", "postgresql"))
    query = parse_qs(parsed.query)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parsed.path.lstrip("/"),
        "POSTGRES_HOST": query.get("host", [parsed.hostname or "127.0.0.1"])[0],
        "POSTGRES_PORT": str(parsed.port or query.get("port", ["5432"])[0]),
        "POSTGRES_USER": parsed.username or "postgres",
        "POSTGRES_PASSWORD": parsed.password or "",
        "POSTGRES_SCHEMA": "peer",
        "POSTGRES_POOL_SIZE": str(clients),
        "POSTGRES_MAX_OVERFLOW": "0",
        "CREATE_TABLE": "y",
    }


def load_append_per_s(url: str, clients: int, seconds: float, wallets: int = 2000) -> float:
    """Load+append operations per second at ``clients`` concurrent callers."""
    import psycopg

    env = peer_env(url, clients)
    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        autocommit=True,
    ) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS peer")
    app = Wallets(env=env)
    ids: list[uuid.UUID] = []
    for i in range(wallets):
        wallet = Wallet(f"w{i}")
        wallet.credit(100)
        app.save(wallet)
        ids.append(wallet.id)
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            wallet: Any = app.repository.get(ids[i % len(ids)])
            wallet.credit(10)
            app.save(wallet)
            done[k] += 1
            i += clients

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t
    app.close()
    return sum(done) / elapsed
