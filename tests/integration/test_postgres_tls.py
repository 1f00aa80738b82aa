"""PostgreSQL over TLS against a real server started with a certificate this test made: a
service connects with ``sslmode=verify-full``; a client trusting another CA, or asking for
no TLS at all, gets no connection."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ila.postgres_tls import server_bindir, start_tls_server
from ila.registry import definition
from ila.tls import Authority, issue, make_ca
from shared.db import make_engine
from tests.support import IN_CI, bearer, free_port, running_app, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Authority]]:
    """A second server, TCP with TLS only: its admin URL and the CA that signed it."""
    if server_bindir() is None:
        message = "no PostgreSQL server build with SSL (Debian's postgresql package)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("pg-tls")
    ca = make_ca(root / "ca")
    certificate = issue(ca, root / "server", "server", common_name="ila-db")
    server = start_tls_server(root, certificate, free_port())
    yield server.url, ca
    server.stop()


async def _ssl_in_use(
    url: str, *, sslmode: str | None = None, sslrootcert: Path | None = None
) -> bool:
    engine = make_engine(url, pool_size=1, sslmode=sslmode, sslrootcert=sslrootcert)
    try:
        async with engine.connect() as conn:
            used = await conn.scalar(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
    finally:
        await engine.dispose()
    return bool(used)


async def test_a_service_runs_over_verified_tls(tls_server: tuple[str, Authority]) -> None:
    url, ca = tls_server
    settings = settings_for(url, db_sslmode="verify-full", db_sslrootcert=ca.cert)
    async with running_app([definition("accounts")], settings) as (app, client):
        assert (await client.get("/readyz")).status_code == 200
        agency = bearer(settings, "agency", agency_id="pes-fr")
        body = {
            "national_id": f"FR{uuid.uuid4().int % 10**12:012d}",
            "birth_date": "1985-05-12",
            "country": "FR",
            "region": "Île-de-France",
            "qualification_level": 3,
            "employment_status": "unemployed",
            "need_flags": [],
            "personal": {"given_name": "A", "family_name": "B", "email": "a@example.org"},
        }
        r = await client.post("/v1/accounts", json=body, headers=agency)
        assert r.status_code == 201, r.text
        engine = app.state.runtimes["accounts"].engine
        async with engine.connect() as conn:
            assert await conn.scalar(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
    # the same through libpq's names in the URL
    assert await _ssl_in_use(f"{url}?sslmode=verify-full&sslrootcert={ca.cert}")


async def test_a_server_signed_by_another_ca_is_refused(
    tls_server: tuple[str, Authority], tmp_path: Path
) -> None:
    url, _ = tls_server
    other = make_ca(tmp_path, common_name="someone else")
    for mode in ("verify-full", "verify-ca"):
        with pytest.raises(ssl.SSLCertVerificationError):
            await _ssl_in_use(url, sslmode=mode, sslrootcert=other.cert)


async def test_the_server_takes_no_connection_without_tls(
    tls_server: tuple[str, Authority],
) -> None:
    url, _ = tls_server
    with pytest.raises(Exception, match="no encryption"):
        await _ssl_in_use(url, sslmode="disable")
