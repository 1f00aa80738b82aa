"""Support of the dashboard tests: the all-in-one app (the four services and the portal) on a
fresh database, with payments on a clock the test moves; and the figures a test computes by
itself, independently of the services' statistics: the ledger's movements summed from the
audit stream, and the participation of the accounts the test opened."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from ila.registry import everything
from services.payments.config import PaymentsConfig
from services.payments.main import definition as payments_definition
from shared.clock import Clock
from tests.integration.support.payments import World
from tests.support import running_app, settings_for

FIGURES = ("granted", "spent", "released", "expired", "reversed_granted", "reversed_spent")


@asynccontextmanager
async def serve_everything(db_url: str) -> AsyncIterator[World]:
    """``ila run``'s services and portal in one app (jobs off: the test sweeps itself)."""
    settings = settings_for(db_url)
    clock = Clock()
    definitions = [
        payments_definition(PaymentsConfig(), clock) if d.name == "payments" else d
        for d in everything()
    ]
    async with running_app(definitions, settings, run_jobs=False) as (app, client):
        yield World(app, client, settings, clock)


async def audit_stream(client: httpx.AsyncClient, auditor: dict[str, str]) -> list[dict[str, Any]]:
    """Every ledger event, page after page, as an auditor reads them."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await client.get(
            "/v1/ledger/audit/events", params={"after": after, "limit": 100}, headers=auditor
        )
        assert r.status_code == 200, r.text
        page = r.json()
        events += page["items"]
        if page["next"] is None:
            return events
        after = int(page["next"])


def ledger_sums(
    events: list[dict[str, Any]], accounts: Iterable[str] | None = None
) -> dict[tuple[int, str], dict[str, int]]:
    """By (year, funder): each figure, summed from the events (of ``accounts`` only, when
    given), each movement in the year it occurred, under the funder of the lot it touched."""
    wanted = None if accounts is None else set(accounts)
    funder_of: dict[str, str] = {}
    for e in events:
        if _kind(e) == "CreditsGranted":
            funder_of[e["data"]["lot_id"]] = e["data"]["funder_id"]
    sums: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))

    def add(e: dict[str, Any], figure: str, lot_id: str, amount: int) -> None:
        year = datetime.fromisoformat(e["data"]["occurred_at"]).year
        sums[(year, funder_of[lot_id])][figure] += amount

    for e in events:
        if wanted is not None and e["account_id"] not in wanted:
            continue
        data, kind = e["data"], _kind(e)
        if kind == "CreditsGranted":
            add(e, "granted", data["lot_id"], data["amount"])
        elif kind == "LotExpired":
            add(e, "expired", data["lot_id"], data["amount"])
        elif kind == "ReservationCaptured":
            for part in data["allocations"]:
                add(e, "spent", part["lot_id"], part["amount"])
            for part in data.get("released_allocations") or []:
                add(e, "released", part["lot_id"], part["amount"])
        elif kind == "ReservationReleased":
            for part in data["allocations"]:
                add(e, "released", part["lot_id"], part["amount"])
        elif kind == "EntryReversed":
            figure = (
                "reversed_granted"
                if data["target_event"] == "ledger.CreditsGranted"
                else "reversed_spent"
            )
            for part in data["allocations"]:
                add(e, figure, part["lot_id"], part["amount"])
    return dict(sums)


def _kind(event: dict[str, Any]) -> str:
    # ila.ledger.<Name>.v<N>
    return str(event["type"]).split(".")[2]


def money_rows(view: dict[str, Any], year: int) -> dict[tuple[int, str], dict[str, int]]:
    """The dashboard's money view (JSON records) in the shape of :func:`ledger_sums`."""
    return {
        (int(r["year"]), r["funder_id"]): {f: int(r[f]) for f in FIGURES}
        for r in view["rows"]
        if int(r["year"]) == year
    }


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@dataclass(frozen=True)
class Person:
    """An account the test opened: what the participation figures are made of."""

    account_id: str
    agency: str
    region: str
    birth_year: int
    tier: str
    trained_in: tuple[str, ...] = ()  # ISCED-F codes of the courses confirmed


def age_band(year: int, birth_year: int) -> str:
    age = year - birth_year
    for upper, label in ((24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"), (64, "55-64")):
        if age <= upper:
            return label
    return "65+"


def participation(
    people: Iterable[Person], year: int, region: str | None = None
) -> dict[tuple[str, str], tuple[int, int]]:
    """By (dimension, group): (holders, trained), as the test counts its own accounts."""
    chosen = [p for p in people if region is None or p.region == region]
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for p in chosen:
        for key in (
            ("all", "all"),
            ("region", p.region),
            ("age_band", age_band(year, p.birth_year)),
            ("need_tier", p.tier),
        ):
            counts[key][0] += 1
            counts[key][1] += 1 if p.trained_in else 0
        for field in {code[:2] for code in p.trained_in}:
            counts[("isced_field", field)][1] += 1
    for key, pair in counts.items():
        if key[0] == "isced_field":
            pair[0] = len(chosen)
    return {k: (v[0], v[1]) for k, v in counts.items()}


def new_id() -> str:
    return str(uuid.uuid4())
