"""The ``ila`` command, the composition root: run the system, serve one service, mint
tokens, migrate, run Kafka, write event schemas, and the operators' and auditors' tools
(each service's ``cli`` module adds its own command group).

Here, and only here, the services meet the development tools: with no database URL
configured, ``run``, ``serve`` and ``migrate`` hand the services the embedded PostgreSQL
(:mod:`ila.postgres`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ila.demo import demo
from ila.dlq import dlq_app
from ila.kafka_cli import grant_service_acls, kafka_app
from ila.mail_sink import mail_app
from ila.oidc_cli import oidc_app
from shared import heap
from shared.settings import PORTAL, PORTAL_PORT, SERVICE_PORTS, SERVICES, Settings, get_settings

app = typer.Typer(help="Individual Learning Accounts back office", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")

REPO = Path(__file__).resolve().parent.parent


def _serve(asgi: Any, host: str, port: int, log_level: str, processes: int = 1) -> None:
    """Serve ``asgi``; with several ``processes``, ``asgi`` names the factory each of them
    calls (``module:function``)."""
    import uvicorn

    try:
        get_settings().check_listen(host)
    except ValueError as exc:
        typer.echo(f"ila: {exc}", err=True)
        raise typer.Exit(2) from exc

    several: dict[str, Any] = {}
    if processes > 1:
        several = {"factory": True, "workers": processes}
    else:
        heap.settle()
    # uvloop and httptools: the event loop and HTTP parser in C (both pinned in pyproject)
    uvicorn.run(
        asgi,
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
        log_config=None,
        loop="uvloop",
        http="httptools",
        **several,
    )


@app.command()
def run(
    port: Annotated[int | None, typer.Option(help="port (default ILA_PORT or 8000)")] = None,
    keep_db: Annotated[
        bool, typer.Option("--keep-db", help="leave the embedded PostgreSQL running on exit")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="server processes (default ILA_WORKERS or 1)"),
    ] = None,
) -> None:
    """All four services in one process: embedded PostgreSQL, in-process events.

    With ``--workers N`` there are N such processes on the one port, each the whole system
    (as replicas are in service: each relay publishes what it takes to its own process's
    consumers, the database deciding who takes what).

    The embedded PostgreSQL this command starts is stopped when it exits (Ctrl-C, SIGTERM);
    one that was already running (``make up``, another ``ila run``) is joined and left."""
    from ila.mail_sink import start_for
    from ila.postgres import embedded_running, stop_embedded

    settings = get_settings()
    embedded = any(settings.database_url_for(s) is None for s in SERVICES)
    started_here = embedded and not embedded_running(settings.data_dir)
    processes = workers or settings.workers

    def terminate(signum: int, frame: Any) -> None:
        # uvicorn shuts down on SIGTERM, then raises it again: end through ``finally``
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    sink = start_for(settings)
    if sink is not None:
        settings = settings.model_copy(update={"smtp_host": sink.host, "smtp_port": sink.port})
    try:
        if processes == 1:
            _serve(
                _whole_system(settings, sink),
                settings.host,
                port or settings.port,
                settings.log_level,
            )
        else:
            from ila.postgres import embedded_postgres_url

            if embedded:  # started once, here: each process joins it
                embedded_postgres_url(settings.data_dir)
            if sink is not None:  # the processes send to the sink this one runs
                os.environ["ILA_SMTP_HOST"] = sink.host
                os.environ["ILA_SMTP_PORT"] = str(sink.port)
                os.environ[_DEV_MAIL] = "1"
            host, log_level = settings.host, settings.log_level
            _serve("ila.cli:process_app", host, port or settings.port, log_level, processes)
    finally:
        if sink is not None:
            sink.stop()
        if started_here and not keep_db:
            stop_embedded(settings.data_dir)


_DEV_MAIL = "ILA_RUN_DEV_MAIL"  # set by ``ila run --workers``: its processes show the sink's mail


def _whole_system(settings: Settings, mail: Any) -> Any:
    """The app of ``ila run``: every service on the in-process bus (``mail``: the sink
    whose messages ``/dev/mail`` shows, or None)."""
    from ila.mail_sink import dev_mail_router
    from ila.postgres import embedded_postgres_url
    from ila.registry import all_definitions, everything
    from shared.service import build_app

    if settings.kafka_bootstrap:
        settings = settings.model_copy(update={"kafka_bootstrap": None})
    asgi = build_app(
        everything(),
        settings,
        all_topics=all_definitions(),
        default_database_url=lambda: embedded_postgres_url(settings.data_dir),
    )
    if mail is not None:
        asgi.include_router(dev_mail_router(mail))
    return asgi


def process_app() -> Any:
    """One process of ``ila run --workers N`` (uvicorn calls this in each): the whole
    system's app, the sink's mail read from its directory."""
    from ila.mail_sink import MailFolder

    settings = get_settings()
    mail = MailFolder(settings.data_dir / "mail") if os.environ.get(_DEV_MAIL) else None
    asgi = _whole_system(settings, mail)
    heap.settle()
    return asgi


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="accounts, ledger, catalogue, payments or portal")],
    port: Annotated[int | None, typer.Option(help="port (default: the service's own)")] = None,
) -> None:
    """One service on its own port, over Kafka (ILA_KAFKA_BOOTSTRAP); or the people's
    pages (``portal``), which reach the services through ILA_PORTAL_API_URL."""
    from ila.postgres import embedded_postgres_url
    from ila.registry import all_definitions, definition
    from shared.service import build_app

    if service not in (*SERVICES, PORTAL):
        raise typer.BadParameter(f"one of {', '.join((*SERVICES, PORTAL))}")
    settings = get_settings()
    if service == PORTAL:
        if not settings.portal_api_url:
            raise typer.BadParameter("set ILA_PORTAL_API_URL: where the services' APIs are")
        asgi = build_app(
            [definition(PORTAL)],
            settings.model_copy(update={"kafka_bootstrap": None}),
            default_database_url=lambda: embedded_postgres_url(settings.data_dir),
        )
        _serve(asgi, settings.host, port or PORTAL_PORT, settings.log_level)
        return
    if not settings.kafka_bootstrap:
        raise typer.BadParameter("set ILA_KAFKA_BOOTSTRAP: separate services talk over Kafka")
    asgi = build_app(
        [definition(service)],
        settings,
        all_topics=all_definitions(),
        default_database_url=lambda: embedded_postgres_url(settings.data_dir),
    )
    _serve(asgi, settings.host, port or SERVICE_PORTS[service], settings.log_level)


@app.command()
def migrate(
    service: Annotated[list[str] | None, typer.Argument(help="services (default: all)")] = None,
) -> None:
    """Apply each service's migrations to its database."""
    from ila.postgres import database_url
    from shared.db import make_engine
    from shared.db import migrate as run_migrate

    settings = get_settings()

    async def go() -> None:
        for name in service or list(SERVICES):
            engine = make_engine(
                await database_url(settings, name), pool_size=1, **settings.db_tls()
            )
            try:
                await run_migrate(engine, name)
                typer.echo(f"{name}: up to date")
            finally:
                await engine.dispose()

    asyncio.run(go())


