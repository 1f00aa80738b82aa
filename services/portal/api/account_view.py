"""What the learner's pages show, read from the services' public APIs with the learner's
own token: the ledger's balance and entries, payments' enrolments and claims, the
catalogue's credentials and course descriptions. Nothing here reads another service's
tables; each service decides what the learner may see.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from services.portal.client import ApiError, ServiceApi

# the proposals a learner answers: a first proposal, or an offer of what the account has
AWAITING = ("awaiting_learner_confirmation", "awaiting_co_payment")
# statuses that no longer concern the learner's consent, shown in the enrolments list
ENDED = ("refused", "expired", "rejected", "cancelled")


@dataclass(frozen=True)
class Course:
    """A course as the learner recognises it: its title and its provider's name."""

    title: str
    provider: str


@dataclass
class Overview:
    balance: dict[str, Any]
    proposals: list[dict[str, Any]]
    enrolments: list[dict[str, Any]]
    claims: dict[str, list[dict[str, Any]]]  # by enrolment id
    credentials: list[dict[str, Any]]
    courses: dict[str, Course] = field(default_factory=dict)


async def course(api: ServiceApi, course_id: str, provider_id: str) -> Course:
    """The listed course (title and provider name); a course no longer listed keeps its
    title from the catalogue, and its provider is named by id."""
    try:
        listed = await api.get(f"/v1/public/courses/{course_id}")
        return Course(str(listed["content"]["title"]), str(listed["provider_name"]))
    except ApiError:
        pass
    try:
        known = await api.get(f"/v1/courses/{course_id}")
        return Course(str(known["content"]["title"]), provider_id)
    except ApiError:
        return Course(course_id, provider_id)


async def courses_of(api: ServiceApi, refs: set[tuple[str, str]]) -> dict[str, Course]:
    ordered = sorted(refs)
    found = await asyncio.gather(*(course(api, c, p) for c, p in ordered))
    return {c: value for (c, _), value in zip(ordered, found, strict=True)}


async def all_pages(api: ServiceApi, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = {**params, "limit": 500, **({"after": after} if after else {})}
        page = await api.get(path, params=query)
        items.extend(page["items"])
        after = page.get("next")
        if not after:
            return items


async def overview(api: ServiceApi, account_id: uuid.UUID) -> Overview:
    balance, enrolments, claims, credentials = await asyncio.gather(
        api.get(f"/v1/ledger/accounts/{account_id}/balance"),
        all_pages(api, "/v1/enrolments"),
        all_pages(api, "/v1/claims"),
        api.get("/v1/credentials"),
    )
    by_enrolment: dict[str, list[dict[str, Any]]] = {}
    for claim in claims:
        by_enrolment.setdefault(str(claim["enrolment_id"]), []).append(claim)
    refs = {(str(e["course_id"]), str(e["provider_id"])) for e in enrolments}
    refs |= {(str(c["course_id"]), str(c["provider_id"])) for c in credentials}
    balance["lots"] = sorted(
        balance["lots"], key=lambda lot: (lot["expires_at"] is None, lot["expires_at"] or "")
    )
    return Overview(
        balance=balance,
        proposals=[e for e in enrolments if e["status"] in AWAITING],
        enrolments=[e for e in enrolments if e["status"] not in AWAITING],
        claims=by_enrolment,
        credentials=credentials,
        courses=await courses_of(api, refs),
    )


async def enrolment(api: ServiceApi, enrolment_id: uuid.UUID) -> Overview:
    """One enrolment with its claims (404 from the API when it is not the learner's)."""
    found = await api.get(f"/v1/enrolments/{enrolment_id}")
    claims, balance = await asyncio.gather(
        all_pages(api, "/v1/claims", enrolment_id=str(enrolment_id)),
        api.get(f"/v1/ledger/accounts/{found['account_id']}/balance"),
    )
    refs = {(str(found["course_id"]), str(found["provider_id"]))}
    return Overview(
        balance=balance,
        proposals=[found] if found["status"] in AWAITING else [],
        enrolments=[] if found["status"] in AWAITING else [found],
        claims={str(enrolment_id): claims},
        credentials=[],
        courses=await courses_of(api, refs),
    )


async def history(api: ServiceApi, account_id: uuid.UUID) -> list[dict[str, Any]]:
    """The account's ledger entries, newest first, each with what it moved."""
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await api.get(
            f"/v1/ledger/accounts/{account_id}/entries", params={"after": after, "limit": 1000}
        )
        entries.extend(page["items"])
        if not page.get("next"):
            break
        after = int(page["next"])
    rows = []
    for entry in reversed(entries):
        name = str(entry["type"]).split(".")[2] if entry["type"].count(".") >= 3 else entry["type"]
        data = entry["data"]
        rows.append(
            {
                "name": name,
                "at": data.get("occurred_at") or entry["recorded_at"],
                "amount": data.get("amount"),
                "funder": data.get("funder_id"),
                "expires_at": data.get("expires_at"),
                "enrolment_id": data.get("enrolment_id"),
                "sign": SIGNS.get(name, 0),
            }
        )
    return rows


# how an entry moves the available credit: +1 adds, -1 takes, 0 neither (a capture spends
# what a reservation had already set aside)
SIGNS = {
    "CreditsGranted": 1,
    "CreditsReserved": -1,
    "ReservationReleased": 1,
    "LotExpired": -1,
}
