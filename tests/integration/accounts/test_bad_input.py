"""Bad input never opens, changes or half-writes anything: each case is a 4xx problem
(RFC 9457) naming the offending field, and the tables stay as they were."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from tests.integration.support.accounts import (
    Accounts,
    account_body,
    assert_problem,
    error_fields,
)

pytestmark = pytest.mark.postgres

HUGE = "x" * 10_000
MISSING = object()


def years_ago(years: int, today: date | None = None) -> str:
    today = today or date.today()
    try:
        return today.replace(year=today.year - years).isoformat()
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28).isoformat()


def with_field(path: str, value: Any) -> dict[str, Any]:
    """A valid body with ``path`` (dotted) replaced by ``value``, or removed (MISSING)."""
    body = account_body()
    *parents, last = path.split(".")
    target = body
    for p in parents:
        target = target[p]
    if value is MISSING:
        del target[last]
    else:
        target[last] = value
    return body


# (case id, JSON body, the field the errors must name)
JSON_CASES: list[tuple[str, dict[str, Any], str]] = [
    *[
        (f"missing-{f}", with_field(f, MISSING), f)
        for f in (
            "national_id",
            "birth_date",
            "country",
            "region",
            "qualification_level",
            "employment_status",
            "personal",
            "personal.given_name",
            "personal.family_name",
        )
    ],
    ("level-string", with_field("qualification_level", "3"), "qualification_level"),
    ("level-float", with_field("qualification_level", 3.5), "qualification_level"),
    ("level-bool", with_field("qualification_level", True), "qualification_level"),
    ("level-null", with_field("qualification_level", None), "qualification_level"),
    ("level-negative", with_field("qualification_level", -1), "qualification_level"),
    ("level-9", with_field("qualification_level", 9), "qualification_level"),
    ("level-huge", with_field("qualification_level", 10**30), "qualification_level"),
    ("national-id-number", with_field("national_id", 185057800608), "national_id"),
    ("national-id-empty", with_field("national_id", ""), "national_id"),
    ("national-id-blank", with_field("national_id", "    "), "national_id"),
    ("national-id-markup", with_field("national_id", "<script>1</script>"), "national_id"),
    ("birth-date-feb-30", with_field("birth_date", "2023-02-30"), "birth_date"),
    ("birth-date-month-13", with_field("birth_date", "1985-13-01"), "birth_date"),
    ("birth-date-local-format", with_field("birth_date", "12/05/1985"), "birth_date"),
    ("birth-date-words", with_field("birth_date", "yesterday"), "birth_date"),
    ("birth-date-number", with_field("birth_date", 19850512), "birth_date"),
    ("birth-date-basic-format", with_field("birth_date", "19850512"), "birth_date"),
    ("birth-date-week-format", with_field("birth_date", "1985-W19-7"), "birth_date"),
    ("birth-date-datetime", with_field("birth_date", "1985-05-12T00:00:00Z"), "birth_date"),
    ("birth-date-future", with_field("birth_date", years_ago(-1)), "birth_date"),
    (
        "birth-date-tomorrow",
        with_field("birth_date", (date.today() + timedelta(days=1)).isoformat()),
        "birth_date",
    ),
    ("age-17", with_field("birth_date", years_ago(17)), "birth_date"),
    ("age-68", with_field("birth_date", years_ago(68)), "birth_date"),
    ("age-130", with_field("birth_date", "1890-01-01"), "birth_date"),
    ("country-unknown", with_field("country", "XX"), "country"),
    ("country-alpha-3", with_field("country", "FRA"), "country"),
    ("country-name", with_field("country", "France"), "country"),
    ("country-number", with_field("country", 250), "country"),
    ("country-empty", with_field("country", ""), "country"),
    ("employment-unknown", with_field("employment_status", "retired"), "employment_status"),
    ("employment-case", with_field("employment_status", "EMPLOYED"), "employment_status"),
    ("employment-empty", with_field("employment_status", ""), "employment_status"),
    ("employment-number", with_field("employment_status", 1), "employment_status"),
    ("need-flags-string", with_field("need_flags", "disability"), "need_flags"),
    ("need-flags-bad-flag", with_field("need_flags", ["Has Space"]), "need_flags"),
    ("need-flags-empty-flag", with_field("need_flags", [""]), "need_flags"),
    ("need-flags-number", with_field("need_flags", [1]), "need_flags"),
    (
        "need-flags-huge-list",
        with_field("need_flags", [f"flag_{i}" for i in range(10_000)]),
        "need_flags",
    ),
    ("need-flags-huge-flag", with_field("need_flags", [HUGE]), "need_flags"),
    ("region-empty", with_field("region", ""), "region"),
    ("region-blank", with_field("region", "   "), "region"),
    ("region-nul", with_field("region", "Bre\x00tagne"), "region"),
    ("region-escape-sequence", with_field("region", "\x1b[31mBretagne"), "region"),
    ("given-name-control", with_field("personal.given_name", "Cam\x07ille"), "personal.given_name"),
    ("address-nul", with_field("personal.address", "1 rue\x00"), "personal.address"),
    ("personal-string", with_field("personal", "Camille Martin"), "personal"),
    ("personal-null", with_field("personal", None), "personal"),
    ("given-name-empty", with_field("personal.given_name", ""), "personal.given_name"),
    ("email-invalid", with_field("personal.email", "not-an-email"), "personal.email"),
    ("phone-invalid", with_field("personal.phone", "call me"), "personal.phone"),
    *[
        (f"huge-{f}", with_field(f, HUGE), f)
        for f in (
            "national_id",
            "region",
            "country",
            "employment_status",
            "birth_date",
            "personal.given_name",
            "personal.family_name",
            "personal.email",
            "personal.phone",
            "personal.address",
        )
    ],
    ("extra-field", {**account_body(), "salary": 1200}, "salary"),
    ("extra-field-status", {**account_body(), "status": "closed"}, "status"),
    ("extra-personal-field", with_field("personal.ssn", "123"), "personal.ssn"),
    ("extra-agency", {**account_body(), "agency_id": "pes-be"}, "agency_id"),
]


async def assert_nothing_stored(accounts: Accounts) -> None:
    for table in ("accounts", "personal_keys", "outbox", "idempotency"):
        assert await accounts.count(table) == 0, f"accounts.{table} is not empty"


@pytest.mark.parametrize(
    ("body", "field"), [(b, f) for _, b, f in JSON_CASES], ids=[c for c, _, _ in JSON_CASES]
)
async def test_open_account_refuses_bad_json(
    module_accounts: Accounts, body: dict[str, Any], field: str
) -> None:
    accounts = module_accounts
    headers = {**accounts.agency, "Idempotency-Key": f"bad-{uuid.uuid4()}"}
    r = await accounts.client.post("/v1/accounts", json=body, headers=headers)
    problem = assert_problem(r, 422)
    fields = error_fields(problem)
    assert any(f == field or f.startswith(field + ".") for f in fields), (field, problem)
    assert field.split(".")[0] in problem["detail"] or "birth_date" in fields, problem
    # the answer does not echo huge or personal input back
    assert HUGE not in r.text
    assert len(r.content) < 20_000, len(r.content)
    await assert_nothing_stored(accounts)


RAW_CASES: list[tuple[str, bytes, str]] = [
    ("not-json", b'{"national_id": "FR1234", ', "application/json"),
    ("empty-body", b"", "application/json"),
    ("json-null", b"null", "application/json"),
    ("json-array", b"[]", "application/json"),
    ("json-string", b'"open please"', "application/json"),
    ("json-number", b"42", "application/json"),
    ("not-utf8", b'{"national_id": "\xff\xfe"}', "application/json"),
    ("lone-surrogate", json.dumps(account_body(region="\ud800")).encode(), "application/json"),
    ("form-encoded", b"national_id=FR1234&country=FR", "application/x-www-form-urlencoded"),
    ("csv", b"national_id,country\nFR1234,FR\n", "text/csv"),
    (
        "duplicate-keys-bad-last",
        json.dumps(account_body())[:-1].encode() + b', "country": "XX"}',
        "application/json",
    ),
]


@pytest.mark.parametrize(
    ("raw", "content_type"), [(b, t) for _, b, t in RAW_CASES], ids=[c for c, _, _ in RAW_CASES]
)
async def test_open_account_refuses_bad_bodies(
    module_accounts: Accounts, raw: bytes, content_type: str
) -> None:
    accounts = module_accounts
    headers = {**accounts.agency, "Content-Type": content_type}
    r = await accounts.client.post("/v1/accounts", content=raw, headers=headers)
    problem = assert_problem(r)
    assert r.status_code in {400, 415, 422}, r.text
    if r.status_code == 422:
        assert problem["errors"], problem
    await assert_nothing_stored(accounts)


async def test_working_age_bounds_are_inclusive(accounts: Accounts) -> None:
    for years in (18, 67):
        r = await accounts.client.post(
            "/v1/accounts",
            json=account_body(birth_date=years_ago(years)),
            headers=accounts.agency,
        )
        assert r.status_code == 201, (years, r.text)
    assert await accounts.count("accounts") == 2


async def test_a_failed_request_does_not_use_up_its_idempotency_key(accounts: Accounts) -> None:
    headers = {**accounts.agency, "Idempotency-Key": "retry-after-fixing"}
    body = account_body()
    bad = await accounts.client.post(
        "/v1/accounts", json={**body, "qualification_level": 12}, headers=headers
    )
    assert_problem(bad, 422)
    outside = await accounts.client.post(
        "/v1/accounts", json={**body, "birth_date": years_ago(10)}, headers=headers
    )
    assert_problem(outside, 422)
    await assert_nothing_stored(accounts)
    good = await accounts.client.post("/v1/accounts", json=body, headers=headers)
    assert good.status_code == 201, good.text


async def test_bad_idempotency_key(accounts: Accounts) -> None:
    headers = {**accounts.agency, "Idempotency-Key": "k" * 300}
    r = await accounts.client.post("/v1/accounts", json=account_body(), headers=headers)
    assert_problem(r, 400)
    await assert_nothing_stored(accounts)


# --- the other writes -------------------------------------------------------------------


async def snapshot(accounts: Accounts, account_id: str) -> tuple[Any, ...]:
    r = await accounts.client.get(f"/v1/accounts/{account_id}", headers=accounts.agency)
    assert r.status_code == 200, r.text
    return (r.json(), await accounts.count("outbox"), await accounts.count("accounts"))


PROFILE_CASES: list[tuple[str, Any, str | None]] = [
    ("level-9", {"qualification_level": 9}, "qualification_level"),
    ("level-negative", {"qualification_level": -1}, "qualification_level"),
    ("level-string", {"qualification_level": "3"}, "qualification_level"),
    ("level-float", {"qualification_level": 3.5}, "qualification_level"),
    ("employment-unknown", {"employment_status": "retired"}, "employment_status"),
    ("flags-string", {"need_flags": "disability"}, "need_flags"),
    ("flags-bad-flag", {"need_flags": ["Not A Flag"]}, "need_flags"),
    ("flags-huge-list", {"need_flags": [f"f{i}" for i in range(10_000)]}, "need_flags"),
    ("national-id", {"national_id": "FR999999"}, "national_id"),
    ("status", {"status": "closed"}, "status"),
    ("agency", {"agency_id": "pes-be"}, "agency_id"),
    ("personal", {"personal": {"given_name": "Eve"}}, "personal"),
    (
        "good-and-bad",
        {"qualification_level": 5, "employment_status": "astronaut"},
        "employment_status",
    ),
    ("array", [], None),
    ("string", "level 5", None),
]


@pytest.mark.parametrize(
    ("body", "field"), [(b, f) for _, b, f in PROFILE_CASES], ids=[c for c, _, _ in PROFILE_CASES]
)
async def test_profile_update_refuses_bad_input(
    accounts: Accounts, body: Any, field: str | None
) -> None:
    account_id = await accounts.open()
    before = await snapshot(accounts, account_id)
    r = await accounts.client.patch(
        f"/v1/accounts/{account_id}/profile", json=body, headers=accounts.agency
    )
    problem = assert_problem(r, 422)
    fields = error_fields(problem)
    if field is not None:
        assert any(f == field or f.startswith(field + ".") for f in fields), problem
    assert await snapshot(accounts, account_id) == before


async def test_profile_update_refuses_unparseable_body(accounts: Accounts) -> None:
    account_id = await accounts.open()
    before = await snapshot(accounts, account_id)
    for raw in (b"{not json", b""):
        r = await accounts.client.patch(
            f"/v1/accounts/{account_id}/profile",
            content=raw,
            headers={**accounts.agency, "Content-Type": "application/json"},
        )
        assert_problem(r, 422)
    assert await snapshot(accounts, account_id) == before


# the reason is a code (events carry it); free text only as an optional note kept here
LIFECYCLE_CASES: list[tuple[str, Any]] = [
    ("missing-reason-code", {}),
    ("null-reason-code", {"reason_code": None}),
    ("empty-reason-code", {"reason_code": ""}),
    ("free-text-reason-code", {"reason_code": "documents missing"}),
    ("number-reason-code", {"reason_code": 42}),
    ("free-text-reason", {"reason": "fraud"}),
    ("blank-note", {"reason_code": "other", "note": "   "}),
    ("huge-note", {"reason_code": "other", "note": HUGE}),
    ("nul-note", {"reason_code": "other", "note": "fraud\x00"}),
    ("extra-field", {"reason_code": "other", "until": "2030-01-01"}),
    ("no-body", None),
]


@pytest.mark.parametrize("action", ["suspend", "reinstate", "close"])
@pytest.mark.parametrize(
    "body", [b for _, b in LIFECYCLE_CASES], ids=[c for c, _ in LIFECYCLE_CASES]
)
async def test_lifecycle_refuses_bad_input(accounts: Accounts, action: str, body: Any) -> None:
    account_id = await accounts.open()
    if action == "reinstate":
        r = await accounts.client.post(
            f"/v1/accounts/{account_id}/suspend",
            json={"reason_code": "eligibility_review"},
            headers=accounts.agency,
        )
        assert r.status_code == 200, r.text
    before = await snapshot(accounts, account_id)
    url = f"/v1/accounts/{account_id}/{action}"
    if body is None:
        r = await accounts.client.post(url, headers=accounts.agency)
    else:
        r = await accounts.client.post(url, json=body, headers=accounts.agency)
    problem = assert_problem(r, 422)
    if body is not None and "until" not in body:
        assert error_fields(problem) & {"reason_code", "reason", "note"}, problem
    assert HUGE not in r.text
    assert await snapshot(accounts, account_id) == before


TRANSFER_CASES: list[tuple[str, Any, str]] = [
    ("missing-agency", {"reason": "moved"}, "to_agency_id"),
    ("empty-agency", {"to_agency_id": ""}, "to_agency_id"),
    ("agency-with-spaces", {"to_agency_id": "pes be"}, "to_agency_id"),
    ("agency-number", {"to_agency_id": 7}, "to_agency_id"),
    ("huge-agency", {"to_agency_id": HUGE}, "to_agency_id"),
    ("huge-reason", {"to_agency_id": "pes-be", "reason": HUGE}, "reason"),
    ("nul-reason", {"to_agency_id": "pes-be", "reason": "moved\x00"}, "reason"),
    ("extra-field", {"to_agency_id": "pes-be", "national_id": "X1234"}, "national_id"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [(b, f) for _, b, f in TRANSFER_CASES],
    ids=[c for c, _, _ in TRANSFER_CASES],
)
async def test_transfer_refuses_bad_input(accounts: Accounts, body: Any, field: str) -> None:
    account_id = await accounts.open()
    before = await snapshot(accounts, account_id)
    r = await accounts.client.post(
        f"/v1/accounts/{account_id}/transfer", json=body, headers=accounts.agency
    )
    problem = assert_problem(r, 422)
    assert field in error_fields(problem), problem
    assert await snapshot(accounts, account_id) == before


async def test_transfer_to_its_own_agency_is_a_conflict(accounts: Accounts) -> None:
    account_id = await accounts.open()
    before = await snapshot(accounts, account_id)
    r = await accounts.client.post(
        f"/v1/accounts/{account_id}/transfer",
        json={"to_agency_id": "pes-fr"},
        headers=accounts.agency,
    )
    assert_problem(r, 409)
    assert await snapshot(accounts, account_id) == before


WRITES = [
    ("PATCH", "profile", {"qualification_level": 4}),
    ("POST", "suspend", {"reason_code": "other"}),
    ("POST", "reinstate", {"reason_code": "other"}),
    ("POST", "close", {"reason_code": "other"}),
    ("POST", "transfer", {"to_agency_id": "pes-be"}),
    ("DELETE", "personal-data", None),
]


@pytest.mark.parametrize(
    "bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%00", "x" * 2000]
)
async def test_malformed_account_id_in_path(accounts: Accounts, bad_id: str) -> None:
    r = await accounts.client.get(f"/v1/accounts/{bad_id}", headers=accounts.agency)
    assert "account_id" in error_fields(assert_problem(r, 422))
    for method, action, body in WRITES:
        r = await accounts.client.request(
            method, f"/v1/accounts/{bad_id}/{action}", json=body, headers=accounts.agency
        )
        problem = assert_problem(r, 422)
        assert "account_id" in error_fields(problem), (method, action, problem)
    assert await accounts.count("outbox") == 0


async def test_unknown_account_id_is_404(accounts: Accounts) -> None:
    unknown = uuid.uuid4()
    for headers in (accounts.agency, accounts.auditor):
        r = await accounts.client.get(f"/v1/accounts/{unknown}", headers=headers)
        assert_problem(r, 404)
    for method, action, body in WRITES:
        r = await accounts.client.request(
            method, f"/v1/accounts/{unknown}/{action}", json=body, headers=accounts.agency
        )
        assert_problem(r, 404)
    assert await accounts.count("outbox") == 0


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=501", "limit=ten", "after=not-a-uuid", "limit=-1"]
)
async def test_list_refuses_bad_query(accounts: Accounts, query: str) -> None:
    r = await accounts.client.get(f"/v1/accounts?{query}", headers=accounts.agency)
    problem = assert_problem(r, 422)
    assert error_fields(problem) & {"limit", "after"}, problem


async def test_a_json_syntax_error_names_the_body(module_accounts: Accounts) -> None:
    r = await module_accounts.client.post(
        "/v1/accounts",
        content=b'{"national_id": ',
        headers={**module_accounts.agency, "Content-Type": "application/json"},
    )
    assert error_fields(assert_problem(r, 422)) == {"body"}
