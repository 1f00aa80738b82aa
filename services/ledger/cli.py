"""``ila audit ...`` for auditors and ``ila ledger ...`` for operators."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from ila.tooling import service_engine
from services.ledger import audit
from services.ledger.handlers import Ledger, allocation
from services.ledger.handlers.sweeps import sweep_once
from services.ledger.store import audit as audit_reads
from services.ledger.store import runs
from shared.auth import mint_token
from shared.bus import set_topic_prefix
from shared.bus.security import KafkaSecurity
from shared.outbox import Outbox
from shared.settings import SERVICE_PORTS, get_settings

audit_app = typer.Typer(help="Auditors' tools: verify, export, replay", no_args_is_help=True)
ledger_app = typer.Typer(help="Ledger operations: allocation, expiry sweep", no_args_is_help=True)
COMMANDS = {"audit": audit_app, "ledger": ledger_app}


@audit_app.command("verify")
def verify_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the full report as JSON")] = False,
) -> None:
    """Recompute every hash chain and rebuild every wallet from the database's events."""

    async def go() -> audit.VerifyReport:
        from shared.db import make_sessionmaker

        async with service_engine("ledger") as engine, make_sessionmaker(engine)() as session:
            return await audit.verify(session)

    report = asyncio.run(go())
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(
            f"{report.streams} streams, {report.events} events, "
            f"{len(report.mismatches)} mismatches in {report.seconds:.2f}s"
        )
        for m in report.mismatches[:50]:
            typer.echo(f"  stream {m['stream']} position {m['position']}: {m['problem']}")
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("export")
def export_command(
    out: Annotated[Path | None, typer.Option(help="file (default: standard output)")] = None,
    after: Annotated[int, typer.Option(help="start after this global position")] = 0,
) -> None:
    """Every ledger event in global order as NDJSON (with hashes)."""

    async def go() -> int:
        from shared.db import make_sessionmaker

        sink = out.open("w") if out else sys.stdout
        count, cursor = 0, after
        try:
            async with service_engine("ledger") as engine, make_sessionmaker(engine)() as session:
                upto = await audit_reads.horizon(session)
                while rows := await audit_reads.events_page(session, cursor, upto, 5000):
                    for r in rows:
                        sink.write(json.dumps(r.as_dict(), default=str) + "\n")
                    count += len(rows)
                    cursor = rows[-1].position
        finally:
            if out:
                sink.close()
        return count

    n = asyncio.run(go())
    typer.echo(f"exported {n} events", err=True)


@audit_app.command("replay")
def replay_command(
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka (default ILA_KAFKA_BOOTSTRAP)")
    ] = None,
    url: Annotated[str, typer.Option(help="the ledger service to compare with")] = (
        f"http://127.0.0.1:{SERVICE_PORTS['ledger']}"
    ),
    token: Annotated[str | None, typer.Option(help="auditor token (default: a dev token)")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 16,
) -> None:
    """Rebuild every balance from the ledger topic alone and compare with the service."""

    settings = get_settings()
    set_topic_prefix(settings.kafka_topic_prefix)
    bootstrap = bootstrap or settings.kafka_bootstrap
    if not bootstrap:
        raise typer.BadParameter("give --bootstrap or set ILA_KAFKA_BOOTSTRAP")
    auth = token or mint_token(settings, role="auditor", sub="audit-replay")
    security = KafkaSecurity.from_settings(settings)
    differences = asyncio.run(_replay_and_compare(bootstrap, security, url, auth, concurrency))
    raise typer.Exit(1 if differences else 0)


