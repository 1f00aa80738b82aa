"""``ila accounts feed FILE``: the population register's feed (JSON Lines,
docs/register-feed.md) applied straight to the accounts database, a chunk per transaction,
with a progress bar, a checkpoint to ``--resume`` from after a crash, and a CSV report of
every record's outcome.

The events of the opened and closed accounts go to the accounts outbox in the same
transactions; the running accounts service's relay publishes them.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from ila.tooling import service_engine
from services.accounts.deps import AccountsComponents
from services.accounts.handlers import register as feed
from services.accounts.handlers.register_file import count_lines, fingerprint, run_file
from services.accounts.handlers.register_report import summary, write_report
from services.accounts.store import register as store
from services.accounts.store.register import FeedRun
from shared.bus import set_topic_prefix
from shared.db import make_sessionmaker, unit_of_work
from shared.errors import DomainError
from shared.outbox import EventContext, Outbox
from shared.settings import get_settings


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date as YYYY-MM-DD") from None


def feed_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, metavar="FILE", help="JSON Lines file"
        ),
    ],
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="continue the last unfinished run of this file from its checkpoint"
        ),
    ] = False,
    feed_id: Annotated[
        uuid.UUID | None,
        typer.Option("--feed-id", help="the run's id (an existing one continues)"),
    ] = None,
    feed_date: Annotated[
        str | None,
        typer.Option("--date", help="the date ages are reckoned on, YYYY-MM-DD (today)"),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="the CSV report of every record (default FILE.report.csv)"),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="records per transaction")
    ] = 1000,
) -> None:
    """Open an account for everyone of working age in the register FILE who has none, and
    close the accounts of people who died or are past working age. Safe to run again: a
    person with an account changes nothing. After a crash, --resume continues the run."""
    settings = get_settings()
    set_topic_prefix(settings.kafka_topic_prefix)
    components = AccountsComponents.build(
        settings, Outbox("accounts", actor_pepper=settings.actor_pepper)
    )
    accounts = components.accounts
    rules = feed.FeedRules.from_settings(settings)
    on = _date(feed_date)
    if on is not None and on > accounts.clock.now().date():
        raise typer.BadParameter("the feed's date lies in the future", param_hint="--date")
    total = count_lines(file)
    report_path = report or file.with_name(file.name + ".report.csv")
    events = EventContext.new(actor="cli:accounts-feed")

    async def go() -> FeedRun:
        async with service_engine("accounts", settings) as engine:
            uow = unit_of_work(make_sessionmaker(engine))
            digest = fingerprint(file)
            run_id = feed_id
            if resume and run_id is None:
                async with uow() as session:
                    found = await store.unfinished(session, digest)
                if found is None:
                    typer.echo(f"no unfinished run of {file}: starting a new one")
                else:
                    run_id = found.feed_id
            run = await feed.start(uow, accounts, run_id or uuid.uuid4(), str(file), on, digest)
            if run.checkpoint:
                typer.echo(f"resuming run {run.feed_id} after line {run.checkpoint}")
            else:
                typer.echo(f"run {run.feed_id} (feed of {run.feed_date})")
            with typer.progressbar(length=total, label="applying") as bar:
                shown = run.checkpoint
                bar.update(shown)

                def progress(line: int) -> None:
                    nonlocal shown
                    bar.update(line - shown)
                    shown = line

                run = await run_file(
                    accounts,
                    uow,
                    rules,
                    file,
                    run,
                    events,
                    chunk_size=chunk_size,
                    progress=progress,
                )
            async with uow() as session:
                with report_path.open("w", encoding="utf-8", newline="") as out:
                    await write_report(store.stream_outcomes(session, run.feed_id), out)
            return run

    started = datetime.now()
    try:
        run = asyncio.run(go())
    except DomainError as exc:  # another date for a run that has one, a finished run
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from None
    seconds = (datetime.now() - started).total_seconds()
    typer.echo(f"{summary(run)} ({seconds:.1f}s)")
    typer.echo(f"report of every record written to {report_path}")
