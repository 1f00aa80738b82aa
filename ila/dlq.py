"""``ila dlq list|show|replay``: the operators' view of the dead letters of every service
(:mod:`shared.dead_letters`), on each service's database directly; a replay runs the
service's own handlers, and the events they stage wait in its outbox for its relay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Annotated, Any

import typer

from shared.settings import SERVICES, get_settings

dlq_app = typer.Typer(help="Dead letters: list, show, replay after a fix", no_args_is_help=True)


ServiceOption = Annotated[
    str | None, typer.Option("--service", "-s", help="one service (default: every one)")
]


def _dlq(service: str | None, work: Any) -> Any:
    """Run ``work(runtime)`` on each chosen service's database (its handlers registered, as
    a replay needs them); the results by service."""
    from ila.registry import definition
    from ila.tooling import service_engine
    from shared.service import standalone_runtime

    if service is not None and service not in SERVICES:
        raise typer.BadParameter(f"one of {', '.join(SERVICES)}")

    async def go() -> dict[str, Any]:
        results = {}
        for name in [service] if service else SERVICES:
            async with service_engine(name) as engine:
                rt = standalone_runtime(definition(name), get_settings(), engine)
                results[name] = await work(rt)
        return results

    return asyncio.run(go())


@dlq_app.command("list")
def dlq_list(
    service: ServiceOption = None,
    replayed: Annotated[bool, typer.Option(help="also those already replayed")] = False,
) -> None:
    """Dead letters, oldest first, with their error."""
    from shared import dead_letters

    async def work(rt: Any) -> Any:
        async with rt.sessions() as session:
            return await dead_letters.page(
                session, rt.name, status=None if replayed else "open", limit=500
            )

    for name, rows in _dlq(service, work).items():
        for d in rows:
            typer.echo(f"{name}\t{d.dead_letter_id}\t{d.status}\t{d.type}\t{d.error}")


@dlq_app.command("show")
def dlq_show(dead_letter_id: str, service: ServiceOption = None) -> None:
    """One dead letter with the event it holds (JSON)."""
    from shared import dead_letters
    from shared.errors import NotFoundError

    async def work(rt: Any) -> Any:
        async with rt.sessions() as session:
            with contextlib.suppress(NotFoundError):
                return (await dead_letters.get(session, rt.name, _uuid(dead_letter_id))).public(
                    with_body=True
                )
        return None

    found = [d for d in _dlq(service, work).values() if d is not None]
    if not found:
        typer.echo(f"no dead letter {dead_letter_id}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(found[0], indent=2))


@dlq_app.command("replay")
def dlq_replay(
    dead_letter_id: Annotated[str | None, typer.Argument()] = None,
    service: ServiceOption = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every open dead letter")] = False,
) -> None:
    """Apply one dead letter (or ``--all``) again after a fix; the events this stages are
    published by the service's relay. Exit code 1 when one failed again."""
    from shared import dead_letters
    from shared.errors import NotFoundError

    if (dead_letter_id is None) == (not replay_all):
        raise typer.BadParameter("give a dead letter id or --all")

    async def work(rt: Any) -> Any:
        if replay_all:
            return await dead_letters.replay_all(rt.consumer, "operator:ila-dlq")
        with contextlib.suppress(NotFoundError):
            return [
                await dead_letters.replay(rt.consumer, _uuid(dead_letter_id), "operator:ila-dlq")
            ]
        return []

    results = [r for rs in _dlq(service, work).values() for r in rs]
    for r in results:
        typer.echo(f"{r.dead_letter_id}\t{r.outcome}\t{r.error or ''}")
    if not results and not replay_all:
        typer.echo(f"no dead letter {dead_letter_id}", err=True)
    raise typer.Exit(
        1 if any(r.outcome == "failed" for r in results) or (not results and not replay_all) else 0
    )


def _uuid(value: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise typer.BadParameter(f"not a dead letter id: {value}") from None
