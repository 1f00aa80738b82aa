"""``ila catalogue ...``: the issuer's keys, straight on the catalogue's database.

``rotate-issuer-key`` makes a new random key the one that signs credentials and status
lists; the previous key is retired and still verifies what it signed. Its event waits in
the catalogue's outbox for the running service's relay. Revoking a key is not here: it
needs a second person (``POST /v1/credentials/issuer/keys/{kid}/revoke``, then an admin's
approval).
"""

from __future__ import annotations

import asyncio
import json

import typer

from ila.registry import definition
from ila.tooling import service_engine
from services.catalogue.deps import CatalogueComponents
from services.catalogue.handlers import issuer_keys
from shared.bus import set_topic_prefix
from shared.outbox import EventContext
from shared.service import components_of, standalone_runtime
from shared.settings import get_settings

catalogue_app = typer.Typer(help="Catalogue operations: the issuer's keys", no_args_is_help=True)
COMMANDS = {"catalogue": catalogue_app}


@catalogue_app.command("rotate-issuer-key")
def rotate_issuer_key() -> None:
    """A new issuer key signs from now on; the previous one is retired (old credentials
    still verify). Safe while the service runs."""
    settings = get_settings()
    set_topic_prefix(settings.kafka_topic_prefix)

    async def go() -> dict[str, str]:
        async with service_engine("catalogue", settings) as engine:
            rt = standalone_runtime(definition("catalogue"), settings, engine)
            parts = components_of(rt, CatalogueComponents)
            async with rt.uow() as session:
                ctx = parts.context(session, EventContext.for_request("admin:cli"))
                record = await issuer_keys.rotate(ctx)
            return {"kid": record.kid, "created_at": record.created_at.isoformat()}

    typer.echo(json.dumps(asyncio.run(go())))
