"""The garbage collector of a long-running service process.

Everything a server holds from its start (modules, the routes, the events' schemas, the
pydantic and SQLAlchemy machinery) lives as long as the process. The cyclic collector
walked all of it on each of its full passes: draining an allocation's events, the passes
took about a third of the server's time, up to 350 ms each. :func:`settle` moves what
exists once the app is built out of the collector's sight (``gc.freeze``): a full pass then
walks only what was made since. Freed by reference counting as before, frozen objects are
only never looked at for cycles.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once, then freeze what is left (call it once the app is built)."""
    gc.collect()
    gc.freeze()
