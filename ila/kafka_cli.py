"""``ila kafka``: the local Apache Kafka broker (KRaft, from Maven Central's jars), or a
three-broker cluster, for development and the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shared.settings import get_settings

kafka_app = typer.Typer(help="The local Apache Kafka broker (KRaft, from Maven jars)")


@kafka_app.command("fetch")
def kafka_fetch() -> None:
    """Fetch the broker's jars with Maven into .cache/kafka."""
    from ila.kafka_jars import fetch_jars

    typer.echo(str(fetch_jars()))


@kafka_app.command("start")
def kafka_start(
    workdir: Annotated[Path, typer.Option()] = Path("var/kafka"),
    port: Annotated[int | None, typer.Option()] = None,
    secure: Annotated[
        bool, typer.Option(help="SASL_SSL only, SCRAM logins and ACLs (docs/security.md)")
    ] = False,
    brokers: Annotated[int, typer.Option(help="3: a replicated KRaft cluster")] = 1,
) -> None:
    """Start a detached broker (or cluster); print its bootstrap address."""
    if brokers > 1:
        from ila.kafka_cluster import start_cluster

        typer.echo(start_cluster(workdir, brokers, base_port=port).bootstrap)
        return
    from ila.kafka import start_broker

    broker = start_broker(workdir, port=port, secure=secure)
    if broker.secure is not None:
        grant_service_acls(broker)
        typer.echo(
            f"CA {broker.secure.cafile}; SCRAM passwords in "
            f"{broker.secure.directory / 'users.json'}",
            err=True,
        )
    typer.echo(broker.bootstrap)


def grant_service_acls(broker: Any) -> None:
    """Each service's principal gets its ACLs on the configured prefix's topics."""
    from ila.kafka_acls import all_acls, grant
    from ila.postgres import asyncio_run_if_needed

    prefix = get_settings().kafka_topic_prefix
    asyncio_run_if_needed(grant(broker.bootstrap, broker.admin_security, all_acls(prefix)))


@kafka_app.command("stop")
def kafka_stop(workdir: Annotated[Path, typer.Option()] = Path("var/kafka")) -> None:
    """Stop the broker (or cluster) started in ``workdir``."""
    from ila.kafka import stop_from_workdir
    from ila.kafka_cluster import stop_cluster_from_workdir

    stopped = stop_cluster_from_workdir(workdir) or stop_from_workdir(workdir)
    typer.echo("stopped" if stopped else "not running")
