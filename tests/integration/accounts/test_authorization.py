"""Who may do what, for every accounts endpoint and every kind of caller (API.md):

- open, change the profile, suspend / reinstate / close, transfer, erase, import: an agency,
  and for an existing account only the agency that manages it;
- read one account: the managing agency, the learner it belongs to, auditors;
- list: agencies (their own accounts) and auditors;
- the second-round roles (``finance``, ``qa``, ``funder``) and admins: nothing here.

No token, a forged, expired or otherwise invalid token → 401; a valid token of the wrong
role → 403; an agency asking about an account another agency manages → the 404 of a missing
account (existence does not leak); a learner asking about another id → 403 whether it
exists or not. A refused request changes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from sqlalchemy import text

from tests.integration.support.accounts import (
    AGENCY_ID,
    OTHER_AGENCY_ID,
    Accounts,
    account_body,
    assert_problem,
)
from tests.support import bearer

pytestmark = pytest.mark.postgres

CSV_HEADER = (
    "national_id,birth_date,country,region,qualification_level,employment_status,"
    "need_flags,given_name,family_name,email,phone"
)


def csv_line() -> str:
    nid = account_body()["national_id"]
    return f"{nid},1990-01-02,FR,Bretagne,4,employed,,Lou,Bernard,lou@example.org,"


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # with {id} for the account
    body: Callable[[], Any] | None = None
    csv: bool = False
    needs_suspended: bool = False
    ok: int = 200


ENDPOINTS: dict[str, Call] = {
    "open": Call("POST", "/v1/accounts", body=account_body, ok=201),
    "list": Call("GET", "/v1/accounts"),
    "read": Call("GET", "/v1/accounts/{id}"),
    "profile": Call("PATCH", "/v1/accounts/{id}/profile", body=lambda: {"qualification_level": 5}),
    "suspend": Call(
        "POST", "/v1/accounts/{id}/suspend", body=lambda: {"reason_code": "documents_missing"}
    ),
    "reinstate": Call(
        "POST",
        "/v1/accounts/{id}/reinstate",
        body=lambda: {"reason_code": "documents_received"},
        needs_suspended=True,
    ),
    "close": Call("POST", "/v1/accounts/{id}/close", body=lambda: {"reason_code": "moved_abroad"}),
    "transfer": Call("POST", "/v1/accounts/{id}/transfer", body=lambda: {"to_agency_id": "pes-de"}),
    "erase": Call("DELETE", "/v1/accounts/{id}/personal-data", ok=204),
    "import": Call("POST", "/v1/accounts/imports", csv=True),
}

# caller -> endpoints it may use (everything else: 403)
AGENCY_ONLY = {
    "open",
    "list",
    "read",
    "profile",
    "suspend",
    "reinstate",
    "close",
    "transfer",
    "erase",
    "import",
}
ALLOWED: dict[str, set[str]] = {
    "managing-agency": AGENCY_ONLY,
    # another agency opens and imports for itself and lists its own accounts, but may not
    # touch an account it does not manage
    "other-agency": {"open", "list", "import"},
    "learner-own": {"read"},
    "learner-other": set(),
    "learner-bad-sub": set(),
    "provider": set(),
    "auditor": {"read", "list"},
    "admin": set(),
    "finance": set(),
    "qa": set(),
    "funder": set(),
}
UNAUTHENTICATED = [
    "no-token",
    "empty-bearer",
    "basic-scheme",
    "garbage",
    "bad-signature",
    "expired",
    "not-yet-valid",
    "wrong-issuer",
    "wrong-audience",
    "alg-none",
    "no-exp",
    "unknown-role",
    "agency-without-agency-id",
    "provider-without-provider-id",
    "funder-without-funder-id",
]


def claims(accounts: Accounts, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": accounts.settings.jwt_issuer,
        "aud": accounts.settings.jwt_audience,
        "sub": "desk-1",
        "role": "agency",
        "agency_id": AGENCY_ID,
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(accounts: Accounts, secret: str | None = None, **overrides: Any) -> dict[str, str]:
    token = jwt.encode(
        claims(accounts, **overrides), secret or accounts.settings.jwt_secret, algorithm="HS256"
    )
    return {"Authorization": f"Bearer {token}"}


def unauthenticated(accounts: Accounts, kind: str) -> dict[str, str]:
    if kind == "no-token":
        return {}
    if kind == "empty-bearer":
        return {"Authorization": "Bearer "}
    if kind == "basic-scheme":
        return {"Authorization": "Basic YWdlbmN5OnNlY3JldA=="}
    if kind == "garbage":
        return {"Authorization": "Bearer not.a.jwt"}
    if kind == "bad-signature":
        return signed(accounts, secret="someone-else's-secret-0123456789abcdef")
    if kind == "expired":
        return signed(accounts, exp=int(time.time()) - 60)
    if kind == "not-yet-valid":
        return signed(accounts, nbf=int(time.time()) + 600)
    if kind == "wrong-issuer":
        return signed(accounts, iss="https://elsewhere.example")
    if kind == "wrong-audience":
        return signed(accounts, aud="another-system")
    if kind == "alg-none":
        token = jwt.encode(claims(accounts), key=None, algorithm="none")
        return {"Authorization": f"Bearer {token}"}
    if kind == "no-exp":
        return signed(accounts, exp=None)
    if kind == "unknown-role":
        return signed(accounts, role="superuser")
    if kind == "agency-without-agency-id":
        return signed(accounts, agency_id=None)
    if kind == "provider-without-provider-id":
        return signed(accounts, role="provider", agency_id=None)
    if kind == "funder-without-funder-id":
        return signed(accounts, role="funder", agency_id=None)
    raise AssertionError(kind)


def caller(accounts: Accounts, kind: str, account_id: str) -> dict[str, str]:
    s = accounts.settings
    return {
        "managing-agency": accounts.agency,
        "other-agency": accounts.other_agency,
        "learner-own": bearer(s, "learner", sub=account_id),
        "learner-other": bearer(s, "learner", sub=str(uuid.uuid4())),
        "learner-bad-sub": bearer(s, "learner", sub="camille"),
        "provider": bearer(s, "provider", sub="p-staff", provider_id="prov-1"),
        "auditor": accounts.auditor,
        "admin": bearer(s, "admin", sub="root"),
        "finance": bearer(s, "finance", sub="fin-1"),
        "qa": bearer(s, "qa", sub="qa-1"),
        "funder": bearer(s, "funder", sub="fund-1", funder_id="region-bretagne"),
    }[kind]


async def prepare(accounts: Accounts, call: Call) -> str:
    account_id = await accounts.open()
    if call.needs_suspended:
        r = await accounts.client.post(
            f"/v1/accounts/{account_id}/suspend",
            json={"reason_code": "eligibility_review"},
            headers=accounts.agency,
        )
        assert r.status_code == 200, r.text
    return account_id


async def send(accounts: Accounts, call: Call, account_id: str, headers: dict[str, str]) -> Any:
    url = call.path.format(id=account_id)
    if call.csv:
        content = f"{CSV_HEADER}\n{csv_line()}\n".encode()
        return await accounts.client.request(
            call.method, url, content=content, headers={**headers, "Content-Type": "text/csv"}
        )
    body = call.body() if call.body else None
    return await accounts.client.request(call.method, url, json=body, headers=headers)


async def state(accounts: Accounts, account_id: str) -> tuple[Any, ...]:
    async with accounts.db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT agency_id, status, qualification_level, erased_at, updated_at "
                    "FROM accounts.accounts WHERE account_id = :a"
                ),
                {"a": account_id},
            )
        ).one()
    return (
        tuple(row),
        await accounts.count("accounts"),
        await accounts.count("outbox"),
        await accounts.count("personal_keys"),
    )


async def list_all(accounts: Accounts, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of the list, following the ``next`` cursor."""
    items: list[dict[str, Any]] = []
    after = ""
    for _ in range(1000):
        r = await accounts.client.get(f"/v1/accounts?limit=50{after}", headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["items"])
        if page["next"] is None:
            return items
        after = f"&after={page['next']}"
    raise AssertionError("the list never ends")


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("who", UNAUTHENTICATED)
async def test_unauthenticated_is_401(module_accounts: Accounts, endpoint: str, who: str) -> None:
    accounts = module_accounts
    call = ENDPOINTS[endpoint]
    account_id = await prepare(accounts, call)
    before = await state(accounts, account_id)
    r = await send(accounts, call, account_id, unauthenticated(accounts, who))
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].lower().startswith("bearer")
    assert await state(accounts, account_id) == before


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("who", list(ALLOWED))
async def test_authorization_matrix(module_accounts: Accounts, endpoint: str, who: str) -> None:
    accounts = module_accounts
    call = ENDPOINTS[endpoint]
    account_id = await prepare(accounts, call)
    before = await state(accounts, account_id)
    r = await send(accounts, call, account_id, caller(accounts, who, account_id))
    if endpoint not in ALLOWED[who]:
        if who == "other-agency" and "{id}" in call.path:
            # someone else's account: the very answer a missing account gets
            missing = str(uuid.uuid4())
            problem = assert_problem(r, 404)
            assert problem["detail"] == f"no account {account_id}"
            r2 = await send(accounts, call, missing, caller(accounts, who, account_id))
            assert assert_problem(r2, 404)["detail"] == f"no account {missing}"
            assert set(problem) == set(r2.json())
        else:
            assert_problem(r, 403)
        assert await state(accounts, account_id) == before
        return
    assert r.status_code == call.ok, r.text
    if endpoint == "read":
        assert r.json()["account_id"] == account_id
    if endpoint == "list":
        items = await list_all(accounts, caller(accounts, who, account_id))
        listed = {a["account_id"] for a in items}
        if who == "other-agency":
            assert account_id not in listed
            assert {a["agency_id"] for a in items} <= {OTHER_AGENCY_ID}
        else:
            assert account_id in listed
    if endpoint == "open":
        opened = r.json()["account_id"]
        read = await accounts.client.get(f"/v1/accounts/{opened}", headers=accounts.auditor)
        expected_agency = OTHER_AGENCY_ID if who == "other-agency" else AGENCY_ID
        assert read.json()["agency_id"] == expected_agency
    if endpoint == "import":
        assert r.json()["opened"] == 1, r.text


