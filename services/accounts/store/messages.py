"""What the accounts service keeps to tell learners: their message preferences, the
proposals waiting for their consent, and the credit lots that expire (what is left of each).
The messages themselves are in ``accounts.outgoing_mail`` (:mod:`shared.mail`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import driver, fetch_all, fetch_rows


@dataclass(frozen=True)
class Preferences:
    """A learner's choices (the defaults while they made none)."""

    language: str = "en"
    consent_reminder: bool = True
    credit_expiry: bool = True
    credential_issued: bool = True


async def preferences(session: AsyncSession, account_id: uuid.UUID) -> Preferences:
    return (await preferences_of(session, [account_id])).get(account_id, Preferences())


async def preferences_of(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Preferences]:
    """:func:`preferences` of many accounts (those who chose nothing are left out: the
    defaults)."""
    if not account_ids:
        return {}
    rows = await fetch_rows(
        session,
        "SELECT account_id, language, consent_reminder, credit_expiry, credential_issued "
        "FROM accounts.message_preferences WHERE account_id = ANY(:a)",
        {"a": list(account_ids)},
    )
    return {
        r["account_id"]: Preferences(
            r["language"], r["consent_reminder"], r["credit_expiry"], r["credential_issued"]
        )
        for r in rows
    }


async def put_preferences(
    session: AsyncSession, account_id: uuid.UUID, prefs: Preferences, now: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO accounts.message_preferences (account_id, language, consent_reminder, "
            "credit_expiry, credential_issued, updated_at) VALUES (:a, :l, :r, :e, :c, :now) "
            "ON CONFLICT (account_id) DO UPDATE SET language = EXCLUDED.language, "
            "consent_reminder = EXCLUDED.consent_reminder, "
            "credit_expiry = EXCLUDED.credit_expiry, "
            "credential_issued = EXCLUDED.credential_issued, updated_at = EXCLUDED.updated_at"
        ),
        {
            "a": account_id,
            "l": prefs.language,
            "r": prefs.consent_reminder,
            "e": prefs.credit_expiry,
            "c": prefs.credential_issued,
            "now": now,
        },
    )


# --- proposals waiting for consent -----------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: str
    starts_on: date
    ends_on: date
    price: int
    co_payment: int
    expires_at: datetime
    answered: bool = False


async def put_proposal(session: AsyncSession, p: Proposal) -> None:
    """Note a proposal; the same one told again changes nothing (an answer stays), a new
    deadline (a held proposal released) waits for an answer again."""
    await put_proposals(session, [p])


async def put_proposals(session: AsyncSession, proposals: Sequence[Proposal]) -> None:
    """:func:`put_proposal` of many in one statement (each enrolment at most once)."""
    if not proposals:
        return
    await (await driver(session)).execute(
        "INSERT INTO accounts.proposals (enrolment_id, account_id, provider_id, starts_on, "
        "ends_on, price, co_payment, expires_at) SELECT * FROM unnest($1::uuid[], $2::uuid[], "
        "$3::text[], $4::date[], $5::date[], $6::bigint[], $7::bigint[], $8::timestamptz[]) "
        "ON CONFLICT (enrolment_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, "
        "answered = false WHERE proposals.expires_at <> EXCLUDED.expires_at",
        [p.enrolment_id for p in proposals],
        [p.account_id for p in proposals],
        [p.provider_id for p in proposals],
        [p.starts_on for p in proposals],
        [p.ends_on for p in proposals],
        [p.price for p in proposals],
        [p.co_payment for p in proposals],
        [p.expires_at for p in proposals],
    )


async def answered(session: AsyncSession, enrolment_id: uuid.UUID) -> None:
    await session.execute(
        text("UPDATE accounts.proposals SET answered = true WHERE enrolment_id = :e"),
        {"e": enrolment_id},
    )


