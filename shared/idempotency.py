"""``Idempotency-Key`` handling, stored with the effect it guards.

The first request with a key inserts its row in the same transaction as its effect; a
concurrent or later request with the same key waits on that row, then gets the stored
response (same body) or a 422 (different body). A request that failed changed nothing,
including the key, so it may be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.db import execute, fetch_rows
from shared.problems import BadRequest, PreconditionRequired, Unprocessable
from shared.service import ServiceRuntime

MAX_KEY_LENGTH = 255

Effect = Callable[[AsyncSession], Awaitable[tuple[int, Any, dict[str, str]]]]


def request_fingerprint(request: Request, body: Any) -> str:
    canonical = json.dumps(
        {"method": request.method, "path": request.url.path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def run_idempotent(
    rt: ServiceRuntime,
    request: Request,
    principal: Principal,
    body: Any,
    effect: Effect,
    *,
    required: bool = False,
) -> Response:
    """Run ``effect`` in one transaction, at most once per (caller, Idempotency-Key).

    ``required`` (every POST that moves money): a request without the header is refused
    with 428 before anything is done, so a client retry can never move money twice.
    """
    claim = claim_for(request, principal, body, required=required)
    async with rt.uow() as session:
        if claim is not None:
            (held,) = await claim_keys(session, rt.name, [claim])
            if isinstance(held, Unprocessable):
                raise held
            if held is not None:
                return JSONResponse(held.body, status_code=held.status, headers=held.headers)
        status, payload, headers = await effect(session)
        if claim is not None:
            await settle_keys(session, rt.name, [(claim, Reply(status, payload, headers))], [])
    return JSONResponse(payload, status_code=status, headers=headers)


@dataclass(frozen=True)
class Claim:
    """A request's ``Idempotency-Key`` with what it guards (the request's fingerprint),
    claimed by :func:`claim_keys` and settled by :func:`settle_keys`: by
    :func:`run_idempotent` one at a time, by the group commits many at once."""

    scope: str
    key: str
    fingerprint: str


def _key_of(request: Request, *, required: bool) -> str | None:
    """The request's Idempotency-Key: 428 without one where ``required``, 400 when its
    length is out of bounds."""
    key = request.headers.get("idempotency-key")
    if key is None and required:
        raise PreconditionRequired(
            "this request moves money: send an Idempotency-Key header (a unique value per "
            "operation, reused on retries)",
            extra={"header": "Idempotency-Key"},
        )
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must have 1 to {MAX_KEY_LENGTH} characters")
    return key


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


def claim_for(request: Request, principal: Principal, body: Any, *, required: bool) -> Claim | None:
    """The request's claim (None without a key); 428 or 400 as :func:`run_idempotent`."""
    key = _key_of(request, required=required)
    if key is None:
        return None
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return Claim(principal.actor, key, request_fingerprint(request, body))


async def claim_keys(
    session: AsyncSession, service: str, claims: Sequence[Claim]
) -> list[Reply | Unprocessable | None]:
    """Insert the keys (one statement; distinct keys only). For each claim: None when this
    transaction now holds the key, else the stored reply (or 422 for another request)."""
    if not claims:
        return []
    inserted = {
        (r["scope"], r["key"])
        for r in await fetch_rows(
            session,
            f'INSERT INTO "{service}".idempotency (scope, key, request_hash, status) '
            "SELECT s, k, h, 0 FROM unnest(CAST(:s AS text[]), CAST(:k AS text[]), "
            "CAST(:h AS text[])) AS c(s, k, h) ON CONFLICT DO NOTHING RETURNING scope, key",
            {
                "s": [c.scope for c in claims],
                "k": [c.key for c in claims],
                "h": [c.fingerprint for c in claims],
            },
        )
    }
    taken = [c for c in claims if (c.scope, c.key) not in inserted]
    stored = {}
    if taken:
        rows = await fetch_rows(
            session,
            "SELECT scope, key, request_hash, status, body, headers "
            f'FROM "{service}".idempotency WHERE (scope, key) IN (SELECT * FROM '
            "unnest(CAST(:s AS text[]), CAST(:k AS text[])))",
            {"s": [c.scope for c in taken], "k": [c.key for c in taken]},
        )
        stored = {(r["scope"], r["key"]): r for r in rows}
    out: list[Reply | Unprocessable | None] = []
    for c in claims:
        row = stored.get((c.scope, c.key))
        if (c.scope, c.key) in inserted:
            out.append(None)
        elif row is None or row["request_hash"] != c.fingerprint:
            out.append(
                Unprocessable(
                    "this Idempotency-Key was used with a different request",
                    extra={"idempotency_key": c.key},
                )
            )
        else:
            headers = {**(row["headers"] or {}), "Idempotent-Replayed": "true"}
            out.append(Reply(row["status"], row["body"], headers))
    return out


async def settle_keys(
    session: AsyncSession,
    service: str,
    replies: Sequence[tuple[Claim, Reply]],
    failed: Sequence[Claim],
) -> None:
    """Store each reply with its key, and forget the keys of requests that failed (they
    changed nothing, so they may be retried with the same key). Two statements at most."""
    if replies:
        await execute(
            session,
            f'UPDATE "{service}".idempotency AS i SET status = u.st, body = u.b::jsonb, '
            "headers = u.hd::jsonb FROM unnest(CAST(:s AS text[]), CAST(:k AS text[]), "
            "CAST(:st AS int[]), CAST(:b AS text[]), CAST(:hd AS text[])) "
            "AS u(s, k, st, b, hd) WHERE i.scope = u.s AND i.key = u.k",
            {
                "s": [c.scope for c, _ in replies],
                "k": [c.key for c, _ in replies],
                "st": [r.status for _, r in replies],
                "b": [json.dumps(r.body, default=str) for _, r in replies],
                "hd": [json.dumps(r.headers) for _, r in replies],
            },
        )
    if failed:
        await execute(
            session,
            f'DELETE FROM "{service}".idempotency WHERE (scope, key) IN (SELECT * FROM '
            "unnest(CAST(:s AS text[]), CAST(:k AS text[])))",
            {"s": [c.scope for c in failed], "k": [c.key for c in failed]},
        )
