"""What the catalogue's routes and consumers share: the runtime, the components its setup
builds (configuration, clock, outbox), the roles each kind of route admits, the scope of a
principal and the context a use case runs in.

Scope: an agency acts on the providers it registered (and their courses) and on the
credentials of the accounts it manages; ``qa`` (the national quality-assurance authority)
acts on every provider, course and credential; a provider on its own; national roles read
nationally. A refusal for someone else's resource is the same 404 as for a missing one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Protocol

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.domain.credentials.keyring import wrapping_key
from services.catalogue.domain.credentials.signing import derive_issuer_key
from services.catalogue.handlers import CatalogueConfig, Context, issuer_keys
from services.catalogue.store import credentials as credential_store
from services.catalogue.store import views
from shared.approvals import FourEyes
from shared.auth import Principal, Role, require
from shared.clock import Clock
from shared.events.catalogue import CatalogueApprovalDecided, CatalogueApprovalRequested
from shared.outbox import EventContext, Outbox
from shared.problems import Forbidden
from shared.service import ServiceRuntime, components_of, runtime_of

Runtime = Annotated[ServiceRuntime, Depends(runtime_of("catalogue"))]


@dataclass(frozen=True)
class CatalogueComponents:
    """What the catalogue's setup builds, kept on the runtime."""

    config: CatalogueConfig
    clock: Clock
    outbox: Outbox
    # four eyes on revoking an issuer key (qa proposes, an admin approves)
    four_eyes: FourEyes

    @classmethod
    def build(cls, rt: ServiceRuntime) -> CatalogueComponents:
        seed = rt.settings.credential_key_seed
        config = CatalogueConfig(
            currency=rt.settings.currency,
            issuer_key=derive_issuer_key(seed),
            wrapping_key=wrapping_key(seed),
            public_url=rt.settings.catalogue_public_url.rstrip("/"),
        )
        clock = Clock()
        four_eyes = FourEyes(
            "catalogue",
            rt.outbox,
            CatalogueApprovalRequested,
            CatalogueApprovalDecided,
            ttl=timedelta(hours=rt.settings.approval_ttl_hours),
            approvers=("admin",),
            clock=clock.now,
        )
        rt.four_eyes = four_eyes  # the shared approvals routes find the proposals here
        issuer_keys.register_actions(four_eyes, rt.outbox, config)
        return cls(config=config, clock=clock, outbox=rt.outbox, four_eyes=four_eyes)

    def context(self, session: AsyncSession, events: EventContext) -> Context:
        """The context of one use case in ``session``'s transaction, happening now."""
        return Context(session, self.outbox, self.config, self.clock.now(), events)


async def components(rt: Runtime) -> CatalogueComponents:
    return components_of(rt, CatalogueComponents)


Components = Annotated[CatalogueComponents, Depends(components)]

NATIONAL_READERS: tuple[Role, ...] = ("qa", "auditor", "admin")

Provider = Annotated[Principal, Depends(require("provider"))]
Agency = Annotated[Principal, Depends(require("agency"))]
# quality-assurance decisions: accredit, suspend, approve, reject, revoke a credential
Assessor = Annotated[Principal, Depends(require("agency", "qa"))]
# providers and courses as the back office sees them
Reader = Annotated[Principal, Depends(require("provider", "agency", *NATIONAL_READERS))]
# credentials: their holder, their issuer, the agency of the holder's account, national roles
Holder = Annotated[Principal, Depends(require("learner", "provider", "agency", *NATIONAL_READERS))]
# a learner's list of credentials
AccountReader = Annotated[Principal, Depends(require("learner", "agency", *NATIONAL_READERS))]
Anyone = Annotated[
    Principal,
    Depends(
        require("agency", "provider", "learner", "auditor", "admin", "qa", "finance", "funder")
    ),
]


def ctx_for(principal: Principal) -> EventContext:
    """The event context of a request: its correlation id and the caller."""
    return EventContext.for_request(principal.actor)


def provider_uuid(principal: Principal) -> uuid.UUID:
    """The provider a provider token speaks for."""
    try:
        return uuid.UUID(principal.provider_id or "")
    except ValueError as exc:
        raise Forbidden("the token's provider_id is not a registered provider") from exc


def manages_provider(principal: Principal, agency_id: str) -> bool:
    """May ``principal`` take quality-assurance decisions on a provider (and its courses)
    registered by ``agency_id``: that agency, or the national quality-assurance authority."""
    if principal.role == "qa":
        return True
    return principal.role == "agency" and principal.agency_id == agency_id


def reads_provider(principal: Principal, provider_id: uuid.UUID, agency_id: str) -> bool:
    """May ``principal`` read the provider's record (its payout details included)."""
    if principal.role in NATIONAL_READERS:
        return True
    if principal.role == "provider":
        return principal.provider_id == str(provider_id)
    return manages_provider(principal, agency_id)


async def manages_account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> bool:
    """Is ``principal`` an agency managing the account (by the accounts events)?"""
    if principal.role != "agency":
        return False
    return await views.account_agency(session, account_id) == principal.agency_id


async def reads_account(session: AsyncSession, principal: Principal, account_id: uuid.UUID) -> bool:
    """May ``principal`` read the credentials of the account."""
    return (
        principal.role in NATIONAL_READERS
        or (principal.role == "learner" and principal.account_id == account_id)
        or await manages_account(session, principal, account_id)
    )


class LearnerRecord(Protocol):
    """A record of a learner's account made by a provider: a credential, a validation."""

    @property
    def account_id(self) -> uuid.UUID: ...

    @property
    def provider_id(self) -> uuid.UUID: ...


async def reads_record(session: AsyncSession, principal: Principal, row: LearnerRecord) -> bool:
    """May ``principal`` read the record (a credential, a validation): its learner, the
    provider that made it, the agency managing the learner's account, national roles."""
    if principal.role in NATIONAL_READERS:
        return True
    if principal.role == "learner":
        return principal.account_id == row.account_id
    if principal.role == "provider":
        return principal.provider_id == str(row.provider_id)
    return await manages_account(session, principal, row.account_id)


async def revokes_credential(
    session: AsyncSession, principal: Principal, row: credential_store.CredentialRow
) -> bool:
    """May ``principal`` revoke the credential: ``qa``, or the agency managing the account."""
    return principal.role == "qa" or await manages_account(session, principal, row.account_id)
