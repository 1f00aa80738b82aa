"""Verification for auditors: every hash chain recomputed, every wallet rebuilt from its
events and compared with the projections, every signed checkpoint checked against the store
(a store cut short, or a forged checkpoint, is found without Kafka). Each mismatch names its
stream (or checkpoint) and position."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.audit import checkpoints as signed
from services.ledger.audit.budgets import FunderBooks, budget_mismatches
from services.ledger.domain import WalletState, evolve
from services.ledger.domain.budgets import BudgetState, evolve_budget
from services.ledger.store import audit as audit_reads
from services.ledger.store import checkpoints as checkpoint_reads
from services.ledger.store import funders as funder_reads
from services.ledger.store.chain import GENESIS, chain_hash
from services.ledger.store.events import EventRow
from services.ledger.store.projections import LOT_CHANGES, RESERVATION_CHANGES, WALLET_FIGURES
from shared.events.budgets import BudgetDrawn, BudgetEvent
from shared.events.ledger import LedgerEvent


@dataclass
class VerifyReport:
    streams: int = 0
    events: int = 0
    checkpoints: int = 0
    funders: list[dict[str, Any]] = field(default_factory=list)
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
            "checkpoints": self.checkpoints,
            "funders": self.funders,
            "mismatch_count": len(self.mismatches),
            "mismatches": self.mismatches[:1000],
            "seconds": round(self.seconds, 3),
        }


def wallet_view(state: WalletState) -> dict[str, Any]:
    return {f: getattr(state, f) for f in WALLET_FIGURES}


class StreamChecker:
    """Folds one stream's rows, checking the chain as it goes."""

    def __init__(self, report: VerifyReport, stream_id: uuid.UUID) -> None:
        self.report = report
        self.stream_id = stream_id
        self.state = WalletState()
        self.budget: BudgetState | None = None  # a funder's budget stream
        self.draws: list[BudgetDrawn] = []
        self.prev = GENESIS
        self.version = 0
        self.last_position = 0
        self.broken = False

    def mismatch(self, position: int | None, problem: str, **extra: Any) -> None:
        self.report.mismatches.append(
            {"stream": str(self.stream_id), "position": position, "problem": problem, **extra}
        )

    def feed(self, row: EventRow) -> None:
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
            event = row.fact()
            if isinstance(event, BudgetEvent) and not self.state.version:
                self.budget = evolve_budget(self.budget or BudgetState(), event)
                if isinstance(event, BudgetDrawn):
                    self.draws.append(event)
            elif isinstance(event, LedgerEvent) and self.budget is None:
                self.state = evolve(self.state, event)
            else:
                raise ValueError(f"{row.type} does not belong in this stream")
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
    for name in WALLET_FIGURES:
        if wallet[name] != rebuilt[name]:
            checker.mismatch(pos, f"wallet.{name} is {wallet[name]}, events give {rebuilt[name]}")
    if wallet["head_hash"] != checker.prev:
        checker.mismatch(pos, "wallet.head_hash is not the stream's last hash")
    _compare_rows(checker, "lot", state.lots, lots, LOT_CHANGES)
    _compare_rows(checker, "reservation", state.reservations, reservations, RESERVATION_CHANGES)


def _compare_rows(
    checker: StreamChecker,
    what: str,
    rebuilt: Mapping[uuid.UUID, object],
    rows: dict[uuid.UUID, dict[str, Any]],
    fields: tuple[str, ...],
) -> None:
    """Each lot (or reservation) the events give against its projection row."""
    pos = checker.last_position
    for key, item in rebuilt.items():
        row = rows.get(key)
        if row is None:
            checker.mismatch(pos, f"{what} {key} missing from the projection")
            continue
        for name in fields:
            if row[name] != getattr(item, name):
                checker.mismatch(
                    pos, f"{what} {key}.{name} is {row[name]}, events give {getattr(item, name)}"
                )


async def verify(session: AsyncSession, checkpoint_key: bytes | None = None) -> VerifyReport:
    """One pass over the events in stream order, then a comparison per stream, then the
    signed checkpoints (their signatures checked with ``checkpoint_key``, by default the
    settings' ``ILA_LEDGER_CHECKPOINT_KEY``)."""
    started = time.perf_counter()
    report = VerifyReport()
    if checkpoint_key is None:
        from shared.settings import get_settings

        checkpoint_key = get_settings().ledger_checkpoint_key.encode()
    cps = await checkpoint_reads.every(session)
    heads = {cp.head_position for cp in cps}
    positions: list[int] = []
    head_hashes: dict[int, str] = {}
    wallets, lots, reservations = await audit_reads.projection_rows(session)
    budgets = await funder_reads.every_budget(session)
    books = FunderBooks()
    checker: StreamChecker | None = None
    seen: set[uuid.UUID] = set()

    def finish(c: StreamChecker) -> None:
        if c.budget is not None:
            report.mismatches += budget_mismatches(
                c.stream_id, c.last_position, c.budget, c.prev, budgets.get(c.stream_id)
            )
            books.note_budget(c.budget)
            for draw in c.draws:
                books.note_draw(draw)
            return
        books.note_wallet(c.stream_id, c.state)
        compare(
            c,
            wallets.get(c.stream_id),
            lots.get(c.stream_id, {}),
            reservations.get(c.stream_id, {}),
        )

    async for row in audit_reads.all_events(session):
        if checker is None or checker.stream_id != row.stream_id:
            if checker is not None:
                finish(checker)
            checker = StreamChecker(report, row.stream_id)
            seen.add(row.stream_id)
            report.streams += 1
        checker.feed(row)
        positions.append(row.position)
        if row.position in heads:
            head_hashes[row.position] = row.hash
    if checker is not None:
        finish(checker)
    report.mismatches += books.mismatches()
    report.funders = books.summary()
    for budget_id in set(budgets) - seen:
        report.mismatches.append(
            {"stream": str(budget_id), "position": None, "problem": "budget without any event"}
        )
    positions.sort()
    report.checkpoints = len(cps)
    report.mismatches += signed.check(checkpoint_key, cps, positions, head_hashes)
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
