"""The issuer's public documents and its keys' life:

- ``GET  /v1/credentials/issuer`` — the issuer's keys document (no authentication): every
  key with its id, public key (multibase and JWK), creation and status (``current``,
  ``retired``, ``revoked`` with the moment from which it is revoked); verifiers cache it;
- ``GET  /v1/credentials/status/{list_id}`` — a signed BitstringStatusListCredential (no
  authentication), with an ETag and ``max-age``; ``If-None-Match`` answers 304;
- ``POST /v1/credentials/issuer/rotate`` — an ``admin`` makes a new key the signing key;
- ``POST /v1/credentials/issuer/keys/{kid}/revoke`` — ``qa`` proposes revoking a key from a
  date; an ``admin`` (another person) approves at ``/v1/catalogue/approvals/{id}/approve``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict

from services.catalogue.deps import Components, Runtime, ctx_for
from services.catalogue.domain.credentials import status_list
from services.catalogue.handlers import issuer_keys
from services.catalogue.store import status_lists as list_store
from shared.auth import Principal, require
from shared.events.base import UtcDatetime
from shared.events.catalogue import KeyRevocationReasonCode
from shared.problems import NotFound

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])

KEYS_CACHE = "public, max-age=300"
LIST_CACHE = f"public, max-age={status_list.TTL_MS // 1000}"

Admin = Annotated[Principal, Depends(require("admin"))]
Qa = Annotated[Principal, Depends(require("qa"))]


class KeyRevocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    revoked_after: UtcDatetime
    reason_code: KeyRevocationReasonCode


class RotatedKey(BaseModel):
    kid: str
    created_at: datetime
    verification_method: str


@router.get("/issuer")
async def issuer(rt: Runtime, parts: Components, response: Response) -> dict[str, Any]:
    """The issuer's keys document (a W3C controller document of ``Multikey`` keys)."""
    async with rt.sessions() as session:
        document = await issuer_keys.keys_document(session, parts.config, parts.clock.now())
    response.headers["Cache-Control"] = KEYS_CACHE
    return document


@router.get("/status/{list_id}")
async def status(
    list_id: Annotated[int, Path(ge=1, le=10**9)],
    request: Request,
    rt: Runtime,
) -> Response:
    """The signed status list credential (revocation bits), as verifiers cache it."""
    async with rt.reads() as session:
        row = await list_store.get(session, list_id)
    if row is None or row.document is None or row.etag is None:
        raise NotFound(f"no status list {list_id}")
    headers = {"ETag": row.etag, "Cache-Control": LIST_CACHE}
    if request.headers.get("if-none-match") == row.etag:
        return Response(status_code=304, headers=headers)
    return Response(row.document, media_type="application/vc+ld+json", headers=headers)


@router.post("/issuer/rotate", response_model=RotatedKey, status_code=201)
async def rotate(rt: Runtime, parts: Components, principal: Admin) -> RotatedKey:
    """A new key signs from now on; the previous one is retired and still verifies."""
    async with rt.uow() as session:
        record = await issuer_keys.rotate(parts.context(session, ctx_for(principal)))
    return RotatedKey(
        kid=record.kid,
        created_at=record.created_at,
        verification_method=f"{parts.config.issuer_id}#{record.kid}",
    )


@router.post("/issuer/keys/{kid}/revoke", status_code=202)
async def propose_key_revocation(
    kid: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.\-]{1,40}$")],
    body: KeyRevocation,
    rt: Runtime,
    parts: Components,
    principal: Qa,
) -> dict[str, Any]:
    """Propose revoking a key from a moment: what it signed after that moment will be
    refused. An ``admin`` approves it at ``/v1/catalogue/approvals/{id}/approve``."""
    async with rt.uow() as session:
        proposal = await issuer_keys.propose_revocation(
            parts.four_eyes,
            session,
            principal,
            ctx_for(principal),
            kid=kid,
            revoked_after=body.revoked_after,
            reason_code=body.reason_code,
            now=parts.clock.now(),
        )
    return proposal.public(parts.four_eyes.clock())