@app.command()
def token(
    role: Annotated[
        str,
        typer.Argument(help="agency, provider, learner, auditor, admin, finance, qa or funder"),
    ],
    sub: Annotated[str | None, typer.Option(help="subject (a learner's account id)")] = None,
    agency_id: Annotated[str | None, typer.Option("--agency-id")] = None,
    provider_id: Annotated[str | None, typer.Option("--provider-id")] = None,
    funder_id: Annotated[str | None, typer.Option("--funder-id")] = None,
    ttl: Annotated[int, typer.Option(help="lifetime in seconds")] = 3600,
) -> None:
    """Mint a development token (HS256 with ILA_JWT_SECRET)."""
    from shared.auth import ROLES, mint_token

    if role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}")
    if role == "agency" and not agency_id:
        raise typer.BadParameter("agency tokens need --agency-id")
    if role == "provider" and not provider_id:
        raise typer.BadParameter("provider tokens need --provider-id")
    if role == "funder" and not funder_id:
        raise typer.BadParameter("funder tokens need --funder-id")
    if role == "learner" and not sub:
        raise typer.BadParameter("learner tokens need --sub <account id>")
    typer.echo(
        mint_token(
            get_settings(),
            role=role,
            sub=sub or f"{role}-cli",
            agency_id=agency_id,
            provider_id=provider_id,
            funder_id=funder_id,
            ttl_seconds=ttl,
        )
    )


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="output folder")] = REPO / "docs" / "events",
    check: Annotated[bool, typer.Option(help="fail if the files on disk are stale")] = False,
) -> None:
    """Write the events' JSON Schemas and the AsyncAPI 3 document."""
    from shared.events.docs import render_all

    files = render_all()
    stale = [
        name
        for name, content in files.items()
        if not (out / name).exists() or (out / name).read_text() != content
    ]
    if check:
        if stale:
            typer.echo("stale: " + ", ".join(stale), err=True)
            raise typer.Exit(1)
        typer.echo("event schemas are up to date")
        return
    for name, content in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for old in out.rglob("*.json"):
        if str(old.relative_to(out)) not in files:
            old.unlink()  # the document of an event type that no longer exists
    typer.echo(f"wrote {len(files)} files to {out}")


