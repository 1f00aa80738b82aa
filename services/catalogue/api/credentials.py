"""Credential endpoints: the issuer's public key, verification (no authentication), the
signed document for its holder, issuer and agencies, and revocation by an agency."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel

from services.catalogue.api.common import Runtime, config_of, ctx_for, domain_problem, now
from services.catalogue.commands import RevokeCredential
from services.catalogue.domain.errors import CatalogueError
from services.catalogue.handlers import credentials as handlers
from services.catalogue.store import credentials as store
from shared.auth import Principal, require
from shared.problems import BadRequest, Forbidden, NotFound

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])
Agency = Annotated[Principal, Depends(require("agency"))]
Holder = Annotated[Principal, Depends(require("learner", "provider", "agency"))]


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


class Verification(BaseModel):
    valid: bool
    credential_id: str | None
    issuer: str | None
    trusted_issuer: str
    signature_valid: bool
    revoked: bool | None
    revocation: dict[str, Any] | None
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
    )


@router.get("/issuer")
async def issuer(rt: Runtime) -> dict[str, Any]:
    """The issuer's DID document: its Ed25519 public key (did:key, multibase and JWK)."""
    key = config_of(rt).issuer_key
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": key.did,
        "name": config_of(rt).issuer_name,
        "verificationMethod": [
            {
                "id": key.verification_method,
                "type": "Multikey",
                "controller": key.did,
                "publicKeyMultibase": key.public_multibase(),
                "publicKeyJwk": key.public_jwk(),
            }
        ],
        "assertionMethod": [key.verification_method],
    }


@router.post("/verify", response_model=Verification)
async def verify(
    rt: Runtime,
    presented: Annotated[dict[str, Any], Body(description="the credential document as presented")],
) -> Verification:
    """Verify a presented credential: proof form, issuer key, signature, revocation. Always
    200 with ``valid`` and, for each check, what passed and what failed."""
    if "proof" not in presented and isinstance(presented.get("credential"), dict):
        presented = presented["credential"]  # as GET /v1/credentials/{id} returns it
    async with rt.sessions() as session:
        result = await handlers.verify(session, config_of(rt), presented)
    return Verification(**result)


@router.get("", response_model=list[CredentialPublic])
async def list_credentials(
    rt: Runtime,
    principal: Annotated[Principal, Depends(require("learner", "agency"))],
    account_id: uuid.UUID | None = None,
) -> list[CredentialPublic]:
    """A learner's credentials (a learner: their own; an agency: ``?account_id=``)."""
    if principal.role == "learner":
        if account_id is not None and account_id != principal.account_id:
            raise Forbidden("a learner may list only their own credentials")
        account_id = principal.account_id
    if account_id is None:
        raise BadRequest("account_id is required")
    async with rt.sessions() as session:
        rows = await store.for_account(session, account_id)
    return [public(r) for r in rows]


@router.get("/{credential_id}", response_model=CredentialPublic)
async def get_credential(
    credential_id: uuid.UUID, rt: Runtime, principal: Holder
) -> CredentialPublic:
    """The signed credential, for the learner who holds it, the provider whose course it
    certifies, and agencies."""
    async with rt.sessions() as session:
        row = await store.get(session, credential_id)
    if row is None:
        raise NotFound(f"no credential {credential_id}")
    if principal.role == "learner" and principal.account_id != row.account_id:
        raise Forbidden("a learner may read only their own credentials")
    if principal.role == "provider" and principal.provider_id != str(row.provider_id):
        raise Forbidden("a provider may read only the credentials it issued")
    return public(row)


@router.post("/{credential_id}/revoke", response_model=CredentialPublic)
async def revoke(
    credential_id: uuid.UUID,
    body: RevokeCredential,
    request: Request,
    rt: Runtime,
    principal: Agency,
) -> CredentialPublic:
    """Revoke (e.g. when the claim behind it is reversed for fraud): verification says so."""
    async with rt.uow() as session:
        row = await store.get(session, credential_id, lock=True)
        if row is None:
            raise NotFound(f"no credential {credential_id}")
        try:
            await handlers.revoke(
                session, rt.outbox, row, body.reason, ctx_for(request, principal), now()
            )
        except CatalogueError as exc:
            raise domain_problem(exc) from exc
        updated = await store.get(session, credential_id)
        assert updated is not None
        return public(updated)
