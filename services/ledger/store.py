"""The SQL of the ledger's event store, its projections and the reads auditors use
(policies and allocation runs are in :mod:`services.ledger.runs`).

Appends take a shared advisory lock (``APPEND_LOCK``) for the rest of their transaction.
A reader of the global order asks :func:`horizon` for a position below which nothing can
still commit, so a paging reader never skips an event that commits late with a lower
position (two concurrent appends can commit out of position order).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.chain import GENESIS, canonical_bytes, chain_hash
from services.ledger.domain import WalletState
from shared.db import executemany
from shared.events import Envelope, model_for
from shared.events.ledger import LedgerEvent

APPEND_LOCK = (727, 1)  # (classid, objid) of the advisory lock appenders share


@dataclass(frozen=True)
class EventRow:
    position: int
    event_id: uuid.UUID
    stream_id: uuid.UUID
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    prev_hash: str
    hash: str

    def payload(self) -> LedgerEvent:
        model = model_for(self.type)
        if model is None:
            raise ValueError(f"unknown event type {self.type} at position {self.position}")
        event = model.model_validate(self.data)
        assert isinstance(event, LedgerEvent)
        return event

    def canonical(self) -> bytes:
        return canonical_bytes(
            event_id=self.event_id,
            stream_id=self.stream_id,
            version=self.version,
            type=self.type,
            schema_version=self.schema_version,
            recorded_at=self.recorded_at,
            data=self.data,
            metadata=self.metadata,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "event_id": str(self.event_id),
            "account_id": str(self.stream_id),
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
            "recorded_at": self.recorded_at.isoformat(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


EVENT_COLUMNS = (
    "position, event_id, stream_id, version, type, schema_version, data, metadata, "
    "recorded_at, prev_hash, hash"
)


def _row(r: Any) -> EventRow:
    return EventRow(**dict(r._mapping))


@dataclass(frozen=True)
class Head:
    version: int
    hash: str


async def lock_head(session: AsyncSession, account_id: uuid.UUID) -> Head | None:
    row = (
        await session.execute(
            text("SELECT version, head_hash FROM ledger.wallets WHERE account_id = :a FOR UPDATE"),
            {"a": account_id},
        )
    ).one_or_none()
    return Head(row.version, row.head_hash) if row else None


async def load_stream(
    session: AsyncSession, account_id: uuid.UUID, *, upto: datetime | None = None
) -> list[EventRow]:
    sql = f"SELECT {EVENT_COLUMNS} FROM ledger.events WHERE stream_id = :a"
    params: dict[str, Any] = {"a": account_id}
    if upto is not None:
        sql += " AND recorded_at <= :upto"
        params["upto"] = upto
    rows = await session.execute(text(sql + " ORDER BY version"), params)
    return [_row(r) for r in rows]


def build_rows(
    account_id: uuid.UUID,
    head: Head | None,
    envelopes: Sequence[Envelope],
    recorded_at: datetime,
    idempotency_key: str | None = None,
) -> list[dict[str, Any]]:
    """The rows to insert for ``envelopes`` after ``head``, each chained to the last."""
    version = head.version if head else 0
    prev = head.hash if head else GENESIS
    rows = []
    for env in envelopes:
        version += 1
        metadata: dict[str, Any] = {
            "correlation_id": str(env.correlationid),
            "causation_id": str(env.causationid) if env.causationid else None,
            "actor": env.actor,
            "idempotency_key": idempotency_key,
        }
        canonical = canonical_bytes(
            event_id=env.id,
            stream_id=account_id,
            version=version,
            type=env.type,
            schema_version=env.schemaversion,
            recorded_at=recorded_at,
            data=env.data,
            metadata=metadata,
        )
        digest = chain_hash(prev, canonical)
        rows.append(
            {
                "event_id": env.id,
                "stream_id": account_id,
                "version": version,
                "type": env.type,
                "schema_version": env.schemaversion,
                "data": json.dumps(env.data, ensure_ascii=False),
                "metadata": json.dumps(metadata),
                "recorded_at": recorded_at,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    return rows


async def take_append_lock(session: AsyncSession) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock_shared(:c, :o)"),
        {"c": APPEND_LOCK[0], "o": APPEND_LOCK[1]},
    )


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows (already chained). A concurrent writer of the same stream version fails
    on the (stream_id, version) key: optimistic concurrency."""
    if not rows:
        return
    await take_append_lock(session)
    await executemany(
        session,
        "INSERT INTO ledger.events (event_id, stream_id, version, type, schema_version, data, "
        "metadata, recorded_at, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6::jsonb, "
        "$7::jsonb, $8, $9, $10)",
        [
            (
                r["event_id"],
                r["stream_id"],
                r["version"],
                r["type"],
                r["schema_version"],
                r["data"],
                r["metadata"],
                r["recorded_at"],
                r["prev_hash"],
                r["hash"],
            )
            for r in rows
        ],
    )


