"""The population register's feed over HTTP (role ``register`` only): batches of records,
each applied in one transaction with the run's checkpoint, the run's state and its report.

A client sends the records of a run in order, each batch saying after which position it
starts (``after``: 0 for the first). A batch sent again (say, after a lost reply) answers
what its records did the first time and does nothing again; a batch that would leave a gap
answers ``409 feed_gap`` with the run's ``checkpoint``, from which the client resumes.
"""

from __future__ import annotations

import io
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.accounts.commands import iso_date
from services.accounts.deps import Components, Runtime, ctx_for
from services.accounts.domain.register import Outcome
from services.accounts.handlers import register as feed
from services.accounts.handlers.register_report import write_report
from services.accounts.store import register as store
from services.accounts.store.register import FeedRun
from shared.auth import Principal, require
from shared.errors import InvalidError

router = APIRouter()
Register = Annotated[Principal, Depends(require("register"))]
MAX_BATCH = 5000
MAX_FEED_BATCH_BYTES = 8 * 1024 * 1024


class FeedBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    feed_id: uuid.UUID = Field(description="the run, chosen by the register (a UUID)")
    feed_date: date | None = Field(
        default=None,
        description="the date ages are reckoned on (default: today); fixed by the run's "
        "first batch",
    )
    after: int = Field(
        ge=0, description="the position of the record before this batch's first (0: first)"
    )
    records: list[Any] = Field(
        max_length=MAX_BATCH,
        description="register records (docs/register-feed.md); one that is not valid is "
        "reported as rejected, the others are applied",
    )
    final: bool = Field(default=False, description="the last batch: the run is finished")

    @field_validator("feed_id", mode="before")
    @classmethod
    def _uuid(cls, value: object) -> object:
        return uuid.UUID(value) if isinstance(value, str) else value

    @field_validator("feed_date", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        return iso_date(value)


class RecordOutcomePublic(BaseModel):
    position: int
    record_id: str | None
    outcome: Outcome
    reason: str | None


class FeedRunPublic(BaseModel):
    feed_id: uuid.UUID
    feed_date: date
    checkpoint: int
    last_record_id: str | None
    finished: bool
    counts: dict[str, int]


class FeedBatchReply(FeedRunPublic):
    outcomes: list[RecordOutcomePublic]


def run_public(run: FeedRun) -> FeedRunPublic:
    return FeedRunPublic(
        feed_id=run.feed_id,
        feed_date=run.feed_date,
        checkpoint=run.checkpoint,
        last_record_id=run.last_record_id,
        finished=run.finished_at is not None,
        counts=run.counts(),
    )


@router.post(
    "/register-feed",
    response_model=FeedBatchReply,
    responses={409: {"description": "a gap before this batch (feed_gap), or the run is finished"}},
)
async def post_feed_batch(
    body: FeedBatch, rt: Runtime, c: Components, principal: Register
) -> FeedBatchReply:
    """Apply a batch of register records: open an account for each person of working age
    who has none, close the accounts of the dead and of those past working age, and answer
    what each record did. Idempotent by position: a batch sent again does nothing again."""
    today = c.clock.now().date()
    if body.feed_date is not None and body.feed_date > today:
        raise InvalidError("the feed's date lies in the future", field="feed_date")
    await feed.start(rt.uow, c.accounts, body.feed_id, "api", body.feed_date)
    upto = body.after + len(body.records)
    outcomes = await feed.apply_chunk(
        c.accounts,
        rt.uow,
        feed.FeedRules.from_settings(rt.settings),
        feed.Chunk(
            body.feed_id,
            [(body.after + i + 1, raw) for i, raw in enumerate(body.records)],
            body.after,
            upto,
        ),
        ctx_for(principal),
    )
    if body.final:
        run = await feed.finish(rt.uow, c.accounts, body.feed_id)
    else:
        async with rt.sessions() as session:
            found = await store.get(session, body.feed_id)
        assert found is not None
        run = found
    return FeedBatchReply(
        **run_public(run).model_dump(),
        outcomes=[RecordOutcomePublic(**o.__dict__) for o in outcomes],
    )


async def _run(rt: Runtime, feed_id: uuid.UUID) -> FeedRun:
    async with rt.sessions() as session:
        run = await store.get(session, feed_id)
    if run is None:
        raise feed.FeedNotFound(f"no register feed run {feed_id}")
    return run


@router.get("/register-feed/{feed_id}", response_model=FeedRunPublic)
async def get_feed_run(feed_id: uuid.UUID, rt: Runtime, principal: Register) -> FeedRunPublic:
    """A run: its date, checkpoint (resume after it), counts, and whether it finished."""
    return run_public(await _run(rt, feed_id))


@router.get(
    "/register-feed/{feed_id}/report",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def get_feed_report(feed_id: uuid.UUID, rt: Runtime, principal: Register) -> Response:
    """The run's report, one CSV line per record applied: position, record_id, outcome
    (opened, existing, closed, skipped, rejected) and reason."""
    await _run(rt, feed_id)
    out = io.StringIO()
    async with rt.sessions() as session:
        await write_report(store.stream_outcomes(session, feed_id), out)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
