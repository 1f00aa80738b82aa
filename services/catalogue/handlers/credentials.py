"""Issuing micro-credentials on certified completions, revoking and verifying them."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalogue.commands import RevokeCredential
from services.catalogue.domain.credentials import document, elm, signing, status_list, verifier
from services.catalogue.domain.errors import conflict
from services.catalogue.handlers import CatalogueConfig, Context, issuer_keys, status_lists
from services.catalogue.store import courses as course_store
from services.catalogue.store import credentials as store
from services.catalogue.store import providers as provider_store
from services.catalogue.store import status_lists as list_store
from shared.events.catalogue import CredentialIssued, CredentialRevoked
from shared.events.payments import CompletionCertified

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Issuing:
    """A credential about to be issued: what both of its forms state, the key that signs
    them (and its id) and the learner's enrolment it is for."""

    facts: document.Facts
    key_id: str
    key: signing.IssuerKey
    status_list: int
    status_index: int
    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    provider_id: uuid.UUID

    def signed(self, unsigned: dict[str, Any]) -> str:
        """One form, signed, as the register keeps it (compact JSON)."""
        proof = signing.sign(unsigned, self.key, self.facts.issued_at)
        return json.dumps(proof, ensure_ascii=False, separators=(",", ":"))

    def row(self, ob3: dict[str, Any], elm_form: dict[str, Any], kind: str) -> dict[str, Any]:
        """The register's row of the credential, both forms signed."""
        f = self.facts
        return {
            "credential_id": f.credential_id,
            "enrolment_id": self.enrolment_id,
            "account_id": self.account_id,
            "course_id": f.course_id,
            "course_version": f.course_version,
            "provider_id": self.provider_id,
            "document": self.signed(ob3),
            "issued_at": f.issued_at,
            "key_id": self.key_id,
            "status_list": self.status_list,
            "status_index": self.status_index,
            "elm_document": self.signed(elm_form),
            "kind": kind,
        }

    def event(self) -> CredentialIssued:
        f = self.facts
        return CredentialIssued(
            credential_id=f.credential_id,
            account_id=self.account_id,
            enrolment_id=self.enrolment_id,
            course_id=f.course_id,
            course_version=f.course_version,
            provider_id=str(self.provider_id),
            issuer=f.issuer.did,
            issued_at=f.issued_at,
        )


async def issuing(
    ctx: Context,
    *,
    course_id: uuid.UUID,
    course_version: int,
    content: dict[str, Any],
    provider_id: uuid.UUID,
    provider_name: str,
    enrolment_id: uuid.UUID,
    account_id: uuid.UUID,
) -> Issuing:
    """A new credential of the learner's enrolment in a course version (its ``content``):
    a new id, the current signing key, the next entry of a status list."""
    config = ctx.config
    kid, key = await issuer_keys.signing_key(ctx.session, config, ctx.now)
    list_id, index = await status_lists.allocate(ctx)
    facts = document.Facts(
        credential_id=uuid.uuid4(),
        issuer=document.Issuer(did=config.issuer_id, name=config.issuer_name),
        issued_at=ctx.now,
        course_id=course_id,
        course_version=course_version,
        content=content,
        provider_name=provider_name,
        status=status_list.entry(config.status_list_url(list_id), index),
    )
    return Issuing(facts, kid, key, list_id, index, enrolment_id, account_id, provider_id)


class UnknownCourseVersion(Exception):
    """The completion names a course version the catalogue never had (dead-lettered)."""


async def issue(completion: CompletionCertified, ctx: Context) -> store.CredentialRow | None:
    """The credential for this enrolment: issued now, or the one issued before; none for a
    course of kind ``validation``, whose credential the validation's outcome issues
    (:mod:`.validations`)."""
    session = ctx.session
    existing = await store.by_enrolment(session, completion.enrolment_id)
    if existing is not None:
        return existing
    version = await course_store.version(session, completion.course_id, completion.course_version)
    if version is None:
        raise UnknownCourseVersion(
            f"course {completion.course_id} has no version {completion.course_version}"
        )
    course = await course_store.get(session, completion.course_id)
    assert course is not None
    if str(course.provider_id) != completion.provider_id:
        raise UnknownCourseVersion(
            f"course {completion.course_id} is not offered by provider {completion.provider_id}"
        )
    if course.content.get("kind") == "validation":
        return None
    provider = await provider_store.get(session, course.provider_id)
    assert provider is not None
    new = await issuing(
        ctx,
        course_id=completion.course_id,
        course_version=completion.course_version,
        content=version.content,
        provider_id=course.provider_id,
        provider_name=provider.name,
        enrolment_id=completion.enrolment_id,
        account_id=completion.account_id,
    )
    earned = document.Completion(
        enrolment_id=completion.enrolment_id,
        account_id=completion.account_id,
        completed_at=completion.completed_at,
        completion_rate=completion.completion_rate,
        grade=completion.grade,
    )
    # both forms state the same facts: Open Badges 3 and the European Learning Model (EDC
    # profile), signed by the same key, revoked by the same status entry
    ob3, elm_form = document.build(new.facts, earned), elm.build(new.facts, earned)
    await store.insert(session, new.row(ob3, elm_form, "completion"))
    await ctx.emit(new.event())
    issued = await store.get(session, new.facts.credential_id)
    assert issued is not None
    return issued


