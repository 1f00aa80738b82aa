"""Reading a wallet: its balance (now, or at a past instant rebuilt from its events) and its
entries with their hashes. An agency reads the accounts it manages, a learner their own;
any other account answers as a missing one (404, see :mod:`services.ledger.deps`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.ledger.deps import Reader, Runtime, authorize_account, hidden
from services.ledger.domain import Lot
from services.ledger.handlers import wallets
from services.ledger.store import events as event_store
from services.ledger.store import projections
from shared.problems import Unprocessable

router = APIRouter(tags=["ledger"])  # included by services.ledger.api under /v1/ledger


class LotPublic(BaseModel):
    lot_id: uuid.UUID
    funder_id: str
    kind: str
    year: int | None
    amount: int
    remaining: int
    reserved: int
    expires_at: datetime | None
    earmark: dict[str, Any] | None
    granted_at: datetime

    @classmethod
    def of(cls, lot: Lot) -> LotPublic:
        earmark = lot.earmark.model_dump(mode="json") if lot.earmark else None
        return cls(**{f: getattr(lot, f) for f in cls.model_fields} | {"earmark": earmark})


class Balance(BaseModel):
    account_id: uuid.UUID
    currency: str
    status: str
    available: int
    reserved: int
    granted_total: int
    spent_total: int
    expired_total: int
    lots: list[LotPublic]
    version: int
    as_of: datetime | None = None


@router.get("/accounts/{account_id}/balance", response_model=Balance)
async def balance(
    account_id: uuid.UUID,
    rt: Runtime,
    principal: Reader,
    as_of: datetime | None = None,
) -> Balance:
    """The wallet now, or at a past instant (``as_of``, RFC 3339) rebuilt from its events."""
    async with rt.reads() as session:
        await authorize_account(session, principal, account_id)
        if as_of is not None:
            if as_of.tzinfo is None:
                raise Unprocessable("as_of needs a time zone (RFC 3339)")
            state = await wallets.state_at(session, account_id, as_of)
            if state is None:
                raise hidden(account_id)
            return Balance(
                **{f: getattr(state, f) for f in projections.WALLET_FIGURES},
                account_id=account_id,
                currency=rt.settings.currency,
                lots=[LotPublic.of(lot) for lot in state.lots.values() if lot.remaining > 0],
                as_of=as_of,
            )
        w = await projections.wallet(session, account_id)
        if w is None:
            raise hidden(account_id)
        lots = [LotPublic(**lot) for lot in await projections.open_lots(session, account_id)]
        return Balance(
            **{f: w[f] for f in projections.WALLET_FIGURES},
            account_id=account_id,
            currency=rt.settings.currency,
            lots=lots,
        )


class EntriesPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


@router.get("/accounts/{account_id}/entries", response_model=EntriesPage)
async def entries(
    account_id: uuid.UUID,
    rt: Runtime,
    principal: Reader,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="a version")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntriesPage:
    """The account's events in order, each with its hash and the previous hash."""
    async with rt.reads() as session:
        await authorize_account(session, principal, account_id)
        rows = await event_store.entries(session, account_id, after, limit)
    return EntriesPage(
        items=[r.as_dict() for r in rows],
        next=str(rows[-1].version) if len(rows) == limit else None,
    )
