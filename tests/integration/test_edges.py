"""What the outside world can do to a running system before any rule of a service runs:
oversized bodies, invented methods, tokens that live for a century, a development
deployment listening on the network, HTML pages without their security headers."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from pydantic import ValidationError

from ila.registry import all_definitions
from shared.settings import DEV_ACCOUNTS_KEK, Settings
from tests.support import bearer, running_app, settings_for

pytestmark = pytest.mark.postgres
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MiB = 1024 * 1024


@pytest.fixture
async def fx(db_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = settings_for(db_url)
    async with running_app(all_definitions(), settings, run_jobs=False) as (_, c):
        yield c, settings


async def test_a_declared_40_mb_body_is_refused_before_it_is_read(
    fx: tuple[httpx.AsyncClient, Settings],
) -> None:
    c, _ = fx
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(40 * 16):  # 40 MiB in 64 KiB chunks
            pulled += 1
            yield b"x" * 65536

    started = time.perf_counter()
    r = await c.post(
        "/v1/accounts",
        content=body(),
        headers={"content-type": "application/json", "content-length": str(40 * MiB)},
    )
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "larger than 1048576 bytes" in r.json()["detail"]
    assert pulled <= 1  # the declared length alone was enough: nothing was parsed
    assert time.perf_counter() - started < 5


async def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(
    fx: tuple[httpx.AsyncClient, Settings],
) -> None:
    c, _ = fx
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(40 * 16):
            pulled += 1
            yield b"x" * 65536

    # no token either: the limit answers before authentication and parsing
    r = await c.post("/v1/accounts", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    # 1 MiB is 16 chunks; the read stopped right after the limit, not after 40 MiB
    assert pulled <= 18, pulled


async def test_the_csv_import_keeps_its_larger_limit(
    fx: tuple[httpx.AsyncClient, Settings],
) -> None:
    c, settings = fx
    agency = bearer(settings, "agency", agency_id="pes-fr")
    header = b"national_id,birth_date,country,region,qualification_level,employment_status\n"
    filler = b"# " + b"y" * (2 * MiB) + b"\n"
    r = await c.post(
        "/v1/accounts/imports",
        content=header + filler,
        headers={**agency, "content-type": "text/csv"},
    )
    assert r.status_code != 413, r.text


async def test_invented_methods_add_no_metric_series(
    fx: tuple[httpx.AsyncClient, Settings],
) -> None:
    c, _ = fx
    for i in range(5):
        await c.request(f"BREW{i}", "/v1/accounts")
    text = (await c.get("/metrics")).text
    assert "BREW" not in text
    assert 'method="OTHER"' in text


async def test_a_token_valid_for_a_hundred_years_is_refused(
    fx: tuple[httpx.AsyncClient, Settings],
) -> None:
    c, settings = fx
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "x",
        "role": "auditor",
        "iat": now,
        "exp": now + 100 * 365 * 86400,
    }
    century = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    r = await c.get("/v1/ledger/stats", headers={"Authorization": f"Bearer {century}"})
    assert r.status_code == 401
    assert "lifetime" in r.json()["detail"]
    # without iat the expiry alone gives it away
    del claims["iat"]
    century = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    r = await c.get("/v1/ledger/stats", headers={"Authorization": f"Bearer {century}"})
    assert r.status_code == 401
    # a token within the lifetime still works
    claims.update(iat=now, exp=now + 3600)
    ok = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    assert (await c.get("/v1/ledger/stats", headers={"Authorization": f"Bearer {ok}"})).is_success


async def test_html_pages_send_their_security_headers(
    fx: tuple[httpx.AsyncClient, Settings],
) -> None:
    c, _ = fx
    r = await c.get("/registry")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "script-src" not in csp  # no script at all: default-src 'none' covers it
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    api = await c.get("/healthz")
    assert api.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("command", [["run"], ["serve", "accounts"]])
def test_development_secrets_refuse_a_non_loopback_address(command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILA_")} | {
        "ILA_HOST": "0.0.0.0",
        "ILA_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ila.cli", *command],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ILA_JWT_SECRET" in done.stderr and "0.0.0.0" in done.stderr


def test_development_secrets_on_loopback_are_allowed() -> None:
    Settings().check_listen("127.0.0.1")
    Settings().check_listen("::1")


@pytest.mark.parametrize(
    "override, named",
    [
        ({"national_id_pepper": "short"}, "ILA_NATIONAL_ID_PEPPER"),
        ({"credential_key_seed": "x" * 31}, "ILA_CREDENTIAL_KEY_SEED"),
        ({"jwt_issuer": "ila-dev"}, "ILA_JWT_ISSUER"),
        ({"jwt_public_key": None}, "ILA_JWT_PUBLIC_KEY"),
        ({"actor_pepper": "a" * 31}, "ILA_ACTOR_PEPPER"),
        ({"accounts_kek": DEV_ACCOUNTS_KEK}, "ILA_ACCOUNTS_KEK"),
        ({"accounts_kek": "k1:" + base64.b64encode(b"k" * 16).decode()}, "ILA_ACCOUNTS_KEK"),
    ],
)
def test_production_refuses_weak_settings_and_names_them(
    override: dict[str, object], named: str
) -> None:
    good: dict[str, object] = {
        "env": "production",
        "jwt_public_key": "PEM",
        "jwt_issuer": "https://idp.example.eu",
        "national_id_pepper": "p" * 32,
        "credential_key_seed": "s" * 32,
        "actor_pepper": "a" * 32,
        "accounts_kek": "k1:" + base64.b64encode(b"k" * 32).decode(),
    }
    Settings(**good)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as err:
        Settings(**{**good, **override})  # type: ignore[arg-type]
    assert named in str(err.value)