async def answered_all(session: AsyncSession, enrolment_ids: Sequence[uuid.UUID]) -> None:
    """Many :func:`answered` in one statement."""
    if enrolment_ids:
        await (await driver(session)).execute(
            "UPDATE accounts.proposals SET answered = true "
            "WHERE enrolment_id = ANY($1::uuid[]) AND NOT answered",
            list(enrolment_ids),
        )


async def account_of_enrolment(session: AsyncSession, enrolment_id: uuid.UUID) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(
        text("SELECT account_id FROM accounts.proposals WHERE enrolment_id = :e"),
        {"e": enrolment_id},
    )
    return found


async def proposals_due(session: AsyncSession, now: datetime, until: datetime) -> list[Proposal]:
    """Proposals still waiting whose deadline falls in (now, until]."""
    return await fetch_all(
        session,
        Proposal,
        "SELECT enrolment_id, account_id, provider_id, starts_on, ends_on, price, co_payment, "
        "expires_at, answered FROM accounts.proposals WHERE NOT answered "
        "AND expires_at > :now AND expires_at <= :until ORDER BY expires_at",
        {"now": now, "until": until},
    )


# --- credit lots that expire -----------------------------------------------------------------


@dataclass(frozen=True)
class Lot:
    lot_id: uuid.UUID
    account_id: uuid.UUID
    funder_id: str
    granted: int
    remaining: int
    reserved: int
    expires_at: datetime

    @property
    def free(self) -> int:
        """What the expiry would take: the remaining credit no reservation holds."""
        return self.remaining - self.reserved


async def add_lot(
    session: AsyncSession,
    lot_id: uuid.UUID,
    account_id: uuid.UUID,
    funder_id: str,
    amount: int,
    expires_at: datetime,
) -> None:
    await session.execute(
        text(
            "INSERT INTO accounts.credit_lots (lot_id, account_id, funder_id, granted, "
            "remaining, expires_at) VALUES (:l, :a, :f, :n, :n, :x) ON CONFLICT DO NOTHING"
        ),
        {"l": lot_id, "a": account_id, "f": funder_id, "n": amount, "x": expires_at},
    )


NewLot = tuple[uuid.UUID, uuid.UUID, str, int, datetime]
"""A lot to keep: lot id, account id, funder id, amount granted, expiry."""


async def add_lots(session: AsyncSession, lots: Sequence[NewLot]) -> None:
    """Many :func:`add_lot` in one statement (each lot named once)."""
    if lots:
        await (await driver(session)).execute(
            "INSERT INTO accounts.credit_lots (lot_id, account_id, funder_id, granted, "
            "remaining, expires_at) SELECT l, a, f, n, n, x FROM unnest($1::uuid[], "
            "$2::uuid[], $3::text[], $4::bigint[], $5::timestamptz[]) AS v(l, a, f, n, x) "
            "ON CONFLICT DO NOTHING",
            *(list(column) for column in zip(*lots, strict=True)),
        )


async def shift_lots(session: AsyncSession, deltas: Mapping[uuid.UUID, tuple[int, int]]) -> None:
    """Add ``(remaining, reserved)`` to each lot named, in one statement (each lot once;
    lots not kept are skipped)."""
    moves = [(lot_id, r, h) for lot_id, (r, h) in deltas.items() if r or h]
    if moves:
        await (await driver(session)).execute(
            "UPDATE accounts.credit_lots l SET remaining = l.remaining + d.r, "
            "reserved = l.reserved + d.h FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) "
            "AS d(lot_id, r, h) WHERE l.lot_id = d.lot_id",
            *(list(column) for column in zip(*moves, strict=True)),
        )


async def lots_expiring(session: AsyncSession, now: datetime, until: datetime) -> list[Lot]:
    """Lots expiring in (now, until] with credit no reservation holds."""
    return await fetch_all(
        session,
        Lot,
        "SELECT lot_id, account_id, funder_id, granted, remaining, reserved, expires_at "
        "FROM accounts.credit_lots WHERE expires_at > :now AND expires_at <= :until "
        "AND remaining > reserved ORDER BY expires_at, lot_id",
        {"now": now, "until": until},
    )
