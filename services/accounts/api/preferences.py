"""The learner's choice of messages and language (``message-preferences``): only the
learner themself reads and changes them. The reminder of a consent deadline, the notice of
credit expiring and the news of a credential issued can be turned off; the message that a
proposal waits for their consent and the acknowledgement of a contest are always sent
(see :mod:`services.accounts.messages`)."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from services.accounts.deps import Components, Learner, Runtime, authorize_read
from services.accounts.store import accounts as accounts_store
from services.accounts.store import messages as store

router = APIRouter()


class MessagePreferences(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    language: Literal["en", "fr", "de"] = "en"
    consent_reminder: bool = True
    credit_expiry: bool = True
    credential_issued: bool = True


@router.get("/{account_id}/message-preferences", response_model=MessagePreferences)
async def get_preferences(
    account_id: uuid.UUID, rt: Runtime, principal: Learner
) -> MessagePreferences:
    """The learner's message preferences (the defaults until they chose)."""
    async with rt.uow() as session:
        authorize_read(principal, account_id, await accounts_store.get(session, account_id))
        prefs = await store.preferences(session, account_id)
    return MessagePreferences(**vars(prefs))


@router.put("/{account_id}/message-preferences", response_model=MessagePreferences)
async def put_preferences(
    account_id: uuid.UUID,
    body: MessagePreferences,
    rt: Runtime,
    c: Components,
    principal: Learner,
) -> MessagePreferences:
    """Replace the learner's message preferences (a field left out takes its default)."""
    async with rt.uow() as session:
        authorize_read(principal, account_id, await accounts_store.get(session, account_id))
        await store.put_preferences(
            session, account_id, store.Preferences(**body.model_dump()), c.clock.now()
        )
    return body