async def revoke(row: store.CredentialRow, cmd: RevokeCredential, ctx: Context) -> None:
    """Revoke the (locked) credential: verification says so from now on."""
    if row.revoked_at is not None:
        raise conflict("already_revoked", "the credential is already revoked")
    await store.revoke(ctx.session, row.credential_id, cmd.reason_code, ctx.now)
    if row.status_list is not None:  # its bit flips in a newly signed list
        await status_lists.republish(ctx, row.status_list)
    await ctx.emit(
        CredentialRevoked(
            credential_id=row.credential_id,
            account_id=row.account_id,
            reason_code=cmd.reason_code,
            revoked_at=ctx.now,
        )
    )


async def revoke_for_reversal(enrolment_id: uuid.UUID, ctx: Context) -> bool:
    """The capture that paid for a completion was reversed: its credential (if issued and
    still valid) is revoked."""
    found = await store.by_enrolment(ctx.session, enrolment_id)
    row = await store.get(ctx.session, found.credential_id, lock=True) if found else None
    if row is None or row.revoked_at is not None:
        return False
    await revoke(row, RevokeCredential(reason_code="capture_reversed"), ctx)
    return True


def _credential_id(presented: dict[str, Any]) -> uuid.UUID | None:
    value = presented.get("id")
    if not isinstance(value, str) or not value.startswith("urn:uuid:"):
        return None
    try:
        return uuid.UUID(value.removeprefix("urn:uuid:"))
    except ValueError:
        return None


def presented_document(body: dict[str, Any]) -> dict[str, Any]:
    """The credential in what was presented: the document itself, or the reply of
    ``GET /v1/credentials/{id}`` (which holds it under ``credential``)."""
    inner = body.get("credential")
    if "proof" not in body and isinstance(inner, dict):
        return inner
    return body


async def verify(
    session: AsyncSession, config: CatalogueConfig, presented: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Check form, issuer key (and its status), signature and revocation; say which failed
    and why. The same checks a verifier makes offline (:mod:`.verifier`), with the keys
    document and the status list as they stand, and the register's record of the
    credential: its revocation's date and reason, and whether we issued it at all. The
    canonical form and the signatures are computed off the event loop."""
    keys = verifier.IssuerKeys(await issuer_keys.keys_document(session, config, now))
    result = verifier.Result()
    await asyncio.to_thread(verifier.check_proof, presented, keys, result)
    credential_id = _credential_id(presented)
    row = await store.get(session, credential_id) if credential_id else None
    revocation: dict[str, Any] | None = None
    if result.checks.get("format") == "ok":
        entry = verifier.status_entry(presented)
        list_id = config.status_list_id(entry[0]) if entry else None
        listed = await list_store.get(session, list_id) if list_id else None
        if entry is not None and listed is not None and listed.document:
            cached = {entry[0]: json.loads(listed.document)}
            await asyncio.to_thread(verifier.check_status, presented, keys, cached, result)
        elif entry is not None:
            result.fail("revocation", "unknown", "the status list named is not this issuer's")
        elif row is not None and row.revoked_at is None:
            result.revoked = False  # issued before status lists: the register says
            result.checks["revocation"] = "ok"
        if row is None and "revocation" not in result.errors_by_check():
            result.fail("revocation", "unknown", "this issuer has no record of the credential")
        if row is not None and row.revoked_at is not None:
            revocation = {"revoked_at": row.revoked_at, "reason": row.revocation_reason}
            if result.checks.get("revocation") != "revoked":
                result.revoked = True
                result.fail("revocation", "revoked", "the credential was revoked")
    return {
        "valid": not result.errors,
        "credential_id": str(credential_id) if credential_id else None,
        "issuer": result.issuer,
        "trusted_issuer": config.issuer_id,
        "signature_valid": result.checks.get("signature") == "ok",
        "key_id": result.key_id,
        "key_status": result.key_status,
        "revoked": result.revoked,
        "revocation": revocation,
        "status_list": result.status_list,
        "checks": result.checks,
        "errors": result.errors,
    }