async def _replay_and_compare(
    bootstrap: str, security: KafkaSecurity, url: str, auth: str, concurrency: int
) -> int:
    import httpx

    from services.ledger.audit.replay import replay_topic

    with typer.progressbar(length=1, label="reading the ledger topic") as bar:
        state = {"done": 0}

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - state["done"])
            state["done"] = done

        result = await replay_topic(bootstrap, progress=progress, security=security)
    typer.echo(
        f"{result.events} events for {len(result.states)} accounts "
        f"({result.duplicates} redelivered duplicates ignored)"
    )
    differences = len(result.errors)
    for error in result.errors[:20]:
        typer.echo(f"  unreadable: {error}")
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {auth}"}
    ) as client:

        async def check(account_id: uuid.UUID, rebuilt: Any) -> str | None:
            async with semaphore:
                r = await client.get(f"/v1/ledger/accounts/{account_id}/balance")
            if r.status_code != 200:
                return f"{account_id}: service answered {r.status_code}"
            live = r.json()
            mine = audit.wallet_view(rebuilt)
            diffs = [
                f"{k} service={live[k]} topic={mine[k]}" for k in mine if live.get(k) != mine[k]
            ]
            return f"{account_id}: " + ", ".join(diffs) if diffs else None

        with typer.progressbar(list(result.states.items()), label="comparing balances") as items:
            checks = [check(a, s) for a, s in items]
            found = [d for d in await asyncio.gather(*checks) if d]
    for d in found[:50]:
        typer.echo(f"  differs: {d}")
    differences += len(found)
    typer.echo("replay matches the service" if not differences else f"{differences} differences")
    return differences


@ledger_app.command("sweep")
def sweep_command() -> None:
    """Expire lots and reservations that are due now."""

    async def go() -> int:
        from shared.db import make_sessionmaker, unit_of_work

        async with service_engine("ledger") as engine:
            return await sweep_once(
                unit_of_work(make_sessionmaker(engine)),
                Ledger(Outbox("ledger", actor_pepper=get_settings().actor_pepper)),
            )

    typer.echo(f"appended {asyncio.run(go())} expiry events")


@ledger_app.command("allocate")
def allocate_command(
    target: Annotated[
        str, typer.Argument(help="the allocation id, or the year of a running allocation")
    ],
) -> None:
    """Resume an APPROVED allocation run (by its id, or by its year) with a progress bar.

    This command never starts an allocation: a run exists only once its proposal (POST
    /v1/ledger/allocations, by an admin or an agency) was approved by finance (POST
    /v1/ledger/approvals/{id}/approve), and the service then runs it by itself. Use this
    to watch or finish such a run from a shell; anything else is refused (exit code 1).
    """
    try:
        allocation_id: uuid.UUID | None = uuid.UUID(target)
        year = None
    except ValueError:
        allocation_id = None
        if not target.isdigit() or not 2000 <= int(target) <= 2200:
            raise typer.BadParameter("give an allocation id or a year (2000 to 2200)") from None
        year = int(target)

    async def go() -> dict[str, Any] | str:
        from shared.db import make_sessionmaker, unit_of_work

        async with service_engine("ledger") as engine:
            sessions = make_sessionmaker(engine)
            async with sessions() as s:
                if allocation_id is not None:
                    run = await runs.get_allocation(s, allocation_id)
                else:
                    assert year is not None
                    run = await runs.running_allocation(s, year)
            if run is None or run["status"] != "running" or run["approval_id"] is None:
                return (
                    f"no approved allocation running for {target}: propose one with POST "
                    "/v1/ledger/allocations and have finance approve it"
                    if run is None or run["status"] == "running"
                    else f"allocation {run['allocation_id']} is {run['status']}"
                    + (f" ({run['failure_code']}: {run['error']})" if run["error"] else "")
                )
            with typer.progressbar(
                length=max(run["total_accounts"] - run["processed"], 1),
                label=f"allocating {run['year']}",
            ) as bar:
                await allocation.run_allocation(
                    unit_of_work(sessions),
                    Ledger(Outbox("ledger", actor_pepper=get_settings().actor_pepper)),
                    run["allocation_id"],
                    progress=bar.update,
                )
            async with sessions() as s:
                return await runs.get_allocation(s, run["allocation_id"]) or "vanished"

    run = asyncio.run(go())
    if isinstance(run, str):
        typer.echo(run, err=True)
        raise typer.Exit(1)
    typer.echo(
        f"allocation {run['allocation_id']} {run['status']}: {run['granted_count']} grants, "
        f"{run['granted_amount']} minor units, {run['skipped']} skipped"
        + (f"; failed: {run['failure_code']}: {run['error']}" if run["status"] == "failed" else "")
    )
    raise typer.Exit(0 if run["status"] != "failed" else 1)
