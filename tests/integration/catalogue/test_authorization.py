"""Who may do what, for every authenticated catalogue endpoint and every kind of caller.

- providers: an agency registers; the registering agency, the provider itself and national
  roles (``qa``, auditor, admin) read; the registering agency or ``qa`` accredit and suspend;
- courses: a provider drafts, changes, submits and withdraws its own; the agency that
  registered the provider or ``qa`` approve and reject; anyone authenticated reads;
- credentials: the holder, the issuing provider, the agency managing the holder's account
  and national roles read; the managing agency or ``qa`` revoke.

Someone else's provider or credential (another agency, provider or learner) answers the
404 a missing one answers, word for word; a role that may never do it answers 403. A
refused request changes nothing (providers, courses, credentials, read models, outbox).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.support.catalogue import (
    Catalogue,
    catalogue,
    certified,
    course_body,
    fingerprint,
    provider_body,
)
from tests.support import bearer, create_database

pytestmark = pytest.mark.postgres

AGENCY, OTHER_AGENCY = "pes-fr", "pes-be"
CALLERS = (
    "agency",  # registered the provider, manages the learner's account
    "other-agency",
    "provider",  # owns the course, issued the credential
    "other-provider",
    "learner",  # holds the credential
    "other-learner",
    "auditor",
    "admin",
    "finance",
    "qa",
    "funder",
)
NATIONAL = {"qa": 200, "auditor": 200, "admin": 200}
EVERYONE = dict.fromkeys(CALLERS, 200)


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # {provider}, {course}, {credential}, {account}
    expected: dict[str, int]  # caller -> status; anyone not named: 403
    body: Callable[[], Any] | None = None
    course: str | None = None  # the course's status the call needs
    accredited: bool = True
    missing: str | None = None  # the placeholder a 404 is about ("provider", ...)


def reason() -> dict[str, str]:
    return {"reason_code": "other", "note": "checked"}


ENDPOINTS: dict[str, Call] = {
    "register-provider": Call(
        "POST", "/v1/providers", {"agency": 201, "other-agency": 201}, body=provider_body
    ),
    "read-provider": Call(
        "GET",
        "/v1/providers/{provider}",
        {"agency": 200, "provider": 200, **NATIONAL, "other-agency": 404, "other-provider": 404},
        missing="provider",
    ),
    "accredit": Call(
        "POST",
        "/v1/providers/{provider}/accredit",
        {"agency": 200, "qa": 200, "other-agency": 404},
        body=reason,
        accredited=False,
        missing="provider",
    ),
    "suspend": Call(
        "POST",
        "/v1/providers/{provider}/suspend",
        {"agency": 200, "qa": 200, "other-agency": 404},
        body=reason,
        missing="provider",
    ),
    "create-course": Call(
        "POST", "/v1/courses", {"provider": 201, "other-provider": 201}, body=course_body
    ),
    "list-courses": Call(
        "GET",
        "/v1/courses",
        {"agency": 200, "other-agency": 200, "provider": 200, "other-provider": 200, **NATIONAL},
    ),
    "read-course": Call("GET", "/v1/courses/{course}", EVERYONE, course="draft"),
    "versions": Call("GET", "/v1/courses/{course}/versions", EVERYONE, course="draft"),
    "version": Call("GET", "/v1/courses/{course}/versions/1", EVERYONE, course="draft"),
    "history": Call("GET", "/v1/courses/{course}/history", EVERYONE, course="draft"),
    "update-course": Call(
        "PATCH",
        "/v1/courses/{course}",
        {"provider": 200},
        body=lambda: {"price": 99_000},
        course="draft",
    ),
    "submit": Call("POST", "/v1/courses/{course}/submit", {"provider": 200}, course="draft"),
    "withdraw": Call(
        "POST", "/v1/courses/{course}/withdraw", {"provider": 200}, course="submitted"
    ),
    "approve": Call(
        "POST",
        "/v1/courses/{course}/approve",
        {"agency": 200, "qa": 200, "other-agency": 404},
        body=reason,
        course="submitted",
        missing="course",
    ),
    "reject": Call(
        "POST",
        "/v1/courses/{course}/reject",
        {"agency": 200, "qa": 200, "other-agency": 404},
        body=reason,
        course="submitted",
        missing="course",
    ),
    "list-credentials": Call(
        "GET",
        "/v1/credentials?account_id={account}",
        {"agency": 200, "learner": 200, **NATIONAL, "other-agency": 404, "other-learner": 404},
        missing="account",
    ),
    "read-credential": Call(
        "GET",
        "/v1/credentials/{credential}",
        {
            "agency": 200,
            "provider": 200,
            "learner": 200,
            **NATIONAL,
            "other-agency": 404,
            "other-provider": 404,
            "other-learner": 404,
        },
        missing="credential",
    ),
    "revoke": Call(
        "POST",
        "/v1/credentials/{credential}/revoke",
        {"agency": 200, "qa": 200, "other-agency": 404},
        body=reason,
        missing="credential",
    ),
}


@dataclass
class World:
    """One provider (with a course and a credential) registered by ``AGENCY``."""

    provider: str
    course: str
    credential: str
    account: uuid.UUID
    headers: dict[str, dict[str, str]]

    def path(self, template: str, **ids: str) -> str:
        values = {
            "provider": self.provider,
            "course": self.course,
            "credential": self.credential,
            "account": str(self.account),
        }
        return template.format(**(values | ids))


async def build(cat: Catalogue, call: Call) -> World:
    agency = bearer(cat.settings, "agency", "desk-fr", agency_id=AGENCY)
    other_agency = bearer(cat.settings, "agency", "desk-be", agency_id=OTHER_AGENCY)
    r = await cat.c.post("/v1/providers", json=provider_body(), headers=agency)
    assert r.status_code == 201, r.text
    provider_id = r.json()["provider_id"]
    owner = cat.provider_token(provider_id)
    r = await cat.c.post("/v1/providers", json=provider_body(), headers=other_agency)
    rival = cat.provider_token(r.json()["provider_id"])
    r = await cat.c.post(f"/v1/providers/{provider_id}/accredit", json=reason(), headers=agency)
    assert r.status_code == 200, r.text
    r = await cat.c.post("/v1/courses", json=course_body(), headers=owner)
    assert r.status_code == 201, r.text
    course = r.json()
    if call.course != "draft":
        r = await cat.c.post(f"/v1/courses/{course['course_id']}/submit", headers=owner)
        assert r.status_code == 200, r.text
    if call.course is None:
        r = await cat.c.post(
            f"/v1/courses/{course['course_id']}/approve", json=reason(), headers=agency
        )
        assert r.status_code == 200, r.text
        course = r.json()
    account = uuid.uuid4()
    credential = ""
    if call.missing in ("credential", "account"):
        await cat.open_account(account, AGENCY)
        credential = await certified(cat, course, account)
    if not call.accredited:
        r = await cat.c.post(f"/v1/providers/{provider_id}/suspend", json=reason(), headers=agency)
        assert r.status_code == 200, r.text
    s = cat.settings
    headers = {
        "agency": agency,
        "other-agency": other_agency,
        "provider": owner,
        "other-provider": rival,
        "learner": bearer(s, "learner", str(account)),
        "other-learner": bearer(s, "learner", str(uuid.uuid4())),
        "auditor": bearer(s, "auditor"),
        "admin": bearer(s, "admin"),
        "finance": bearer(s, "finance"),
        "qa": bearer(s, "qa"),
        "funder": bearer(s, "funder", funder_id="region-bretagne"),
    }
    return World(provider_id, course["course_id"], credential, account, headers)


@pytest.fixture(scope="module")
async def module_catalogue(pg_admin_url: str) -> AsyncIterator[Catalogue]:
    async with catalogue(await create_database(pg_admin_url)) as cat:
        yield cat


async def send(cat: Catalogue, call: Call, url: str, headers: dict[str, str]) -> Any:
    body = call.body() if call.body else None
    return await cat.c.request(call.method, url, json=body, headers=headers)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("who", CALLERS)
async def test_authorization_matrix(module_catalogue: Catalogue, endpoint: str, who: str) -> None:
    cat = module_catalogue
    call = ENDPOINTS[endpoint]
    world = await build(cat, call)
    expected = call.expected.get(who, 403)
    before = await fingerprint(cat)
    r = await send(cat, call, world.path(call.path), world.headers[who])
    assert r.status_code == expected, r.text
    if expected >= 400:
        assert r.headers["content-type"] == "application/problem+json"
        assert await fingerprint(cat) == before
    if expected == 404:
        # word for word what a missing one answers
        assert call.missing is not None
        real = getattr(world, call.missing)
        assert r.json()["detail"] == f"no {call.missing} {real}"
        unknown = str(uuid.uuid4())
        r2 = await send(
            cat, call, world.path(call.path, **{call.missing: unknown}), world.headers[who]
        )
        assert r2.status_code == 404 and r2.json()["detail"] == f"no {call.missing} {unknown}"
        assert set(r2.json()) == set(r.json())
    if endpoint == "list-courses" and expected == 200:
        listed: set[str] = set()
        page = r.json()
        while True:
            listed |= {c["course_id"] for c in page["items"]}
            if page["next"] is None:
                break
            nxt = await cat.c.get(f"/v1/courses?after={page['next']}", headers=world.headers[who])
            page = nxt.json()
        # an agency's list holds the courses of the providers it registered
        assert (world.course in listed) == (who in ("agency", "provider", *NATIONAL)), who
    if endpoint == "read-credential" and expected == 200:
        assert r.json()["credential_id"] == world.credential
    if endpoint == "list-credentials" and expected == 200:
        assert [c["credential_id"] for c in r.json()] == [world.credential]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_no_token_is_401(module_catalogue: Catalogue, endpoint: str) -> None:
    cat = module_catalogue
    call = ENDPOINTS[endpoint]
    world = await build(cat, call)
    before = await fingerprint(cat)
    r = await send(cat, call, world.path(call.path), {})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert await fingerprint(cat) == before


async def test_public_endpoints_need_no_token(module_catalogue: Catalogue) -> None:
    cat = module_catalogue
    for path in ("/v1/public/courses", "/registry", "/v1/credentials/issuer"):
        assert (await cat.c.get(path)).status_code == 200, path
    r = await cat.c.post("/v1/credentials/verify", json={"id": "urn:uuid:" + str(uuid.uuid4())})
    assert r.status_code == 200 and r.json()["valid"] is False
