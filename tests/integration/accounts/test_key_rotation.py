"""Rotating the key-encryption key: ``ila accounts rotate-kek`` re-wraps every data key under
the first key of ILA_ACCOUNTS_KEK; until then the old key must stay listed, after it the old
key can go and every account still reads."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from services.accounts.handlers.personal import UnknownKek
from tests.integration.support.accounts import Accounts, serve_accounts

pytestmark = pytest.mark.postgres

K1 = "k1:" + base64.b64encode(b"1" * 32).decode()
K2 = "k2:" + base64.b64encode(b"2" * 32).decode()


async def kek_ids(accounts: Accounts) -> list[str]:
    async with accounts.db.connect() as conn:
        return list(
            (await conn.execute(text("SELECT kek_id FROM accounts.personal_keys"))).scalars()
        )


async def test_rotate_kek_rewraps_every_key(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ila.cli import app
    from shared.settings import get_settings

    async with serve_accounts(db_url, accounts_kek=K1) as old:
        ids = [await old.open() for _ in range(5)]
        assert await kek_ids(old) == ["k1"] * 5

    # a service that no longer holds k1 cannot open the keys it wrapped: it says which key
    async with serve_accounts(db_url, accounts_kek=K2) as premature:
        with pytest.raises(UnknownKek, match="'k1'"):
            await premature.client.get(f"/v1/accounts/{ids[0]}", headers=premature.agency)

    monkeypatch.setenv("ILA_DATABASE_URL", db_url)
    monkeypatch.setenv("ILA_LOG_JSON", "false")
    monkeypatch.setenv("ILA_ACCOUNTS_KEK", f"{K2},{K1}")
    get_settings.cache_clear()
    runner = CliRunner()

    async def ila(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, app, list(args))

    try:
        result = await ila("accounts", "rotate-kek", "--batch-size", "2")
        assert result.exit_code == 0, (result.output, result.exception)
        assert "re-wrapped 5 data key(s) under key-encryption key 'k2'" in result.output
        again = await ila("accounts", "rotate-kek")
        assert "re-wrapped 0 data key(s)" in again.output, again.output
    finally:
        get_settings.cache_clear()

    async with serve_accounts(db_url, accounts_kek=K2) as new:
        assert await kek_ids(new) == ["k2"] * 5
        for account_id in ids:
            r = await new.client.get(f"/v1/accounts/{account_id}", headers=new.agency)
            assert r.status_code == 200, r.text
            assert r.json()["personal"]["given_name"] == "Camille"
    # the old key alone opens none of them any more
    async with serve_accounts(db_url, accounts_kek=K1) as stale:
        with pytest.raises(UnknownKek, match="'k2'"):
            await stale.client.get(f"/v1/accounts/{ids[0]}", headers=stale.agency)
