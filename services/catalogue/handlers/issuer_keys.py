"""The issuer's keyring as use cases: the key that signs now, rotation, and revoking a key
from a date under four eyes (``qa`` proposes, an ``admin`` approves).

The keyring starts with the key the seed derives (``k0``), written on first use; until
then the keys document shows that key (reads never write).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.domain.credentials import keyring
from services.catalogue.domain.credentials.keyring import KeyRecord
from services.catalogue.domain.credentials.signing import IssuerKey
from services.catalogue.domain.errors import conflict
from services.catalogue.handlers import CatalogueConfig, Context
from services.catalogue.handlers import status_lists as lists
from services.catalogue.store import issuer_keys as store
from shared.approvals import FourEyes, Proposal
from shared.auth import Principal
from shared.errors import InvalidError, NotFoundError
from shared.events.catalogue import IssuerKeyRevoked, IssuerKeyRotated
from shared.outbox import EventContext, Outbox

REVOKE = "issuer_key_revocation"


async def records(session: AsyncSession, config: CatalogueConfig, now: datetime) -> list[KeyRecord]:
    """Every key of the keyring (the seed's key alone before the first was written)."""
    found = await store.all_keys(session)
    return found or [keyring.bootstrap(config.issuer_key, config.wrapping_key, now)]


async def keys_document(
    session: AsyncSession, config: CatalogueConfig, now: datetime
) -> dict[str, Any]:
    return keyring.keys_document(
        config.issuer_id, config.issuer_name, await records(session, config, now)
    )


async def _current(session: AsyncSession, config: CatalogueConfig, now: datetime) -> KeyRecord:
    record = await store.current(session)
    if record is None:
        await store.lock_keyring(session)
        record = await store.current(session)
        if record is None and not await store.all_keys(session):
            record = keyring.bootstrap(config.issuer_key, config.wrapping_key, now)
            await store.insert(session, record)
    if record is None:
        raise conflict("no_current_key", "the issuer has no current key: rotate to a new one")
    return record


async def signing_key(
    session: AsyncSession, config: CatalogueConfig, now: datetime
) -> tuple[str, IssuerKey]:
    """The current key's id and the key ready to sign."""
    record = await _current(session, config, now)
    return record.kid, keyring.signing_key(config.issuer_id, record, config.wrapping_key)


async def rotate(ctx: Context) -> KeyRecord:
    """A new random key signs from now on; the current one is retired (it still verifies
    what it signed). The status lists are signed again with the new key."""
    session, config, now = ctx.session, ctx.config, ctx.now
    await store.lock_keyring(session)
    old = await store.current(session, lock=True)
    if old is None and not await store.all_keys(session):
        old = keyring.bootstrap(config.issuer_key, config.wrapping_key, now)
        await store.insert(session, old)
    if old is not None:
        await store.retire(session, old.kid, now)
    record = keyring.new_key(keyring.kid_for(now), now, config.wrapping_key)
    await store.insert(session, record)
    await ctx.emit(
        IssuerKeyRotated(kid=record.kid, retired_kid=old.kid if old else None, rotated_at=now)
    )
    await lists.republish_all(ctx)
    return record


async def propose_revocation(
    fe: FourEyes,
    session: AsyncSession,
    principal: Principal,
    events: EventContext,
    *,
    kid: str,
    revoked_after: datetime,
    reason_code: str,
    now: datetime,
) -> Proposal:
    """Propose revoking ``kid`` from ``revoked_after`` (a second person approves)."""
    record = await store.get(session, kid)
    if record is None:
        raise NotFoundError(f"no issuer key {kid}", code="key_not_found")
    if record.revoked_after is not None:
        raise conflict("key_already_revoked", f"issuer key {kid} is already revoked")
    if revoked_after > now:
        raise InvalidError(
            "a key is revoked from a past moment, not a future one",
            code="revoked_after_in_future",
            field="revoked_after",
        )
    affected = await store.signed_after(session, kid, revoked_after)
    return await fe.propose(
        session,
        principal,
        events,
        action=REVOKE,
        subject=kid,
        payload={"kid": kid, "revoked_after": revoked_after.isoformat(), "reason": reason_code},
        summary={
            "kid": kid,
            "revoked_after": revoked_after.isoformat(),
            "reason_code": reason_code,
            "credentials_refused": affected,
            "is_current": record.retired_at is None,
        },
    )


def register_actions(fe: FourEyes, outbox: Outbox, config: CatalogueConfig) -> None:
    @fe.action(REVOKE)
    async def revoke_key(
        session: AsyncSession, proposal: Proposal, principal: Principal, events: EventContext
    ) -> dict[str, Any]:
        """Approved: the key is revoked from the date; if it was the current key, a new key
        takes over, and every status list is signed again with the current key."""
        now = fe.clock()
        ctx = Context(session, outbox, config, now, events)
        kid = proposal.payload["kid"]
        after = datetime.fromisoformat(proposal.payload["revoked_after"])
        await store.lock_keyring(session)
        record = await store.get(session, kid, lock=True)
        if record is None or record.revoked_after is not None:
            raise conflict("key_already_revoked", f"issuer key {kid} is already revoked")
        await store.revoke(session, kid, after, proposal.payload["reason"])
        await ctx.emit(
            IssuerKeyRevoked(
                kid=kid,
                revoked_after=after,
                reason_code=proposal.payload["reason"],
                approval_id=proposal.approval_id,
            )
        )
        rotated = None
        if record.retired_at is None:
            rotated = (await rotate(ctx)).kid
        else:
            await lists.republish_all(ctx)
        return {
            "kid": kid,
            "revoked_after": after.isoformat(),
            "new_key": rotated,
            "credentials_refused": await store.signed_after(session, kid, after),
        }
