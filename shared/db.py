"""Database plumbing shared by the services: engines, sessions, the unit of work, each
service's Alembic migrations, and which failures are worth retrying.

Each service owns one schema (its name) and its own migration history (version table in
that schema). Nothing here knows any service's tables.
"""

from __future__ import annotations

import logging
import re
import ssl as ssl_module
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.metrics import DB_DISCARDED

log = logging.getLogger(__name__)

R = TypeVar("R")

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    sslmode: str | None = None,
    sslrootcert: Path | str | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine over asyncpg. TLS comes from ``sslmode``/``sslrootcert`` in the URL's query
    (libpq's names) or else from the arguments (``ILA_DB_SSLMODE``/``ILA_DB_SSLROOTCERT``);
    see :func:`ssl_argument`. ``max_overflow``: connections above the pool, opened at
    checkout and closed at return (None: as many as the pool)."""
    parsed = make_url(url)
    query = dict(parsed.query)
    mode = query.pop("sslmode", None) or sslmode
    root = query.pop("sslrootcert", None) or sslrootcert
    ssl = ssl_argument(str(mode) if mode else None, Path(str(root)) if root else None)
    if ssl is not None:
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args["ssl"] = ssl
        kwargs["connect_args"] = connect_args
        parsed = parsed.set(query=query)
    # No ``pool_pre_ping``: over asyncpg it costs three round trips (BEGIN, ``;``, ROLLBACK)
    # on every checkout, i.e. on every transaction. A connection the server dropped fails its
    # first statement instead; SQLAlchemy then discards every older connection of the pool,
    # the consumers and the relay retry (a lost connection is transient), and a request
    # answers 503 (shared.problems).
    overflow = pool_size if max_overflow is None else max_overflow
    engine = create_async_engine(parsed, pool_size=pool_size, max_overflow=overflow, **kwargs)
    event.listen(engine.sync_engine.pool, "checkout", _refuse_dirty)
    return engine


def _refuse_dirty(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A connection the pool is about to hand out that is still in a transaction is closed
    instead (the server rolls it back), and another taken: the pool's reset on return only
    ends a transaction that SQLAlchemy knows of. A task cancelled while its ``BEGIN`` was
    unanswered leaves one SQLAlchemy does not: asyncpg has recorded it as the connection's
    transaction and the server is in it. The next unit of work would run inside it as a
    savepoint, and its commit, only releasing the savepoint, would commit nothing."""
    driver_connection = record.driver_connection
    if not isinstance(driver_connection, asyncpg.Connection):
        return
    if (
        getattr(driver_connection, "_top_xact", None) is not None
        or driver_connection.is_in_transaction()
    ):
        DB_DISCARDED.inc()
        log.warning("a pooled connection was still inside a transaction: closed, another taken")
        raise DisconnectionError("connection returned to the pool inside a transaction")


def ssl_argument(mode: str | None, rootcert: Path | None) -> ssl_module.SSLContext | str | None:
    """asyncpg's ``ssl`` for a libpq ``sslmode``: ``verify-full`` (the mode a root
    certificate alone implies) checks the server's chain against ``rootcert`` (else the
    system's trust store) and its host name, ``verify-ca`` the chain only; ``require`` and
    weaker encrypt without checking who answers. None: no TLS setting at all."""
    if mode is None and rootcert is None:
        return None
    mode = mode or "verify-full"
    if mode not in SSL_MODES:
        raise ValueError(f"unknown sslmode {mode!r}: one of {', '.join(SSL_MODES)}")
    if mode not in ("verify-ca", "verify-full"):
        return mode
    context = ssl_module.create_default_context(cafile=str(rootcert) if rootcert else None)
    context.minimum_version = ssl_module.TLSVersion.TLSv1_2
    if mode == "verify-ca":
        context.check_hostname = False
    return context


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads alone, on ``engine``'s pool: each statement runs by itself
    (autocommit), without the ``BEGIN`` and ``ROLLBACK`` round trips that a session's
    transaction adds around them. Under READ COMMITTED, PostgreSQL's default and ours, a
    transaction gives a read nothing more: each statement sees what was committed when it
    started, in a transaction or not. Never for a write, a lock (``FOR UPDATE``, advisory
    locks) or reads that must share one snapshot (REPEATABLE READ): those take
    :func:`transaction`."""
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits on success, rolls back on any exception."""
    async with sessions() as session:
        async with session.begin():
            yield session
        for outbox in session.sync_session.info.pop("outboxes", ()):
            outbox.committed(session.bind)


UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Opens one transaction: a service's ``rt.uow``, or :func:`unit_of_work` of a sessionmaker
where there is no runtime (the CLI, tests, benchmarks)."""


def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> UnitOfWork:
    """The unit of work over ``sessions``: each call opens one :func:`transaction`."""
    return partial(transaction, sessions)


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
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, PoolTimeout):  # no connection came back to the pool in time
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
    await (await driver(session)).executemany(sql, rows)


async def driver(session: AsyncSession) -> Any:
    """The session's asyncpg connection, in the session's transaction: the hot paths run
    their multi-row statements (``unnest`` of arrays, ``$n`` placeholders) on it directly,
    prepared once per connection, without SQLAlchemy's per-statement processing."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if getattr(adapted, "_transaction", False) is None:
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it runs
        # itself: a statement run on the driver before that would commit on its own
        # (cancelled before BEGIN is answered, it leaves a transaction SQLAlchemy does not
        # know of: the pool refuses the connection at its next checkout, _refuse_dirty)
        await adapted._start_transaction()
    return raw.driver_connection


@asynccontextmanager
async def pooled_driver(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A connection of ``engine``'s pool as the driver's (asyncpg) own, for a caller that
    runs its statements on it directly, in as few round trips as it can (the outbox relay:
    ``BEGIN`` sent with the first statement, ``COMMIT`` with the last; a notice on a
    channel, a statement of its own). It goes back to the pool outside any transaction.
    When the caller returns, a transaction it left open is rolled back. When it raises, or
    is cancelled, the connection is discarded: a statement may still be under way (a
    cancelled ``BEGIN`` the server has yet to answer), and nothing on this side can tell
    where the connection will stand once it is answered."""
    async with engine.connect() as connection:
        raw: Any = (await connection.get_raw_connection()).driver_connection
        try:
            yield raw
        except BaseException:
            await connection.invalidate()
            raise
        if raw.is_in_transaction():
            try:
                await raw.execute("ROLLBACK")
            except BaseException:
                await connection.invalidate()
                raise


_NAMED = re.compile(r"(?<![:\w\\]):([A-Za-z_]\w*)")


@lru_cache(maxsize=4096)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``:name`` parameters (as SQLAlchemy's ``text`` writes them) turned
    into the driver's ``$n``, and the names in the order of their numbers. A ``::type`` cast
    is left alone."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


async def _on_driver(session: AsyncSession, sql: str, params: Any, many: bool = False) -> Any:
    """``sql`` (``:name`` parameters) run on the session's driver connection: ``fetch`` for
    one parameter set, ``executemany`` for a list of them. A database error is raised as
    SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError`, as ``session.execute`` raises it, so
    the same handlers answer it (a data error is the caller's 422, a deadlock a retry)."""
    query, names = positional(sql)
    connection = await driver(session)
    try:
        if many:
            return await connection.executemany(query, [tuple(p[n] for n in names) for p in params])
        return await connection.fetch(query, *(params[n] for n in names))
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DBAPIError(query, None, exc) from exc


async def fetch_rows(session: AsyncSession, sql: str, params: Mapping[str, Any]) -> list[Any]:
    """The driver's records ``sql`` (``:name`` parameters) selects in the session's
    transaction, prepared once per connection, without SQLAlchemy's statement processing
    (which showed in the hot paths' profiles)."""
    return list(await _on_driver(session, sql, params))


async def execute(
    session: AsyncSession, sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> None:
    """Run ``sql`` (``:name`` parameters) on the driver as :func:`fetch_rows` does; with a
    list of parameter sets, once per set in one pipelined round trip."""
    if isinstance(params, Mapping):
        await _on_driver(session, sql, params)
    elif params:
        await _on_driver(session, sql, params, many=True)


async def fetch_one(
    session: AsyncSession, row: Callable[..., R], sql: str, params: Mapping[str, Any]
) -> R | None:
    """The one row ``sql`` selects, built as ``row(**columns)``; None when it selects none."""
    found = await fetch_rows(session, sql, params)
    if len(found) > 1:
        raise ValueError(f"more than one row where one was expected: {sql[:200]}")
    return row(**found[0]) if found else None


async def fetch_all(
    session: AsyncSession, row: Callable[..., R], sql: str, params: Mapping[str, Any]
) -> list[R]:
    """Every row ``sql`` selects, each built as ``row(**columns)``."""
    return [row(**found) for found in await fetch_rows(session, sql, params)]


def locked(sql: str, lock: bool) -> str:
    """``sql``, locking the rows it selects until the transaction ends when ``lock``."""
    return f"{sql} FOR UPDATE" if lock else sql


async def update_row(
    session: AsyncSession, table: str, key: str, value: Any, **fields: Any
) -> None:
    """Set ``fields``, and ``updated_at`` to now, on the row of ``table`` (schema-qualified)
    whose ``key`` column is ``value``."""
    assignments = ", ".join(f"{column} = :{column}" for column in fields)
    await session.execute(
        text(f"UPDATE {table} SET {assignments}, updated_at = now() WHERE {key} = :_key"),
        {**fields, "_key": value},
    )
