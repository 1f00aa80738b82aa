"""The population register's feed: a run opens an account for every person of working age
who has none, closes the accounts of people who died or are past working age, and reports
what each record did (docs/register-feed.md).

A run is applied a chunk of records at a time, each chunk in one transaction that also
stores the outcome of its records and moves the run's checkpoint past them: after a crash,
the run resumes after the last chunk committed, and a chunk sent again (the same positions)
answers what it did the first time without doing it again. Opening is idempotent on the
keyed hash of the national id, so a second run of the same feed opens nothing.

Accounts open in a few statements per chunk (:func:`~.accounts.open_many`: one multi-row
insert, the data keys and the ``AccountOpened`` events batched); closures go one account at
a time through the lifecycle handler an agency's close uses (:func:`~.accounts.change_status`),
with reason code ``deceased`` or ``end_of_eligibility``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from services.accounts.commands import FeedRecord, LifecycleChange
from services.accounts.domain.errors import AccountError
from services.accounts.domain.identity import national_id_hash
from services.accounts.domain.register import AccountStatus, Outcome, decide
from services.accounts.handlers.accounts import (
    Accounts,
    Context,
    NewAccount,
    change_status,
    insert_new,
    open_many,
    prepare,
)
from services.accounts.store import accounts as accounts_store
from services.accounts.store import register as store
from services.accounts.store.register import FeedRun, RecordOutcome
from shared.db import UnitOfWork, is_transient
from shared.errors import ConflictError, NotFoundError
from shared.events.accounts import EmploymentStatus, StatusReasonCode
from shared.outbox import EventContext
from shared.settings import Settings

MAX_REASON = 300
REFUSED = "the database refused a value of this record"


@dataclass(frozen=True)
class Unreadable:
    """A line that holds no JSON value: the record is rejected with ``reason``."""

    reason: str


Raw = Any
"""A record as read: the JSON value of a line or of a batch item, or :class:`Unreadable`."""


@dataclass(frozen=True)
class FeedRules:
    """What a feed needs beyond the records: the agency of a new account when a record names
    none (by ``"CC:region"``, then by ``"CC"``), and the need profile the register does not
    know (the agency corrects it later)."""

    agencies: Mapping[str, str] = field(default_factory=dict)
    qualification_level: int = 0
    employment_status: EmploymentStatus = "inactive"

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedRules:
        return cls(agencies=dict(settings.register_agencies))

    def agency_for(self, record: FeedRecord) -> str | None:
        return (
            record.agency_id
            or self.agencies.get(f"{record.country}:{record.region}")
            or self.agencies.get(record.country)
        )


class FeedGap(ConflictError):
    code = "feed_gap"

    def __init__(self, checkpoint: int, after: int) -> None:
        super().__init__(
            f"the run has applied the records up to position {checkpoint}; this chunk starts "
            f"after position {after}: send the records after {checkpoint} first",
            extra={"checkpoint": checkpoint},
        )


class FeedFinished(ConflictError):
    code = "feed_finished"

    def __init__(self) -> None:
        super().__init__("the run is finished: start a new run (a new feed id) to apply more")


class FeedNotFound(NotFoundError):
    code = "feed_not_found"


def describe(exc: ValidationError) -> str:
    """What is wrong with a record, field by field (values are not repeated)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{loc}: {err['msg']}")
    return shorten("; ".join(parts))


