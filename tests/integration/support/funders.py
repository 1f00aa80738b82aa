"""Funders through the ledger's HTTP API, for tests: register one, have its budget approved,
grant from it with its own token."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.support.ledger import Api
from tests.support import bearer


async def funder(api: Api, kind: str = "employer", **extra: object) -> str:
    body = {"kind": kind, "name": f"{kind} {uuid.uuid4().hex[:6]}", **extra}
    r = await api.c.post("/v1/ledger/funders", json=body, headers=api.admin)
    assert r.status_code == 201, r.text
    funder_id: str = r.json()["funder_id"]
    return funder_id


def token(api: Api, funder_id: str) -> dict[str, str]:
    return bearer(api.settings, "funder", sub=f"staff-{funder_id[:8]}", funder_id=funder_id)


async def budget(api: Api, funder_id: str, year: int, amount: int) -> dict[str, Any]:
    """Propose the budget as the admin and have finance approve it."""
    r = await api.c.put(
        f"/v1/ledger/funders/{funder_id}/budgets/{year}",
        json={"amount": amount},
        headers=api.admin,
    )
    assert r.status_code == 202, r.text
    assert r.json()["subject"] == f"budget:{funder_id}:{year}"
    approved = await api.approve(r.json()["approval_id"])
    assert approved.status_code == 200, approved.text
    return approved.json()  # type: ignore[no-any-return]


async def grant(
    api: Api,
    funder_id: str,
    account_id: str,
    amount: int,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> httpx.Response:
    return await api.c.post(
        f"/v1/ledger/funders/{funder_id}/grants",
        headers={**(headers or token(api, funder_id)), "Idempotency-Key": str(uuid.uuid4())},
        json={"account_id": account_id, "amount": amount, **extra},
    )