@app.command()
def up(
    kafka_port: Annotated[int, typer.Option()] = 19092,
    secure: Annotated[
        bool, typer.Option(help="Kafka over SASL_SSL, each service as its own principal")
    ] = False,
    brokers: Annotated[
        int, typer.Option(help="3: a KRaft cluster, topics replicated 3 times, min ISR 2")
    ] = 1,
) -> None:
    """The distributed mode: Kafka, PostgreSQL and four service processes (until Ctrl-C)."""
    from ila.kafka import start_broker, stop_broker
    from ila.kafka_cluster import start_cluster, stop_cluster
    from ila.postgres import embedded_postgres_url

    settings = get_settings()
    if secure and brokers > 1:
        typer.echo("ila: --secure runs one broker (a secure cluster is not offered)", err=True)
        raise typer.Exit(2)
    workdir = settings.data_dir / ("kafka" if brokers == 1 else "kafka-cluster")
    secure_broker = None
    if brokers > 1:
        cluster = start_cluster(workdir, brokers, base_port=kafka_port)
        bootstrap, replicas = cluster.bootstrap, cluster.replication_factor
    else:
        broker = start_broker(workdir, port=kafka_port, secure=secure)
        bootstrap, replicas = broker.bootstrap, 1
        secure_broker = broker.secure
        if secure_broker is not None:
            grant_service_acls(broker)
    url = settings.database_url or embedded_postgres_url(settings.data_dir, keep_running=True)
    env = {
        **os.environ,
        "ILA_KAFKA_BOOTSTRAP": bootstrap,
        "ILA_KAFKA_REPLICATION_FACTOR": str(replicas),
        "ILA_DATABASE_URL": url,
    }
    procs = []
    for name in SERVICES:
        login = secure_broker.environment(name) if secure_broker is not None else {}
        procs.append(
            subprocess.Popen([sys.executable, "-m", "ila.cli", "serve", name], env={**env, **login})
        )
        time.sleep(0.5)  # let migrations of each schema start in turn
    (settings.data_dir / "up.json").write_text(
        json.dumps({"pids": [p.pid for p in procs], "kafka": bootstrap})
    )
    typer.echo(
        f"kafka {bootstrap}; services on ports "
        + ", ".join(f"{s} {p}" for s, p in SERVICE_PORTS.items())
    )

    def stop(*_: Any) -> None:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if brokers > 1:
            stop_cluster(cluster)
        else:
            stop_broker(broker)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(p.poll() is None for p in procs):
        time.sleep(1)
    typer.echo("a service exited; stopping the rest", err=True)
    stop()


@app.command()
def down() -> None:
    """Stop what ``ila up`` started, and the embedded PostgreSQL."""
    settings: Settings = get_settings()
    state = settings.data_dir / "up.json"
    if state.exists():
        for pid in json.loads(state.read_text())["pids"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        state.unlink()
    from ila.kafka import stop_from_workdir
    from ila.kafka_cluster import stop_cluster_from_workdir
    from ila.postgres import stop_embedded

    stop_from_workdir(settings.data_dir / "kafka")
    stop_cluster_from_workdir(settings.data_dir / "kafka-cluster")
    stop_embedded(settings.data_dir)
    typer.echo("stopped")


def _register_service_commands() -> None:
    """Each service may add a sub-command group (``ila accounts ...``, ``ila audit ...``)."""
    import importlib

    for module_name in (f"services.{name}.cli" for name in SERVICES):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for name, sub in getattr(module, "COMMANDS", {}).items():
            app.add_typer(sub, name=name)


_register_service_commands()
app.add_typer(dlq_app, name="dlq")
app.command("demo")(demo)
app.add_typer(oidc_app, name="oidc")
app.add_typer(mail_app, name="mail")

if __name__ == "__main__":
    app()