def shorten(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def read_record(raw: Raw) -> FeedRecord | str:
    if isinstance(raw, Unreadable):
        return raw.reason
    if not isinstance(raw, dict):
        return "not a JSON object"
    try:
        return FeedRecord.model_validate(raw)
    except ValidationError as exc:
        return describe(exc)


def record_id_of(raw: Raw) -> str | None:
    """The record id of a record, even a rejected one, when it has a usable one."""
    found = raw.get("record_id") if isinstance(raw, dict) else None
    if isinstance(found, str) and 0 < len(found.strip()) <= 64 and found.isprintable():
        return found.strip()
    return None


async def start(
    uow: UnitOfWork,
    accounts: Accounts,
    feed_id: uuid.UUID,
    source: str,
    feed_date: date | None,
    fingerprint: str | None = None,
) -> FeedRun:
    """The run ``feed_id``: created on ``feed_date`` (default: today) unless it exists. An
    existing run keeps its date; naming another one is a conflict."""
    now = accounts.clock.now()
    async with uow() as session:
        run = await store.create(
            session, feed_id, source, fingerprint, feed_date or now.date(), now
        ) or await store.get(session, feed_id)
    assert run is not None
    if feed_date is not None and run.feed_date != feed_date:
        raise ConflictError(
            f"run {feed_id} applies the feed of {run.feed_date}, not of {feed_date}",
            code="feed_date_differs",
        )
    return run


@dataclass(frozen=True)
class Chunk:
    """The records of run ``feed_id`` at positions in (``after``, ``upto``], ascending."""

    feed_id: uuid.UUID
    records: Sequence[tuple[int, Raw]]
    after: int
    upto: int


async def apply_chunk(
    accounts: Accounts, uow: UnitOfWork, rules: FeedRules, chunk: Chunk, events: EventContext
) -> list[RecordOutcome]:
    """Apply the chunk's records in one transaction with the run's checkpoint; what each
    did. Records the run applied already are not applied again: their stored outcomes are
    answered. Should the database refuse a value all the same, the chunk is redone one
    savepoint per new account, so that only that record is rejected."""
    try:
        return await _apply(accounts, uow, rules, chunk, events, False)
    except DBAPIError as exc:
        if is_transient(exc):
            raise
    return await _apply(accounts, uow, rules, chunk, events, True)


async def _apply(
    accounts: Accounts,
    uow: UnitOfWork,
    rules: FeedRules,
    chunk: Chunk,
    events: EventContext,
    careful: bool,
) -> list[RecordOutcome]:
    feed_id, after, upto = chunk.feed_id, chunk.after, chunk.upto
    async with uow() as session:
        run = await store.get(session, feed_id, lock=True)
        if run is None:
            raise FeedNotFound(f"no register feed run {feed_id}")
        if run.checkpoint < after:
            raise FeedGap(run.checkpoint, after)
        done = await store.outcomes(session, feed_id, after, min(upto, run.checkpoint))
        if run.checkpoint >= upto:
            return done
        if run.finished_at is not None:
            raise FeedFinished()
        todo = [(p, raw) for p, raw in chunk.records if p > run.checkpoint]
        ctx = accounts.context(session, events)
        outcomes = await _outcomes(ctx, run.feed_date, rules, todo, careful)
        last_id = next((o.record_id for o in reversed(outcomes) if o.record_id), None)
        await store.record(session, feed_id, outcomes, upto, last_id)
        return done + outcomes


async def finish(uow: UnitOfWork, accounts: Accounts, feed_id: uuid.UUID) -> FeedRun:
    async with uow() as session:
        await store.finish(session, feed_id, accounts.clock.now())
        run = await store.get(session, feed_id)
    if run is None:
        raise FeedNotFound(f"no register feed run {feed_id}")
    return run


async def _outcomes(
    ctx: Context,
    feed_date: date,
    rules: FeedRules,
    records: Sequence[tuple[int, Raw]],
    careful: bool,
) -> list[RecordOutcome]:
    """Decide and carry out every record. A person named twice in the chunk is handled in
    a later round, after the first record of them took effect (as if in a later chunk)."""
    result: dict[int, RecordOutcome] = {}
    pending: list[tuple[int, FeedRecord, str]] = []
    for position, raw in records:
        parsed = read_record(raw)
        if isinstance(parsed, str):
            result[position] = RecordOutcome(position, record_id_of(raw), "rejected", parsed)
        else:
            nid_hash = national_id_hash(parsed.national_id, ctx.config.pepper)
            pending.append((position, parsed, nid_hash))
    while pending:
        seen: set[str] = set()
        this_round: list[tuple[int, FeedRecord, str]] = []
        later: list[tuple[int, FeedRecord, str]] = []
        for item in pending:
            (later if item[2] in seen else this_round).append(item)
            seen.add(item[2])
        for outcome in await _round(ctx, feed_date, rules, this_round, careful):
            result[outcome.position] = outcome
        pending = later
    return [result[p] for p, _ in records]


async def _round(
    ctx: Context,
    feed_date: date,
    rules: FeedRules,
    items: list[tuple[int, FeedRecord, str]],
    careful: bool,
) -> list[RecordOutcome]:
    """Records of distinct people: look their accounts up, decide, open and close."""
    found = await accounts_store.statuses_by_hash(ctx.session, [h for _, _, h in items])
    out: list[RecordOutcome] = []
    to_open: list[tuple[int, str, NewAccount]] = []
    to_close: list[tuple[uuid.UUID, int, FeedRecord, StatusReasonCode]] = []
    ages = ctx.config.working_age
    for position, rec, nid_hash in items:
        account = found.get(nid_hash)
        status: AccountStatus | None = account[1] if account else None  # type: ignore[assignment]
        decision = decide(rec, status, feed_date, ages)
        if decision.action == "report":
            out.append(RecordOutcome(position, rec.record_id, decision.outcome, decision.reason))
        elif decision.action == "close":
            assert account is not None and decision.reason_code is not None
            to_close.append((account[0], position, rec, decision.reason_code))
        else:
            new = _prepare(ctx, rules, rec)
            if isinstance(new, NewAccount):
                to_open.append((position, rec.record_id, new))
            else:
                out.append(RecordOutcome(position, rec.record_id, *new))
    out.extend(await _open(ctx, to_open, careful))
    # one lock order (by account id) for every closing transaction
    for account_id, position, rec, code in sorted(to_close, key=lambda c: c[0]):
        out.append(await _close(ctx, account_id, position, rec, code))
    return out


def _prepare(ctx: Context, rules: FeedRules, rec: FeedRecord) -> NewAccount | tuple[Outcome, str]:
    """The account to open, or the outcome of a record that opens none after all."""
    agency_id = rules.agency_for(rec)
    if agency_id is None:
        return "rejected", (
            f"agency_id: none given, and the feed's table names no agency for "
            f"{rec.country}:{rec.region} nor {rec.country}"
        )
    cmd = rec.open_account(rules.qualification_level, rules.employment_status)
    try:
        return prepare(cmd, agency_id, ctx.config, ctx.now)
    except AccountError as exc:  # past working age today, though not on the feed's date
        return "skipped", shorten(exc.detail)


async def _open(
    ctx: Context, to_open: list[tuple[int, str, NewAccount]], careful: bool
) -> list[RecordOutcome]:
    if not to_open:
        return []
    if not careful:
        opened = await open_many([n for _, _, n in to_open], ctx)
        return [
            RecordOutcome(p, rid, "opened" if opened[n.national_id_hash].created else "existing")
            for p, rid, n in to_open
        ]
    out = []
    for position, record_id, new in to_open:
        try:
            async with ctx.session.begin_nested():
                one = await insert_new(new, ctx)
        except DBAPIError as exc:
            if is_transient(exc):
                raise
            out.append(RecordOutcome(position, record_id, "rejected", REFUSED))
            continue
        out.append(RecordOutcome(position, record_id, "opened" if one.created else "existing"))
    return out


async def _close(
    ctx: Context,
    account_id: uuid.UUID,
    position: int,
    rec: FeedRecord,
    code: StatusReasonCode,
) -> RecordOutcome:
    row = await accounts_store.get(ctx.session, account_id, lock=True)
    assert row is not None
    if row.status == "closed":  # closed meanwhile, by its agency
        return RecordOutcome(position, rec.record_id, "existing", "closed")
    await change_status(
        row, "close", LifecycleChange.model_construct(reason_code=code, note=None), ctx
    )
    return RecordOutcome(position, rec.record_id, "closed", code)