def _lot_row(account_id: uuid.UUID, lot: Any) -> dict[str, Any]:
    return {
        "lot_id": lot.lot_id,
        "account_id": account_id,
        "funder_id": lot.funder_id,
        "kind": lot.kind,
        "year": lot.year,
        "amount": lot.amount,
        "remaining": lot.remaining,
        "reserved": lot.reserved,
        "spent": lot.spent,
        "expired": lot.expired,
        "expires_at": lot.expires_at,
        "earmark": json.dumps(lot.earmark.model_dump(mode="json")) if lot.earmark else None,
        "reason": lot.reason,
        "granted_at": lot.granted_at,
    }


def _reservation_row(account_id: uuid.UUID, r: Any) -> dict[str, Any]:
    return {
        "reservation_id": r.reservation_id,
        "account_id": account_id,
        "enrolment_id": r.enrolment_id,
        "amount": r.amount,
        "captured": r.captured,
        "released": r.released,
        "status": r.status,
        "expires_at": r.expires_at,
        "allocations": json.dumps([a.model_dump(mode="json") for a in r.allocations]),
        "reserved_at": r.reserved_at,
    }


def wallet_row(state: WalletState, head_hash: str, now: datetime) -> dict[str, Any]:
    return {
        "account_id": state.account_id,
        "status": state.status,
        "profile": json.dumps(state.profile.model_dump(mode="json")) if state.profile else None,
        "version": state.version,
        "head_hash": head_hash,
        "available": state.available,
        "reserved": state.reserved,
        "granted_total": state.granted_total,
        "spent_total": state.spent_total,
        "expired_total": state.expired_total,
        "years_granted": sorted(state.years_granted),
        "updated_at": now,
    }


WALLET_COLUMNS = (
    "account_id",
    "status",
    "profile",
    "version",
    "head_hash",
    "available",
    "reserved",
    "granted_total",
    "spent_total",
    "expired_total",
    "years_granted",
    "updated_at",
)
LOT_COLUMNS = (
    "lot_id",
    "account_id",
    "funder_id",
    "kind",
    "year",
    "amount",
    "remaining",
    "reserved",
    "spent",
    "expired",
    "expires_at",
    "earmark",
    "reason",
    "granted_at",
)
RESERVATION_COLUMNS = (
    "reservation_id",
    "account_id",
    "enrolment_id",
    "amount",
    "captured",
    "released",
    "status",
    "expires_at",
    "allocations",
    "reserved_at",
)
JSONB = {"profile", "earmark", "allocations"}


def _upsert(table: str, columns: tuple[str, ...], updated: tuple[str, ...]) -> str:
    values = ", ".join(
        f"${i}" + ("::jsonb" if c in JSONB else "") for i, c in enumerate(columns, 1)
    )
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
    return (
        f"INSERT INTO ledger.{table} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {sets}"
    )


UPSERT_WALLET = _upsert("wallets", WALLET_COLUMNS, WALLET_COLUMNS[1:])
UPSERT_LOT = _upsert("lots", LOT_COLUMNS, ("remaining", "reserved", "spent", "expired"))
UPSERT_RESERVATION = _upsert(
    "reservations", RESERVATION_COLUMNS, ("amount", "captured", "released", "status")
)


def _tuples(rows: Sequence[dict[str, Any]], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in rows]


async def save_projection(
    session: AsyncSession,
    before: WalletState,
    after: WalletState,
    head_hash: str,
    now: datetime,
) -> None:
    """Write what changed between ``before`` and ``after`` (same transaction as the append)."""
    await save_projections_bulk(session, [(before, after, head_hash)], now)


async def save_projections_bulk(
    session: AsyncSession, items: Sequence[tuple[WalletState, WalletState, str]], now: datetime
) -> None:
    """What changed in each wallet, all wallets at once: one statement per table."""
    wallets, lots, reservations = [], [], []
    for before, after, head_hash in items:
        assert after.account_id is not None  # set by the first event folded
        wallets.append(wallet_row(after, head_hash, now))
        lots += [
            _lot_row(after.account_id, lot)
            for lot_id, lot in after.lots.items()
            if before.lots.get(lot_id) != lot
        ]
        reservations += [
            _reservation_row(after.account_id, r)
            for rid, r in after.reservations.items()
            if before.reservations.get(rid) != r
        ]
    await executemany(session, UPSERT_WALLET, _tuples(wallets, WALLET_COLUMNS))
    await executemany(session, UPSERT_LOT, _tuples(lots, LOT_COLUMNS))
    await executemany(session, UPSERT_RESERVATION, _tuples(reservations, RESERVATION_COLUMNS))


# ---- reads -------------------------------------------------------------------------------


async def wallet(session: AsyncSession, account_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text("SELECT * FROM ledger.wallets WHERE account_id = :a"), {"a": account_id}
            )
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None


