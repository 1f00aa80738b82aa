"""The public credential check as a page: an employer pastes or uploads a credential and
reads, in plain words, whether it is valid, tampered with, revoked or not ours, with what it
certifies. ``GET /verify?credential=<id>`` shows the same for a credential we issued (the
link a learner shares). No authentication, no JavaScript.

The checks are those of ``POST /v1/credentials/verify``
(:func:`services.catalogue.handlers.credentials.verify`); this module only reads the form,
and says what the result means (:mod:`services.catalogue.domain.credentials.reading`).

Bad input (nothing given, too large, not UTF-8, not JSON, not a credential) shows the page
again with what is wrong and a 4xx status. The form needs no CSRF token: the POST changes
nothing anywhere (it reads the credential, looks its id up and renders a page), so a
forged cross-site submission can only show its sender a page it cannot read; there is
no session or cookie it could ride on besides the language preference.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import Message

from services.catalogue.api.pages import PAGES
from services.catalogue.deps import Components, Runtime
from services.catalogue.domain.credentials import reading
from services.catalogue.handlers import credentials as handlers
from services.catalogue.store import credentials as store

router = APIRouter(tags=["public registry"])
# a credential is a few KB; what is pasted or uploaded may be this large
MAX_CREDENTIAL_BYTES = 64 * 1024
# the body is read (and, past MAX_FORM_BYTES, drained unread) up to this many bytes, so
# that a browser sending a wrong, large file still receives the page (larger bodies are
# refused by the server's body limit before this route)
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_FORM_BYTES = MAX_CREDENTIAL_BYTES * 2 + 16 * 1024
NO_STORE = {"Cache-Control": "no-store"}
MAX_ERRORS = 5


class BadInput(Exception):
    def __init__(self, status: int, problem: str) -> None:
        super().__init__(problem)
        self.status, self.problem = status, problem


async def _replayed_form(request: Request) -> Request:
    """The request with its body read here (bounded), ready for form parsing."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_FORM_BYTES:
            chunks.append(chunk)
    if size > MAX_FORM_BYTES:
        raise BadInput(413, "too_large")
    body = b"".join(chunks)
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


async def _presented_text(request: Request) -> tuple[str, bool]:
    """The credential's text, and whether it was pasted (rather than uploaded)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise BadInput(415, "not_a_form")
    replayed = await _replayed_form(request)
    try:
        form = await replayed.form(max_files=1, max_fields=4, max_part_size=MAX_FORM_BYTES)
    except HTTPException as exc:
        raise BadInput(400, "not_a_form") from exc
    upload = form.get("file")
    raw: bytes = b""
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_CREDENTIAL_BYTES + 1)
    await form.close()
    was_pasted = not raw.strip()
    if was_pasted:
        field = form.get("credential")
        raw = field.encode("utf-8") if isinstance(field, str) else b""
    if not raw.strip():
        raise BadInput(400, "empty")
    if len(raw) > MAX_CREDENTIAL_BYTES:
        raise BadInput(413, "too_large")
    try:
        return raw.decode("utf-8-sig"), was_pasted
    except UnicodeDecodeError as exc:
        raise BadInput(400, "not_text") from exc


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadInput(400, "not_json") from exc
    if not isinstance(value, dict):
        raise BadInput(422, "not_a_credential")
    return handlers.presented_document(value)


def _page(request: Request, parts: Components, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("problem", None)
    context.setdefault("result", None)
    context.setdefault("pasted", "")
    return PAGES.render(
        request,
        "verify.html",
        status_code=status,
        headers=NO_STORE,
        issuer_name=parts.config.issuer_name,
        issuer_did=parts.config.issuer_id,
        max_kb=MAX_CREDENTIAL_BYTES // 1024,
        **context,
    )


async def _checked(
    request: Request, rt: Runtime, parts: Components, document: dict[str, Any], **context: Any
) -> HTMLResponse:
    async with rt.sessions() as session:
        result = await handlers.verify(session, parts.config, document, parts.clock.now())
    verdict = reading.verdict(result)
    if verdict == reading.UNREADABLE:
        return _page(request, parts, 422, problem="not_a_credential", **context)
    return _page(
        request,
        parts,
        verdict=verdict,
        result=result,
        errors=result["errors"][:MAX_ERRORS],
        summary=reading.summarise(document),
        **context,
    )


@router.get("/verify", response_class=HTMLResponse)
async def verify_page(
    request: Request, rt: Runtime, parts: Components, credential: str | None = None
) -> HTMLResponse:
    """The form; with ``?credential=<id>``, the check of a credential we issued."""
    if credential is None or not credential.strip():
        return _page(request, parts)
    try:
        credential_id = uuid.UUID(credential.strip())
    except ValueError:
        return _page(request, parts, 400, problem="bad_id")
    async with rt.reads() as session:
        row = await store.get(session, credential_id)
    if row is None:
        return _page(request, parts, 404, problem="unknown_id")
    return await _checked(request, rt, parts, json.loads(row.document), linked=credential_id)


@router.post("/verify", response_class=HTMLResponse)
async def verify_presented(request: Request, rt: Runtime, parts: Components) -> HTMLResponse:
    """Check a pasted (``credential``) or uploaded (``file``) credential."""
    pasted = ""
    try:
        text, was_pasted = await _presented_text(request)
        pasted = text if was_pasted else ""
        document = _parse(text)
    except BadInput as bad:
        return _page(request, parts, bad.status, problem=bad.problem, pasted=pasted)
    return await _checked(request, rt, parts, document, pasted=pasted)
