"""Credential endpoints: verification (no authentication), the
signed document for its holder, issuer and agencies, and revocation.

Who may do what:

- read (one, or a learner's list): the learner who holds it, the provider that issued it,
  the agency that manages the learner's account, and national roles (``qa``, auditors,
  admins); anyone else gets the 404 a missing credential gets;
- revoke: the agency that manages the learner's account, or ``qa`` (a credential of
  training that was never given is a quality-assurance matter); anyone else: 404.

Which agency manages an account comes from the accounts events (a read model in the
catalogue, see :mod:`services.catalogue.projections`); the scope rules are in
:mod:`services.catalogue.deps`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel

from services.catalogue.commands import RevokeCredential
from services.catalogue.deps import (
    AccountReader,
    Assessor,
    Components,
    Holder,
    Runtime,
    ctx_for,
    reads_account,
    reads_record,
    revokes_credential,
)
from services.catalogue.handlers import credentials as handlers
from services.catalogue.store import credentials as store
from shared.problems import BadRequest, NotFound

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])


class CredentialPublic(BaseModel):
    credential_id: uuid.UUID
    account_id: uuid.UUID
    enrolment_id: uuid.UUID
    course_id: uuid.UUID
    course_version: int
    provider_id: uuid.UUID
    status: str
    issued_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    credential: dict[str, Any]
    # ``completion`` of training, or ``validation`` of prior learning
    kind: str = "completion"
    # the public page that checks it, for the holder to share (relative to the catalogue)
    verification_page: str


class Verification(BaseModel):
    valid: bool
    credential_id: str | None
    issuer: str | None
    trusted_issuer: str
    signature_valid: bool
    key_id: str | None = None
    key_status: str | None = None
    revoked: bool | None
    revocation: dict[str, Any] | None
    status_list: str | None = None
    checks: dict[str, str]
    errors: list[str]


def public(row: store.CredentialRow) -> CredentialPublic:
    return CredentialPublic(
        credential_id=row.credential_id,
        account_id=row.account_id,
        enrolment_id=row.enrolment_id,
        course_id=row.course_id,
        course_version=row.course_version,
        provider_id=row.provider_id,
        status="revoked" if row.revoked_at else "issued",
        issued_at=row.issued_at,
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
        credential=json.loads(row.document),
        kind=row.kind,
        verification_page=f"/verify?credential={row.credential_id}",
    )


@router.post("/verify", response_model=Verification)
async def verify(
    rt: Runtime,
    parts: Components,
    presented: Annotated[dict[str, Any], Body(description="the credential document as presented")],
) -> Verification:
    """Verify a presented credential: proof form, issuer key and its status, signature,
    revocation (its bit in the status list). Always 200 with ``valid`` and, for each check,
    what passed and what failed."""
    async with rt.sessions() as session:
        result = await handlers.verify(
            session, parts.config, handlers.presented_document(presented), parts.clock.now()
        )
    return Verification(**result)


@router.get("", response_model=list[CredentialPublic])
async def list_credentials(
    rt: Runtime,
    principal: AccountReader,
    account_id: uuid.UUID | None = None,
) -> list[CredentialPublic]:
    """A learner's credentials: a learner their own; with ``?account_id=``, the agency that
    manages the account and national roles (another agency or learner: 404, as for an
    unknown account)."""
    if principal.role == "learner" and account_id is None:
        account_id = principal.account_id
    if account_id is None:
        raise BadRequest("account_id is required")
    async with rt.reads() as session:
        if not await reads_account(session, principal, account_id):
            raise NotFound(f"no account {account_id}")
        rows = await store.for_account(session, account_id)
    return [public(r) for r in rows]


ELM_MEDIA_TYPE = "application/ld+json; profile=elm"


def _wants_elm(format_: str | None, accept: str) -> bool:
    if format_ is not None:
        return format_ == "elm"
    return "application/ld+json" in accept and "profile=elm" in accept.replace('"', "")


@router.get(
    "/{credential_id}",
    response_model=CredentialPublic,
    responses={200: {"content": {ELM_MEDIA_TYPE: {}}}},
)
async def get_credential(
    credential_id: uuid.UUID,
    rt: Runtime,
    principal: Holder,
    request: Request,
    format: Annotated[Literal["ob3", "elm"] | None, Query()] = None,
) -> Any:
    """The signed credential, for the learner who holds it, the provider whose course it
    certifies, the agency that manages the learner's account and national roles. With
    ``?format=elm`` (or ``Accept: application/ld+json; profile=elm``): the same credential
    in the European Learning Model (EDC profile), the signed document alone."""
    async with rt.reads() as session:
        row = await store.get(session, credential_id)
        if row is None or not await reads_record(session, principal, row):
            raise NotFound(f"no credential {credential_id}")
    if _wants_elm(format, request.headers.get("accept", "")):
        if row.elm_document is None:
            raise NotFound(f"credential {credential_id} was issued before the ELM form existed")
        return Response(row.elm_document, media_type=ELM_MEDIA_TYPE)
    return public(row)


@router.post("/{credential_id}/revoke", response_model=CredentialPublic)
async def revoke(
    credential_id: uuid.UUID,
    body: RevokeCredential,
    rt: Runtime,
    parts: Components,
    principal: Assessor,
) -> CredentialPublic:
    """Revoke (e.g. when the claim behind it is reversed for fraud): verification says so.
    The agency that manages the learner's account, or ``qa``."""
    async with rt.uow() as session:
        row = await store.get(session, credential_id, lock=True)
        if row is None or not await revokes_credential(session, principal, row):
            raise NotFound(f"no credential {credential_id}")
        await handlers.revoke(row, body, parts.context(session, ctx_for(principal)))
        updated = await store.get(session, credential_id)
        assert updated is not None
        return public(updated)