async def open_lots(session: AsyncSession, account_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT lot_id, funder_id, kind, year, amount, remaining, reserved, expires_at, "
            "earmark, granted_at FROM ledger.lots WHERE account_id = :a AND remaining > 0 "
            "ORDER BY granted_at, lot_id"
        ),
        {"a": account_id},
    )
    return [dict(r) for r in rows.mappings()]


async def entries(
    session: AsyncSession, account_id: uuid.UUID, after_version: int, limit: int
) -> list[EventRow]:
    rows = await session.execute(
        text(
            f"SELECT {EVENT_COLUMNS} FROM ledger.events WHERE stream_id = :a AND version > :v "
            "ORDER BY version LIMIT :n"
        ),
        {"a": account_id, "v": after_version, "n": limit},
    )
    return [_row(r) for r in rows]


async def horizon(session: AsyncSession) -> int:
    """A position such that every event at or below it has committed (or never will).

    Appenders hold ``APPEND_LOCK`` shared from before they draw a position until they
    commit. Read the last position drawn first; if no appender holds the lock afterwards,
    everything up to it is settled. Otherwise wait for the in-flight appenders (an
    exclusive request waits for them and briefly holds back new ones), then read again.
    """
    last = await session.scalar(
        text(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ledger.events_position_seq"
        )
    )
    busy = await session.scalar(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c "
            "AND objid = :o AND granted AND pid <> pg_backend_pid()"
        ),
        {"c": APPEND_LOCK[0], "o": APPEND_LOCK[1]},
    )
    if not busy:
        return int(last or 0)
    # wait for the in-flight appenders in a transaction of its own: the lock is
    # transaction-scoped, so it goes with the transaction however this call ends (a
    # cancelled request included) and can never be left behind to block every append
    engine = (await session.connection()).engine
    async with engine.connect() as conn, conn.begin():
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:c, :o)"),
            {"c": APPEND_LOCK[0], "o": APPEND_LOCK[1]},
        )
        last = await conn.scalar(
            text(
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                "FROM ledger.events_position_seq"
            )
        )
    return int(last or 0)


async def events_page(session: AsyncSession, after: int, upto: int, limit: int) -> list[EventRow]:
    rows = await session.execute(
        text(
            f"SELECT {EVENT_COLUMNS} FROM ledger.events WHERE position > :after "
            "AND position <= :upto ORDER BY position LIMIT :n"
        ),
        {"after": after, "upto": upto, "n": limit},
    )
    return [_row(r) for r in rows]


# ---- account agencies and allocation batches ---------------------------------------


async def set_agency(session: AsyncSession, account_id: uuid.UUID, agency_id: str) -> None:
    await session.execute(
        text(
            "INSERT INTO ledger.account_agencies (account_id, agency_id) VALUES (:a, :g) "
            "ON CONFLICT (account_id) DO UPDATE SET agency_id = EXCLUDED.agency_id"
        ),
        {"a": account_id, "g": agency_id},
    )


async def agency_of(session: AsyncSession, account_id: uuid.UUID) -> str | None:
    agency: str | None = await session.scalar(
        text("SELECT agency_id FROM ledger.account_agencies WHERE account_id = :a"),
        {"a": account_id},
    )
    return agency


async def lock_heads_batch(
    session: AsyncSession, after: uuid.UUID | None, limit: int
) -> list[tuple[uuid.UUID, Head]]:
    """The next wallets by account id that may receive a statutory grant, locked."""
    rows = await session.execute(
        text(
            "SELECT account_id, version, head_hash FROM ledger.wallets WHERE status IN "
            "('open', 'suspended') AND account_id > :after ORDER BY account_id LIMIT :n "
            "FOR UPDATE"
        ),
        {"after": after or uuid.UUID(int=0), "n": limit},
    )
    return [(r.account_id, Head(r.version, r.head_hash)) for r in rows]


async def load_streams(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[EventRow]]:
    out: dict[uuid.UUID, list[EventRow]] = {a: [] for a in account_ids}
    if not account_ids:
        return out
    rows = await session.execute(
        text(
            f"SELECT {EVENT_COLUMNS} FROM ledger.events WHERE stream_id = ANY(:ids) "
            "ORDER BY stream_id, version"
        ),
        {"ids": list(account_ids)},
    )
    for r in rows:
        row = _row(r)
        out[row.stream_id].append(row)
    return out


async def accounts_with_due_items(
    session: AsyncSession, now: datetime, limit: int
) -> list[uuid.UUID]:
    rows = await session.execute(
        text(
            "SELECT account_id FROM ledger.lots WHERE remaining > reserved AND expires_at <= :now "
            "UNION SELECT account_id FROM ledger.reservations WHERE status = 'active' "
            "AND expires_at <= :now LIMIT :n"
        ),
        {"now": now, "n": limit},
    )
    return [r[0] for r in rows]
