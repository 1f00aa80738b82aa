"""``ila accounts ...``: bulk onboarding straight into the accounts database, the
population register's feed (:mod:`services.accounts.cli_feed`), and the rotation of the
key-encryption key that wraps the personal data keys.

The events of the opened accounts go to the accounts outbox in the same transactions;
the running accounts service's relay publishes them (within its idle interval).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Annotated

import typer

from ila.tooling import service_engine
from services.accounts.cli_feed import feed_command
from services.accounts.commands import AGENCY_ID_PATTERN
from services.accounts.deps import AccountsComponents
from services.accounts.domain.errors import BadHeader
from services.accounts.handlers import imports, personal
from services.accounts.handlers.accounts import AccountsConfig
from shared.bus import set_topic_prefix
from shared.db import make_sessionmaker, transaction
from shared.outbox import EventContext, Outbox
from shared.settings import get_settings

accounts_app = typer.Typer(
    help="Accounts operations: bulk onboarding, the register feed, key rotation",
    no_args_is_help=True,
)
COMMANDS = {"accounts": accounts_app}
SHOWN_REJECTIONS = 20


def _agency_id(value: str) -> str:
    if not re.fullmatch(AGENCY_ID_PATTERN, value):
        raise typer.BadParameter("letters, digits, '.', '_' and '-' only (1 to 64)")
    return value


@accounts_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, metavar="FILE", help="the CSV file"
        ),
    ],
    agency_id: Annotated[
        str,
        typer.Option(
            "--agency-id", callback=_agency_id, help="the agency that will manage the accounts"
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option("--report", help="write the rejected lines (number, reason) here as JSON"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="lines per transaction")] = 500,
) -> None:
    """Open an account per line of FILE (header: national_id, birth_date, country, region,
    qualification_level, employment_status, need_flags (';'-separated), given_name,
    family_name, email, phone). Idempotent on the national id: run it again safely."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        typer.echo(f"{file} is not UTF-8 text", err=True)
        raise typer.Exit(1) from None
    try:
        total = sum(1 for _ in imports.parse(text).lines)
    except BadHeader as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(1) from None

    settings = get_settings()
    set_topic_prefix(settings.kafka_topic_prefix)
    components = AccountsComponents.build(
        settings, Outbox("accounts", actor_pepper=settings.actor_pepper)
    )
    ctx = EventContext.new(actor=f"cli:accounts-import:{agency_id}")

    with typer.progressbar(length=total, label="importing") as bar:
        shown = 0

        def progress(done: int, _total: int) -> None:
            nonlocal shown
            bar.update(done - shown)
            shown = done

        async def go() -> imports.ImportReport:
            async with service_engine("accounts", settings) as engine:
                sessions = make_sessionmaker(engine)
                return await imports.run_import(
                    components.accounts,
                    lambda: transaction(sessions),
                    text,
                    agency_id,
                    ctx,
                    batch_size=batch_size,
                    progress=progress,
                )

        result = asyncio.run(go())

    typer.echo(
        f"{result.total} lines: opened {result.opened}, existing {result.existing}, "
        f"rejected {len(result.rejected)}"
    )
    if result.ignored_columns:
        typer.echo("ignored columns: " + ", ".join(result.ignored_columns))
    if report is not None:
        report.write_text(json.dumps(result.rejected, indent=2, ensure_ascii=False) + "\n")
        typer.echo(f"rejected lines written to {report}")
    else:
        for r in result.rejected[:SHOWN_REJECTIONS]:
            typer.echo(f"  line {r['line']}: {r['error']}")
        if len(result.rejected) > SHOWN_REJECTIONS:
            typer.echo(f"  ... and {len(result.rejected) - SHOWN_REJECTIONS} more (see --report)")


@accounts_app.command("rotate-kek")
def rotate_kek_command(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="keys per transaction")] = 500,
) -> None:
    """Re-wrap every personal data key under the current key-encryption key (the first of
    ILA_ACCOUNTS_KEK). Put the new key first and keep the old one listed until this has
    run; then the old one may be removed. Safe to run again, and while the service runs."""
    settings = get_settings()
    keyring = AccountsConfig.from_settings(settings).keyring

    async def go() -> int:
        total = 0
        async with service_engine("accounts", settings) as engine:
            sessions = make_sessionmaker(engine)
            while True:
                async with transaction(sessions) as session:
                    done = await personal.rotate(session, keyring, batch_size)
                total += done
                if done < batch_size:
                    return total

    total = asyncio.run(go())
    typer.echo(f"re-wrapped {total} data key(s) under key-encryption key {keyring.current!r}")


accounts_app.command("feed")(feed_command)
