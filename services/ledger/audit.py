"""Verification for auditors: every hash chain recomputed, every wallet rebuilt from its
events and compared with the projections. Each mismatch names its stream and position."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import store
from services.ledger.chain import GENESIS, chain_hash
from services.ledger.domain import WalletState, evolve


@dataclass
class VerifyReport:
    streams: int = 0
    events: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "streams": self.streams,
            "events": self.events,
            "mismatch_count": len(self.mismatches),
            "mismatches": self.mismatches[:1000],
            "seconds": round(self.seconds, 3),
        }


WALLET_FIELDS = (
    "status",
    "version",
    "available",
    "reserved",
    "granted_total",
    "spent_total",
    "expired_total",
)
LOT_FIELDS = ("remaining", "reserved", "spent", "expired")
RESERVATION_FIELDS = ("status", "amount", "captured", "released")


def wallet_view(state: WalletState) -> dict[str, Any]:
    return {
        "status": state.status,
        "version": state.version,
        "available": state.available,
        "reserved": state.reserved,
        "granted_total": state.granted_total,
        "spent_total": state.spent_total,
        "expired_total": state.expired_total,
    }


class StreamChecker:
    """Folds one stream's rows, checking the chain as it goes."""

    def __init__(self, report: VerifyReport, stream_id: uuid.UUID) -> None:
        self.report = report
        self.stream_id = stream_id
        self.state = WalletState()
        self.prev = GENESIS
        self.version = 0
        self.last_position = 0
        self.broken = False

    def mismatch(self, position: int | None, problem: str, **extra: Any) -> None:
        self.report.mismatches.append(
            {"stream": str(self.stream_id), "position": position, "problem": problem, **extra}
        )

    def feed(self, row: store.EventRow) -> None:
        self.report.events += 1
        self.last_position = row.position
        self.version += 1
        if row.version != self.version:
            self.mismatch(row.position, f"version {row.version} where {self.version} expected")
            self.version = row.version
        if row.prev_hash != self.prev:
            self.mismatch(
                row.position,
                "prev_hash does not name the previous event's hash",
                version=row.version,
            )
        expected = chain_hash(row.prev_hash, row.canonical())
        if expected != row.hash:
            self.mismatch(
                row.position,
                "hash does not match the event's canonical bytes",
                version=row.version,
                recorded=row.hash,
                recomputed=expected,
            )
        self.prev = row.hash
        if self.broken:
            return
        try:
            self.state = evolve(self.state, row.payload())
        except Exception as exc:
            self.broken = True
            self.mismatch(row.position, f"event cannot be applied: {exc}", version=row.version)


def compare(
    checker: StreamChecker,
    wallet: dict[str, Any] | None,
    lots: dict[uuid.UUID, dict[str, Any]],
    reservations: dict[uuid.UUID, dict[str, Any]],
) -> None:
    state = checker.state
    pos = checker.last_position
    if wallet is None:
        checker.mismatch(pos, "no wallet projection for this stream")
        return
    rebuilt = wallet_view(state)
    for name in WALLET_FIELDS:
        if wallet[name] != rebuilt[name]:
            checker.mismatch(pos, f"wallet.{name} is {wallet[name]}, events give {rebuilt[name]}")
    if wallet["head_hash"] != checker.prev:
        checker.mismatch(pos, "wallet.head_hash is not the stream's last hash")
    for lot_id, lot in state.lots.items():
        row = lots.get(lot_id)
        if row is None:
            checker.mismatch(pos, f"lot {lot_id} missing from the projection")
            continue
        for name in LOT_FIELDS:
            if row[name] != getattr(lot, name):
                checker.mismatch(
                    pos, f"lot {lot_id}.{name} is {row[name]}, events give {getattr(lot, name)}"
                )
    for rid, r in state.reservations.items():
        row = reservations.get(rid)
        if row is None:
            checker.mismatch(pos, f"reservation {rid} missing from the projection")
            continue
        for name in RESERVATION_FIELDS:
            if row[name] != getattr(r, name):
                checker.mismatch(
                    pos, f"reservation {rid}.{name} is {row[name]}, events give {getattr(r, name)}"
                )


async def _by_account(
    session: AsyncSession, sql: str, key: str
) -> dict[uuid.UUID, dict[uuid.UUID, dict[str, Any]]]:
    out: dict[uuid.UUID, dict[uuid.UUID, dict[str, Any]]] = {}
    for r in (await session.execute(text(sql))).mappings():
        out.setdefault(r["account_id"], {})[r[key]] = dict(r)
    return out


async def verify(session: AsyncSession) -> VerifyReport:
    """One pass over the events in stream order, then a comparison per stream."""
    started = time.perf_counter()
    report = VerifyReport()
    wallets = {
        r["account_id"]: dict(r)
        for r in (await session.execute(text("SELECT * FROM ledger.wallets"))).mappings()
    }
    lots = await _by_account(
        session,
        "SELECT account_id, lot_id, remaining, reserved, spent, expired FROM ledger.lots",
        "lot_id",
    )
    reservations = await _by_account(
        session,
        "SELECT account_id, reservation_id, status, amount, captured, released "
        "FROM ledger.reservations",
        "reservation_id",
    )
    checker: StreamChecker | None = None
    result = await session.stream(
        text(f"SELECT {store.EVENT_COLUMNS} FROM ledger.events ORDER BY stream_id, version"),
        execution_options={"yield_per": 5000},
    )
    seen: set[uuid.UUID] = set()

    def finish(c: StreamChecker) -> None:
        compare(
            c,
            wallets.get(c.stream_id),
            lots.get(c.stream_id, {}),
            reservations.get(c.stream_id, {}),
        )

    async for raw in result:
        row = store.EventRow(**dict(raw._mapping))
        if checker is None or checker.stream_id != row.stream_id:
            if checker is not None:
                finish(checker)
            checker = StreamChecker(report, row.stream_id)
            seen.add(row.stream_id)
            report.streams += 1
        checker.feed(row)
    if checker is not None:
        finish(checker)
    for account_id in set(wallets) - seen:
        report.mismatches.append(
            {
                "stream": str(account_id),
                "position": None,
                "problem": "wallet projection without any event",
            }
        )
    report.seconds = time.perf_counter() - started
    return report
