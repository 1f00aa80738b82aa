"""The garbage collector of a long-running service process.

Everything a server holds from its start (modules, the routes, the events' schemas, the
pydantic and SQLAlchemy machinery) lives as long as the process. The cyclic collector
walked all of it on each of its full passes: draining 100k grants, the all-in-one server
spent about a fifth of its time collecting, in full passes of up to 180 ms.
:func:`settle` moves what exists once the app is built out of the collector's sight
(``gc.freeze``): a full pass then walks only what was made since. Frozen objects are
still freed by reference counting; only their cycles are not looked for.

The young generation is collected every :data:`YOUNG` allocations (net of frees) instead
of CPython's 700. A decision of the ledger makes and drops hundreds of short-lived
objects, so at 700 the collector ran about 80 young passes a second in the ledger's
consumer at 32 callers, and each tenth young pass and each tenth of those a fuller one:
the full passes walked the wallet states the cache holds, 1.1 s of 10 s. With 10,000 the
collector took 0.2 s of them. What reference counting frees is freed at once either way;
only cycles wait longer to be found.

A bulk job (the yearly allocation) makes and keeps many small objects a step: the wallet
states it caches. :func:`paused` stops the collector during a step and sets what the step
kept aside after it, so that later passes do not walk it again and again; :func:`thaw`
ends the job with one full pass over everything, which reclaims any cycle set aside.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG = 10_000

_settled = False
_set_aside = False  # whether paused() froze anything since the last thaw()


def settle() -> None:
    """Collect once, then freeze what is left (call it once the app is built); the young
    generation collected every :data:`YOUNG` allocations from then on."""
    global _settled
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])
    _settled = True


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector stopped while the block runs; what exists after it is set aside
    (frozen) before the collector runs again, as it was."""
    global _set_aside
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        _set_aside = True
        if enabled:
            gc.enable()


def thaw() -> None:
    """Bring what :func:`paused` set aside back under the collector and collect it all
    once; a settled process then freezes what is left again. Nothing to do when nothing was
    set aside (a run that found another runner, or nothing to run)."""
    global _set_aside
    if not _set_aside:
        return
    _set_aside = False
    gc.unfreeze()
    gc.collect()
    if _settled:
        gc.freeze()
