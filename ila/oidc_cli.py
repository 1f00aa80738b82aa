"""``ila oidc``: the OpenID Connect test provider for development (``make run`` starts it
and points the portal's sign-in at it). Never for production."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

oidc_app = typer.Typer(help="The OpenID Connect test provider (development and tests only)")


def _workdir(given: Path | None) -> Path:
    from shared.settings import get_settings

    return given or get_settings().data_dir / "oidc"


@oidc_app.command("fetch")
def oidc_fetch() -> None:
    """Fetch the provider's jars with Maven into .cache/oidc."""
    from ila.oidc_provider import fetch_jars

    typer.echo(str(fetch_jars()))


@oidc_app.command("start")
def oidc_start(
    workdir: Annotated[Path | None, typer.Option(help="default: ILA_DATA_DIR/oidc")] = None,
    port: Annotated[int, typer.Option(help="default: 8090")] = 0,
) -> None:
    """Start a detached provider (or find the one running from ``workdir``); print its
    issuer, the value of ILA_OIDC_ISSUER."""
    from ila.oidc_provider import DEV_PORT, running_provider, start_provider

    where = _workdir(workdir)
    provider = running_provider(where) or start_provider(where, port=port or DEV_PORT)
    typer.echo(provider.issuer)


@oidc_app.command("stop")
def oidc_stop(workdir: Annotated[Path | None, typer.Option()] = None) -> None:
    """Stop the provider started from ``workdir``."""
    from ila.oidc_provider import stop_from_workdir

    typer.echo("stopped" if stop_from_workdir(_workdir(workdir)) else "not running")
