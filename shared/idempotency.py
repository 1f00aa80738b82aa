"""``Idempotency-Key`` handling, stored with the effect it guards.

The first request with a key inserts its row in the same transaction as its effect; a
concurrent or later request with the same key waits on that row, then gets the stored
response (same body) or a 422 (different body). A request that failed changed nothing,
including the key, so it may be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
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
    key = request.headers.get("idempotency-key")
    if key is None and required:
        raise PreconditionRequired(
            "this request moves money: send an Idempotency-Key header (a unique value per "
            "operation, reused on retries)",
            extra={"header": "Idempotency-Key"},
        )
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must have 1 to {MAX_KEY_LENGTH} characters")
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    service = rt.name
    fingerprint = request_fingerprint(request, body)
    scope = principal.actor
    async with rt.uow() as session:
        if key is not None:
            inserted = await session.scalar(
                text(
                    f'INSERT INTO "{service}".idempotency (scope, key, request_hash, status) '
                    "VALUES (:scope, :key, :hash, 0) ON CONFLICT DO NOTHING RETURNING key"
                ),
                {"scope": scope, "key": key, "hash": fingerprint},
            )
            if inserted is None:
                row = (
                    await session.execute(
                        text(
                            "SELECT request_hash, status, body, headers "
                            f'FROM "{service}".idempotency WHERE scope = :scope AND key = :key'
                        ),
                        {"scope": scope, "key": key},
                    )
                ).one()
                if row.request_hash != fingerprint:
                    raise Unprocessable(
                        "this Idempotency-Key was used with a different request",
                        extra={"idempotency_key": key},
                    )
                headers = dict(row.headers or {})
                headers["Idempotent-Replayed"] = "true"
                return JSONResponse(row.body, status_code=row.status, headers=headers)
        status, payload, headers = await effect(session)
        if key is not None:
            await session.execute(
                text(
                    f'UPDATE "{service}".idempotency SET status = :status, '
                    "body = CAST(:body AS jsonb), headers = CAST(:headers AS jsonb) "
                    "WHERE scope = :scope AND key = :key"
                ),
                {
                    "scope": scope,
                    "key": key,
                    "status": status,
                    "body": json.dumps(payload, default=str),
                    "headers": json.dumps(headers),
                },
            )
    return JSONResponse(payload, status_code=status, headers=headers)