async def test_the_agency_named_in_the_token_decides_not_the_body(accounts: Accounts) -> None:
    """An agency cannot open an account on another agency's behalf by naming it."""
    r = await accounts.client.post(
        "/v1/accounts",
        json={**account_body(), "agency_id": OTHER_AGENCY_ID},
        headers=accounts.agency,
    )
    assert_problem(r, 422)
    assert await accounts.count("accounts") == 0


async def test_learner_of_a_missing_account_learns_nothing(accounts: Accounts) -> None:
    """A learner asking for an unknown id gets the same 403 as for someone else's account."""
    account_id = await accounts.open()
    unknown = str(uuid.uuid4())
    me = accounts.learner(unknown)
    missing = await accounts.client.get(f"/v1/accounts/{unknown}", headers=me)
    other = await accounts.client.get(f"/v1/accounts/{account_id}", headers=me)
    assert_problem(missing, 403)
    assert_problem(other, 403)
    assert missing.json()["detail"] == other.json()["detail"]


async def test_after_transfer_the_old_agency_loses_every_right(accounts: Accounts) -> None:
    account_id = await accounts.open()
    r = await accounts.client.post(
        f"/v1/accounts/{account_id}/transfer",
        json={"to_agency_id": OTHER_AGENCY_ID, "reason": "moved to Brussels"},
        headers=accounts.agency,
    )
    assert r.status_code == 200, r.text
    before = await state(accounts, account_id)
    for name, call in ENDPOINTS.items():
        if "{id}" not in call.path:
            continue
        r = await send(accounts, call, account_id, accounts.agency)
        assert r.status_code == 404, (name, r.text)
        assert assert_problem(r, 404)["detail"] == f"no account {account_id}"
    assert await state(accounts, account_id) == before
    r = await accounts.client.get(f"/v1/accounts/{account_id}", headers=accounts.other_agency)
    assert r.status_code == 200
    r = await accounts.client.post(
        f"/v1/accounts/{account_id}/suspend",
        json={"reason_code": "other"},
        headers=accounts.other_agency,
    )
    assert r.status_code == 200, r.text
