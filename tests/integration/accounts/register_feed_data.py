"""A generated population register feed with the outcome each record must have: people of
working age without an account, people who have one, people past working age or dead (with
and without an account), children, people named twice, and invalid records of every kind.

The accounts of those who "already have one" are opened beforehand by :func:`open_earlier`,
five years before the feed's date (so that the people now past working age were of working
age then), through the same handler as any opening.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from services.accounts.commands import FeedRecord
from services.accounts.deps import AccountsComponents
from services.accounts.handlers.accounts import open_many, prepare
from shared.db import UnitOfWork
from shared.outbox import EventContext

AGENCIES = {"FR": "pes-fr"}  # the feed's table: a French record without agency_id goes here
NOT_JSON = "NOT-JSON"  # a line of the file that is no JSON (a batch item that is no object)

# kind -> (share of the records in per mille, expected outcome, a word the reason must hold)
KINDS: dict[str, tuple[int, str, str | None]] = {
    "new": (800, "opened", None),
    "new-by-table": (30, "opened", None),
    "has-account": (40, "existing", None),
    "retired-with-account": (20, "closed", "end_of_eligibility"),
    "dead-with-account": (20, "closed", "deceased"),
    "retired": (30, "skipped", "working age"),
    "dead": (10, "skipped", "deceased"),
    "child": (10, "skipped", "working age"),
    "twice": (10, "existing", None),
    "bad-date": (2, "rejected", "birth_date"),
    "unknown-country": (2, "rejected", "country"),
    "missing-name": (2, "rejected", "given_name"),
    "not-json": (2, "rejected", "JSON"),
    "death-before-birth": (2, "rejected", "death_date"),
    "future-death": (2, "rejected", "death_date"),
    "unknown-field": (2, "rejected", "birthdate"),
    "no-agency": (2, "rejected", "agency_id"),
    "bad-email": (2, "rejected", "email"),
    "level-12": (2, "rejected", "qualification_level"),
    "control-character": (2, "rejected", "region"),
    "missing-national-id": (2, "rejected", "national_id"),
}
BLANK_EVERY = 997  # a blank line now and then: a line with no record


@dataclass
class Feed:
    on: date
    lines: list[Any] = field(default_factory=list)  # a record, NOT_JSON, or None (blank)
    expected: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # line -> outcome
    earlier: list[dict[str, Any]] = field(default_factory=list)  # accounts opened before

    def count(self, outcome: str) -> int:
        return sum(1 for o, _ in self.expected.values() if o == outcome)

    def write(self, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as f:
            for line in self.lines:
                if line is None:
                    f.write("\n")
                elif line == NOT_JSON:
                    f.write('{"record_id": "R-broken", "national_id": \n')
                else:
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
        return path

    def records(self) -> list[Any]:
        """The records of the feed as a batch's items (blank lines dropped)."""
        return [("not an object" if r == NOT_JSON else r) for r in self.lines if r is not None]

    def expected_by_record(self) -> list[tuple[str, str | None]]:
        """The expected outcomes in record order (as a batch's positions count them)."""
        return [self.expected[n] for n in sorted(self.expected)]


def born(on: date, age: int, rng: random.Random) -> date:
    """A birth date giving ``age`` on ``on`` (never on the birthday itself)."""
    return on - timedelta(days=365 * age + 30 + rng.randrange(300))


def generate(n: int, on: date, seed: int = 13) -> Feed:
    rng = random.Random(seed)
    kinds = [k for k, (share, _, _) in KINDS.items() for _ in range(share)]
    feed = Feed(on=on)
    twins: list[dict[str, Any]] = []
    i = 0
    while i < n:
        if (len(feed.lines) + 1) % BLANK_EVERY == 0:
            feed.lines.append(None)
            continue
        kind = rng.choice(kinds) if twins or i else "new"
        if kind == "twice" and not twins:
            kind = "new"
        record = person(rng, on, i, kind)
        if kind == "twice":
            record = dict(rng.choice(twins[-50:] if rng.random() < 0.5 else twins))
            record["record_id"] = f"R{i:07d}"
        elif kind in ("new", "new-by-table"):
            twins.append(record)
        if kind in ("has-account", "retired-with-account", "dead-with-account"):
            feed.earlier.append(record)
        feed.lines.append(NOT_JSON if kind == "not-json" else record)
        _, outcome, word = KINDS[kind]
        feed.expected[len(feed.lines)] = (outcome, word)
        i += 1
    return feed


def person(rng: random.Random, on: date, i: int, kind: str) -> dict[str, Any]:
    r: dict[str, Any] = {
        "record_id": f"R{i:07d}",
        "national_id": f"FR-{i:09d}",
        "birth_date": born(on, rng.randrange(25, 60), rng).isoformat(),
        "country": "FR",
        "region": rng.choice(["Bretagne", "Normandie", "Île-de-France", "Occitanie"]),
        "agency_id": rng.choice(["pes-fr", "pes-fr-bzh"]),
        "given_name": f"Given{i}",
        "family_name": f"Family, {i}",
    }
    if i % 3 == 0:
        r["email"] = f"person{i}@example.org"
    if i % 4 == 0:
        r["qualification_level"] = rng.randrange(9)
        r["employment_status"] = rng.choice(["employed", "unemployed", "inactive"])
    if kind == "new-by-table":
        del r["agency_id"]
    elif kind in ("retired", "retired-with-account"):
        r["birth_date"] = born(on, rng.randrange(69, 71), rng).isoformat()
    elif kind in ("dead", "dead-with-account"):
        r["death_date"] = (on - timedelta(days=rng.randrange(1, 400))).isoformat()
    elif kind == "child":
        r["birth_date"] = born(on, rng.randrange(3, 17), rng).isoformat()
    elif kind == "bad-date":
        r["birth_date"] = "12/05/1985"
    elif kind == "unknown-country":
        r["country"] = "XX"
    elif kind == "missing-name":
        del r["given_name"]
    elif kind == "death-before-birth":
        r["death_date"] = "1900-01-01"
    elif kind == "future-death":
        r["death_date"] = (on + timedelta(days=3)).isoformat()
    elif kind == "unknown-field":
        r["birthdate"] = r["birth_date"]
    elif kind == "no-agency":
        del r["agency_id"]
        r["country"] = "BE"
    elif kind == "bad-email":
        r["email"] = "not-an-email"
    elif kind == "level-12":
        r["qualification_level"] = 12
    elif kind == "control-character":
        r["region"] = "Bre\x00tagne"
    elif kind == "missing-national-id":
        del r["national_id"]
    return r


async def open_earlier(
    components: AccountsComponents, uow: UnitOfWork, feed: Feed, chunk: int = 1000
) -> None:
    """Open the accounts of the people who have one, five years before the feed's date (some
    are past working age now), and close none of them."""
    then = datetime.combine(feed.on - timedelta(days=5 * 365), datetime.min.time())
    then = then.replace(tzinfo=components.clock.now().tzinfo)
    config = components.config
    for start in range(0, len(feed.earlier), chunk):
        news = []
        for raw in feed.earlier[start : start + chunk]:
            rec = FeedRecord.model_validate({k: v for k, v in raw.items() if k != "death_date"})
            cmd = rec.open_account(3, "employed")
            news.append(prepare(cmd, rec.agency_id or "pes-fr", config, then))
        async with uow() as session:
            await open_many(news, components.accounts.context(session, EventContext.new(), then))
