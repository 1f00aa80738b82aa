"""Revocation published as Bitstring Status Lists: an index for each credential at issue,
and each list signed again whenever one of its bits flips (or the signing key changes).

The signed list is kept as served, with its ETag, so that every fetch of an unchanged list
is the same bytes and a verifier's cache stays valid until something changed.
"""

from __future__ import annotations

import hashlib
import json

from services.catalogue.domain.credentials import signing, status_list
from services.catalogue.handlers import Context
from services.catalogue.store import status_lists as store


async def allocate(ctx: Context) -> tuple[int, int]:
    """The list and index of the next credential (the newest list, a new one when full)."""
    session = ctx.session
    current = await store.open_list(session)
    if current is None or current.handed_out >= current.size:
        list_id = current.list_id + 1 if current else 1
        await store.create(session, list_id, status_list.LIST_SIZE, ctx.now)
        await republish(ctx, list_id)
        current = await store.open_list(session)
        assert current is not None and current.list_id == list_id
    index = status_list.index_for(current.handed_out, current.size)
    await store.hand_out(session, current.list_id)
    return current.list_id, index


async def republish(ctx: Context, list_id: int) -> None:
    """Sign the list again from the register's revocations, with the current key."""
    from services.catalogue.handlers import issuer_keys  # (they republish on rotation)

    session, config, now = ctx.session, ctx.config, ctx.now
    await store.get(session, list_id, lock=True)
    _, key = await issuer_keys.signing_key(session, config, now)
    revoked = await store.revoked_indices(session, list_id)
    unsigned = status_list.credential(
        config.status_list_url(list_id),
        {"id": config.issuer_id, "name": config.issuer_name},
        revoked,
        now,
    )
    text = json.dumps(signing.sign(unsigned, key, now), separators=(",", ":"))
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    await store.publish(session, list_id, text, etag, now)


async def republish_all(ctx: Context) -> None:
    for row in await store.all_lists(ctx.session):
        await republish(ctx, row.list_id)
